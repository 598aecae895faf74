"""`cnn-arch train`: train the spec's Flax model on a dataset, into a run folder.

Exit codes: 0 trained; 1 training diverged (NaN or infinite loss; the last good checkpoint is kept);
2 a user error (spec, data, options, run folder); 130 / 143 stopped by Ctrl-C / SIGTERM after
saving a checkpoint (`--resume` continues).
"""

from __future__ import annotations

import shlex
import sys
from enum import Enum
from pathlib import Path

import typer

from archspec.train.config import TrainConfig
from cnn_arch.cli.common import either, former_name
from cnn_arch.cli.defaults import DEFAULTS

# Options of the command that are not TrainConfig settings (or are named otherwise there).
NOT_SETTINGS = (
    "spec",
    "input",
    "summary",
    "out",
    "out_former",
    "resume",
    "compile_cache",
    "coordinator",
    "num_processes",
    "process_id",
)
RENAMED = {"keep": "keep_checkpoints"}


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


class Monitor(str, Enum):
    val_loss = "val_loss"
    val_accuracy = "val_accuracy"


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


def _augmentations(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    kinds = tuple(part.strip() for part in text.split(",") if part.strip())
    return () if kinds == ("none",) else kinds


def _data_memory(text: str | None) -> int | None:
    if text is None:
        return None
    from archspec.train.data.stream import parse_memory

    return parse_memory(text)


def train_command(
    ctx: typer.Context,
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
        callback=_augmentations,
    ),
    val_split: float = typer.Option(
        None,
        "--val-split",
        help="Share of training images held out for validation "
        "when the data has no validation split." + _default("val_split"),
    ),
    test_split: float = typer.Option(
        None,
        "--test-split",
        help="Share of training images held out for testing when the data has no test split "
        "(0: none; the run then says it has no test figure)." + _default("test_split"),
    ),
    monitor: Monitor = typer.Option(
        None,
        "--monitor",
        help="Which epoch's model the run keeps: the lowest validation loss, or the highest validation accuracy "
        "(ties: the lower loss)." + _default("monitor"),
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
        metavar="WEIGHTS",
        help="Start from trained weights and BatchNorm statistics: a run (RUN_DIR, RUN_DIR/best, "
        "RUN_DIR/checkpoints/STEP), a Keras .keras or .weights.h5, an .onnx or a PyTorch .safetensors file; "
        "layers are matched by position and shape.",
    ),
    reinit_mismatched: bool = typer.Option(
        None,
        "--reinit-mismatched",
        help="With --init-from: start the layers whose shapes differ (a new head) afresh instead of stopping "
        "(Keras skip_mismatch).",
    ),
    freeze: str = typer.Option(
        None,
        "--freeze",
        metavar="LINE|@NAME",
        help="Train only what comes after this spec line or named tensor: the layers up to it keep their "
        "weights, and their BatchNorm runs in inference mode (as a frozen Keras layer).",
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
        callback=_data_memory,
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
    an epoch table, and ends with the kept epoch's validation and test accuracy. Exit codes: 0 done,
    1 diverged (NaN), 2 user error, 130/143 stopped by Ctrl-C/SIGTERM after saving a checkpoint."""
    from archspec.extras import require

    require("train", "`cnn-arch train`")
    out = either(out, out_former, "--out")
    from archspec.devices import spread_over_cores
    from archspec.train import cores, distributed, launch
    from cnn_arch.cli.common import parse_shape, read_target
    from cnn_arch.cli.devices import warn_unused_gpu

    name, text = read_target(spec)
    plan = launch.plan(name, text, parse_shape(input), _settings(ctx.params), out=out, resume=resume)
    # Before anything of JAX runs, the multi-process set-up included: a process per core (a small model
    # on a CPU), else a CPU device per core, or one device.
    cluster = distributed.find_cluster(coordinator, num_processes, process_id) is not None
    chosen = cores.wanted(plan.typed.trainable, plan.config.batch_size, cluster=cluster)
    group = cores.start(chosen) if chosen else None
    if group is None:
        spread_over_cores(trainable=plan.typed.trainable)
    launch.join_cluster(coordinator, num_processes, process_id, out)
    if group is not None and group.rank > 0:  # silent: rank 0 reports; never returns
        if compile_cache:
            _enable_compile_cache()
        cores.run_other(lambda: _train_other(plan.config, plan.run_dir, resume))

    # Printed by the reporter once set-up has passed: the head-vs-data check (`outputs.task_for` and
    # `check_fits`, in set-up), the memory check and the run folder's come before any output.
    def header() -> None:
        _print_design(plan.typed, name, text, summary)
        warn_unused_gpu()

    if compile_cache:  # once the options are valid: nothing has been compiled yet
        _enable_compile_cache()
    try:
        _train(plan.config, plan.run_dir, resume, header)
    except cores.AloneInstead:
        cores.again_alone(sys.argv[1:])  # streamed data: the command again, in one process
    except BaseException:  # stopped or failed: the others have nothing to save
        cores.end(wait=False)
        raise
    cores.end()


def _train_other(config: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Rank 1 and up of a process per core: the same training, silent, writing nothing."""
    from archspec.train.loop import train_and_evaluate

    train_and_evaluate(config, run_dir, resume=resume)


def _settings(params: dict) -> dict:
    """The TrainConfig settings the command line gives (options left out are not given)."""
    return {
        RENAMED.get(name, name): value.value if isinstance(value, Enum) else value
        for name, value in params.items()
        if name not in NOT_SETTINGS and value is not None
    }


def _train(config: TrainConfig, run_dir: Path, resume: bool, header=None) -> None:
    from archspec.train import cores, launch
    from archspec.train.loop import Diverged, Interrupted, train_and_evaluate
    from cnn_arch.cli.progress import RichReporter

    reporter = RichReporter(header)
    try:
        train_and_evaluate(config, run_dir, resume=resume, reporter=reporter)
    except Diverged as diverged:
        reporter.close()
        hint = launch.divergence_hint(config, run_dir, diverged.last_checkpoint)
        sys.stderr.write(f"{diverged}\nhint: {hint}\n")
        raise typer.Exit(diverged.exit_code) from None
    except Interrupted as stopped:
        reporter.close()
        sys.stderr.write(f"{stopped}\n")
        if stopped.step:
            sys.stderr.write(f"continue with: {launch.resume_command(config, run_dir)}\n")
        raise typer.Exit(stopped.exit_code) from None
    except cores.PeerLost as lost:  # a process per core: another one died (killed, out of memory)
        reporter.close()
        from archspec.train.checkpoint import has_checkpoints

        sys.stderr.write(f"error: training stopped: {lost}\n")
        if has_checkpoints(run_dir):
            sys.stderr.write(f"continue from the last checkpoint with: {launch.resume_command(config, run_dir)}\n")
        raise typer.Exit(lost.exit_code) from None
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
