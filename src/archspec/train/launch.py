"""From a `cnn-arch train` command line to a run: the config (a resumed run's settings unless given
again), the run folder, and the commands a stopped run prints to go on."""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archspec.errors import UserError
from archspec.train import run
from archspec.train.config import TrainConfig


@dataclass(frozen=True)
class Plan:
    config: TrainConfig
    run_dir: Path
    typed: Any  # the compiled spec (infer.TypedGraph)


def join_cluster(coordinator: str | None, num_processes: int | None, process_id: int | None, out) -> None:
    """Join a multi-process run when the options (or a launcher) say so: before JAX sees a device."""
    from archspec.train import distributed

    cluster = distributed.find_cluster(coordinator, num_processes, process_id)
    if cluster is not None:
        if out is None:
            raise UserError("multi-host training needs --output: the same shared run folder on every host")
        distributed.join(cluster)


def plan(
    name: str, text: str, input_shape: tuple | None, given: dict[str, Any], *, out: Path | None, resume: bool
) -> Plan:
    """The config of spec `name` (`text`) with the settings `given`, and its run folder: `out`, else a
    new `runs/<spec>-<time>`, or for `resume` this spec's newest run. A resumed run keeps its
    settings (the input shape too) unless they are given again."""
    from archspec.compile import compile_spec

    run_dir = _run_dir(name, out, resume)
    saved = run.saved_config(run.read(run_dir)) if resume else None
    shape = input_shape if input_shape is not None or saved is None else saved.input_shape
    typed = compile_spec(text, name, shape)
    settings = {**given, "spec": name, "spec_text": text, "input_shape": typed.input_shape}
    config = dataclasses.replace(saved, **settings) if saved is not None else TrainConfig(**settings)
    return Plan(config, run_dir, typed)


def _run_dir(spec: str, out: Path | None, resume: bool) -> Path:
    if out is not None:
        return out
    if not resume:
        return run.default_run_dir(spec)
    latest = run.latest_run_dir(spec)
    if latest is None:
        raise UserError(f"no run of `{spec}` to resume in {run.RUNS_DIR}/", hint="pass the run folder with --output")
    return latest


def resume_command(config: TrainConfig, run_dir: Path) -> str:
    return f"{command(config)} --output {shlex.quote(str(run_dir))} --resume"


def divergence_hint(config: TrainConfig, run_dir: Path, last_checkpoint: Path | None) -> str:
    """Lower the learning rate; with a good checkpoint, the exact command that starts from it."""
    lower = f"{config.lr / 10:g}"
    if last_checkpoint is None:
        return f"lower --lr (e.g. --lr {lower}), add `bn` after convolutions, or use a longer --warmup-epochs"
    again = f"{command(config)} --init-from {shlex.quote(str(last_checkpoint))} --lr {lower}"
    return f"lower --lr, starting again from the last good checkpoint in a new run folder:\n  {again}"


def command(config: TrainConfig) -> str:
    """`cnn-arch train SPEC --data D --input HxWxC` for `config`, quoted for a shell."""
    from archspec.text import shape_text

    shape = shape_text(config.input_shape)
    return f"cnn-arch train {shlex.quote(config.spec)} --data {shlex.quote(config.data)} --input {shape}"
