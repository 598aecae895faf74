"""`cnn-arch train`: train the spec's Flax model on a dataset, into a run folder.

Exit codes: 0 trained; 1 training diverged (NaN or infinite loss; the last good checkpoint is kept);
2 a user error (spec, data, options, run folder); 130 / 143 stopped by Ctrl-C / SIGTERM after
saving a checkpoint (`--resume` continues).
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from enum import Enum
from pathlib import Path

import typer

from archspec.train.config import TrainConfig
from cnn_arch.cli.common import either, former_name
from cnn_arch.cli.defaults import DEFAULTS


class Optimizer(str, Enum):
    adamw = "adamw"
    adam = "adam"
    sgd = "sgd"
    rmsprop = "rmsprop"
    lion = "lion"


class Schedule(str, Enum):
    cosine = "cosine"
    constant = "constant"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"


class SummaryChoice(str, Enum):
    """How much of the layer table `train` prints before the first step."""

    full = "full"  # every layer
    short = "short"  # the top-level rows (`summarize --depth 1`)
    none = "none"


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def _default(name: str) -> str:
    value = DEFAULTS[name]
    return f"  [default: {value:g}]" if isinstance(value, float) else f"  [default: {value}]"


def train_command(
    spec: str = typer.Argument(..., metavar="SPEC_OR_TEMPLATE", help="A spec file or a built-in template name."),
    data: str = typer.Option(
        None,
        "--data",
        metavar="DATA",
        help="`digits` (built in), a folder of class folders, a .npz file, or `hf:NAME[:CONFIG]` (a Hugging Face "
        "dataset, or `hf:FOLDER`)." + _default("data"),
    ),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="Override the spec's input shape."),
    epochs: int = typer.Option(None, "--epochs", help="Passes over the training images." + _default("epochs")),
    batch_size: int = typer.Option(
        None, "--batch-size", "--batch", help="Images per step, over all devices." + _default("batch_size")
    ),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate." + _default("lr")),
    optimizer: Optimizer = typer.Option(None, "--optimizer", help="Optimizer." + _default("optimizer")),
    momentum: float = typer.Option(None, "--momentum", help="Momentum of sgd and rmsprop." + _default("momentum")),
    schedule: Schedule = typer.Option(
        None, "--schedule", help="Learning-rate schedule after warm-up." + _default("schedule")
    ),
    warmup_epochs: float = typer.Option(
        None, "--warmup-epochs", help="Linear warm-up from 0 to --lr." + _default("warmup_epochs")
    ),
    weight_decay: float = typer.Option(
        None, "--weight-decay", help="On kernels only (not biases or BatchNorm)." + _default("weight_decay")
    ),
    label_smoothing: float = typer.Option(
        None, "--label-smoothing", help="Softmax or sigmoid target smoothing." + _default("label_smoothing")
    ),
    augment: str = typer.Option(
        None,
        "--augment",
        metavar="flip,crop",
        help="Augmentations on the device, comma-separated, or `none`.  [default: none]",
    ),
    val_split: float = typer.Option(
        None,
        "--val-split",
        help="Share of training images held out for validation "
        "when the data has no validation split." + _default("val_split"),
    ),
    seed: int = typer.Option(
        None, "--seed", help="Seeds weights, validation split, data order, dropout." + _default("seed")
    ),
    precision: Precision = typer.Option(
        None, "--precision", help="Compute precision (weights stay float32)." + _default("precision")
    ),
    summary: SummaryChoice = typer.Option(
        SummaryChoice.short,
        "--summary",
        help="The layer table before training: full, short (top-level rows, as `summarize --depth 1`) or none.",
    ),
    out: Path = typer.Option(
        None, "-o", "--output", metavar="RUN_DIR", help="Run folder.  [default: runs/<spec>-<time>]"
    ),
    out_former: Path = former_name("--out"),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --output (without --output: this spec's newest run in runs/) from its latest checkpoint.",
    ),
    checkpoint_every: int = typer.Option(
        None,
        "--checkpoint-every",
        metavar="STEPS",
        help="Also checkpoint every STEPS steps (0: at epoch ends only)." + _default("checkpoint_every"),
    ),
    keep: int = typer.Option(
        None, "--keep", help="Checkpoints kept (the newest), besides the best." + _default("keep_checkpoints")
    ),
    skip_bad_files: bool = typer.Option(
        None, "--skip-bad-files", help="Train without unreadable images instead of stopping with a report."
    ),
    precise_bn: bool = typer.Option(
        None,
        "--precise-bn/--no-precise-bn",
        help="Evaluate and save with BatchNorm statistics recomputed for the current weights, "
        "not the moving averages." + _default("precise_bn"),
    ),
    init_from: str = typer.Option(
        None,
        "--init-from",
        metavar="RUN_DIR[/CHECKPOINT]",
        help="Start from the weights and BatchNorm statistics of a trained run (RUN_DIR, RUN_DIR/best or "
        "RUN_DIR/checkpoints/STEP), in a new run folder, with any options and data.",
    ),
    tensorboard_images: bool = typer.Option(
        None, "--tensorboard-images", help="Also write the first training batch's images to the TensorBoard events."
    ),
    compile_cache: bool = typer.Option(
        True,
        "--compile-cache/--no-compile-cache",
        help="Keep compiled steps in the user cache directory (CNN_ARCH_CACHE_DIR, else ~/.cache/cnn-arch), "
        "so the next run of the same spec and options starts without compiling.",
    ),
    data_memory: str = typer.Option(
        None,
        "--data-memory",
        metavar="SIZE",
        help="Memory the decoded images may take (e.g. 2GB, 512MiB; 0 streams always); a folder whose "
        "images take more is streamed from disk while training.  [default: half the free memory]",
    ),
    data_workers: int = typer.Option(
        None,
        "--data-workers",
        help="Worker processes decoding streamed images (0: threads in the training process)."
        + _default("data_workers"),
    ),
    coordinator: str = typer.Option(
        None,
        "--coordinator",
        envvar="JAX_COORDINATOR_ADDRESS",
        metavar="HOST:PORT",
        help="Multi-host: process 0's address, the same on every host.",
    ),
    num_processes: int = typer.Option(
        None, "--num-processes", envvar="JAX_NUM_PROCESSES", help="Multi-host: number of processes."
    ),
    process_id: int = typer.Option(
        None, "--process-id", envvar="JAX_PROCESS_ID", help="Multi-host: this process's index, 0 to N-1."
    ),
) -> None:
    """Train the spec's model: prints its summary and lint findings, then trains with a progress bar and
    an epoch table, and ends with validation and test accuracy. Exit codes: 0 done, 1 diverged (NaN),
    2 user error, 130/143 stopped by Ctrl-C/SIGTERM after saving a checkpoint."""
    from archspec.errors import UserError
    from archspec.extras import require

    require("train", "`cnn-arch train`")
    out = either(out, out_former, "--out")
    from archspec.train import distributed

    cluster = distributed.find_cluster(coordinator, num_processes, process_id)
    if cluster is not None:
        if out is None:
            raise UserError("multi-host training needs --output: the same shared run folder on every host")
        distributed.join(cluster)

    from archspec.compile import compile_spec
    from archspec.train import run
    from cnn_arch.cli.common import parse_shape, read_target
    from cnn_arch.cli.devices import warn_unused_gpu

    options = {
        "data": data,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer.value if optimizer else None,
        "momentum": momentum,
        "schedule": schedule.value if schedule else None,
        "warmup_epochs": warmup_epochs,
        "weight_decay": weight_decay,
        "label_smoothing": label_smoothing,
        "augment": _augmentations(augment),
        "val_split": val_split,
        "seed": seed,
        "precision": precision.value if precision else None,
        "checkpoint_every": checkpoint_every,
        "keep_checkpoints": keep,
        "skip_bad_files": skip_bad_files,
        "precise_bn": precise_bn,
        "init_from": init_from,
        "tensorboard_images": tensorboard_images,
        "data_memory": _data_memory(data_memory),
        "data_workers": data_workers,
    }
    given = {name: value for name, value in options.items() if value is not None}
    name, text = read_target(spec)
    run_dir = _run_dir(spec, out, resume)
    saved = run.saved_config(run.read(run_dir)) if resume else None
    # A resumed run keeps its settings (the input shape too) unless they are given again.
    shape = parse_shape(input) if input is not None or saved is None else saved.input_shape
    typed = compile_spec(text, name, shape)
    settings = {**given, "spec": name, "spec_text": text, "input_shape": typed.input_shape}
    config = dataclasses.replace(saved, **settings) if saved is not None else TrainConfig(**settings)

    # Printed by the reporter once set-up has passed: the head-vs-data check (`outputs.task_for` and
    # `check_fits`, in set-up), the memory check and the run folder's come before any output.
    def header() -> None:
        _print_design(typed, name, text, summary)
        warn_unused_gpu()

    if compile_cache:  # once the options are valid: nothing has been compiled yet
        _enable_compile_cache()
    _train(config, run_dir, resume, header)


def _train(config: TrainConfig, run_dir: Path, resume: bool, header=None) -> None:
    from archspec.train.loop import Diverged, Interrupted, train_and_evaluate
    from cnn_arch.cli.progress import RichReporter

    reporter = RichReporter(header)
    try:
        train_and_evaluate(config, run_dir, resume=resume, reporter=reporter)
    except Diverged as diverged:
        reporter.close()
        sys.stderr.write(f"{diverged}\nhint: {_divergence_hint(config, run_dir, diverged.last_checkpoint)}\n")
        raise typer.Exit(diverged.exit_code) from None
    except Interrupted as stopped:
        reporter.close()
        sys.stderr.write(f"{stopped}\n")
        if stopped.step:
            sys.stderr.write(f"continue with: {_resume_command(config, run_dir)}\n")
        raise typer.Exit(stopped.exit_code) from None
    finally:
        reporter.close()


def _enable_compile_cache() -> None:
    """Before anything is compiled: JAX decides once per process whether to use the cache."""
    from archspec.train import compile_cache

    if (warning := compile_cache.enable()) is not None:
        sys.stderr.write(f"warning: {warning}\n")


def _print_design(typed, name: str, text: str, choice: SummaryChoice = SummaryChoice.short) -> None:
    """The layer table (folded to the top level unless `full`), then the lint findings one line each
    (as Darknet prints its layers)."""
    from archspec import summary
    from archspec.lint import Settings, lint_source
    from archspec.lint.output import FileReport, render_concise
    from cnn_arch.cli.output import stdout_console
    from cnn_arch.cli.summarize import print_table

    if choice is not SummaryChoice.none:
        print_table(summary.summarize(typed, name), None if choice is SummaryChoice.full else 1)
    findings = lint_source(text, name, Settings.default(), typed.input_shape)
    if findings:
        console = stdout_console()
        count = f"{len(findings)} lint finding{'s' if len(findings) != 1 else ''}"
        console.print()
        console.print(f"{count} (details: cnn-arch lint {shlex.quote(name)}):", markup=False, highlight=False)
        console.print(
            render_concise([FileReport(name, text, tuple(findings))], color=console.is_terminal).rstrip(),
            markup=False,
            highlight=False,
        )


def _run_dir(spec: str, out: Path | None, resume: bool) -> Path:
    from archspec.errors import UserError
    from archspec.train import run

    if out is not None:
        return out
    if not resume:
        return run.default_run_dir(spec)
    latest = run.latest_run_dir(spec)
    if latest is None:
        raise UserError(f"no run of `{spec}` to resume in {run.RUNS_DIR}/", hint="pass the run folder with --output")
    return latest


def _data_memory(text: str | None) -> int | None:
    if text is None:
        return None
    from archspec.train.data.stream import parse_memory

    return parse_memory(text)


def _augmentations(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    kinds = tuple(part.strip() for part in text.split(",") if part.strip())
    return () if kinds == ("none",) else kinds


def _resume_command(config: TrainConfig, run_dir: Path) -> str:
    return f"{_command(config)} --output {shlex.quote(str(run_dir))} --resume"


def _divergence_hint(config: TrainConfig, run_dir: Path, last_checkpoint: Path | None) -> str:
    """Lower the learning rate; with a good checkpoint, the exact command that starts from it."""
    lower = f"{config.lr / 10:g}"
    if last_checkpoint is None:
        return f"lower --lr (e.g. --lr {lower}), add `bn` after convolutions, or use a longer --warmup-epochs"
    again = f"{_command(config)} --init-from {shlex.quote(str(last_checkpoint))} --lr {lower}"
    return f"lower --lr, starting again from the last good checkpoint in a new run folder:\n  {again}"


def _command(config: TrainConfig) -> str:
    """`cnn-arch train SPEC --data D --input HxWxC` for `config`, quoted for a shell."""
    from archspec.text import shape_text

    shape = shape_text(config.input_shape)
    return f"cnn-arch train {shlex.quote(config.spec)} --data {shlex.quote(config.data)} --input {shape}"
