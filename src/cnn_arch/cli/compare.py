"""`cnn-arch compare A B [C...]`: models side by side, each relative to the first; with `--data`
each is also trained under the same seed, split and budget, and their validation curves overlaid."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from cnn_arch.cli.common import either, former_name
from cnn_arch.cli.defaults import DEFAULTS  # one set of training defaults: TrainConfig's


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)


def compare_command(
    specs: list[str] = typer.Argument(..., metavar="SPEC_OR_TEMPLATE...", help="Two or more specs or templates."),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="Override every spec's input shape."),
    batch_size: int = typer.Option(
        DEFAULTS["batch_size"],
        "--batch-size",
        "--batch",
        min=1,
        help="Images per batch: for the activation memory, and with --data per training step.",
    ),
    format: Format = typer.Option(Format.table, "--output-format", "--format", help="Output format."),
    data: str = typer.Option(None, "--data", help="Also train each model on this data (what train's --data takes)."),
    epochs: int = typer.Option(DEFAULTS["epochs"], "--epochs", min=1, help="With --data: epochs per model."),
    lr: float = typer.Option(DEFAULTS["lr"], "--lr", min=0.0, help="With --data: peak learning rate (adamw, cosine)."),
    seed: int = typer.Option(
        DEFAULTS["seed"], "--seed", help="With --data: seeds weights, split and data order, for every model."
    ),
    val_split: float = typer.Option(
        DEFAULTS["val_split"],
        "--val-split",
        min=0.0,
        max=0.9,
        help="With --data: share of the training images held out for validation.",
    ),
    out: Path = typer.Option(
        None,
        "-o",
        "--output",
        metavar="DIR",
        help="With --data: where the runs and compare.png go.  [default: runs/compare-<time>]",
    ),
    out_former: Path = former_name("--out"),
) -> None:
    """Compare models: parameters, MACs, activation memory, dense-head share, lint findings — and, with
    --data, best validation accuracy and loss, the train-validation gap and images/s."""
    from archspec.compare import entry, plot_validation_curves, to_json, to_markdown, to_text
    from archspec.errors import UserError
    from cnn_arch.cli.common import parse_shape, read_target

    out = either(out, out_former, "--out")
    if len(specs) < 2:
        raise UserError("compare needs at least two specs", hint="e.g. `cnn-arch compare flatten-head gap-head`")
    from archspec.compile import compile_spec

    shape = parse_shape(input)
    entries, models = [], []
    for spec in specs:
        name, text = read_target(spec)
        typed = compile_spec(text, name, shape)
        entries.append(entry(spec, typed, batch=batch_size, findings=_lint_count(name, text, typed.input_shape)))
        models.append((name, text, typed))
    if data is not None:
        from archspec.extras import require

        require("train", "`cnn-arch compare --data`")
        folder = out or _default_out()
        settings = {
            "data": data,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "val_split": val_split,
        }
        curves = [
            _train(index, name, text, typed, settings, folder, e, quiet=format is not Format.table)
            for index, ((name, text, typed), e) in enumerate(zip(models, entries))
        ]
        png = folder / "compare.png"
        plot_validation_curves(curves, png, {**settings, "input_shape": shape or models[0][2].input_shape})
        sys.stderr.write(f"runs: {folder}\nvalidation curves: {png}\n")
    render = {Format.table: to_text, Format.json: to_json, Format.markdown: to_markdown}[format]
    sys.stdout.write(render(entries))


def _lint_count(name: str, text: str, input_shape) -> int:
    from archspec.lint import Settings, lint_source

    return len(lint_source(text, name, Settings.default(), input_shape))


def _default_out() -> Path:
    import time

    return Path("runs") / time.strftime("compare-%Y%m%d-%H%M%S")


def _train(index: int, name: str, text: str, typed, settings: dict, folder: Path, entry, *, quiet: bool):
    """Train one model into `folder`; fill `entry.trained`; return its per-epoch metrics for the plot."""
    from archspec.compare import summarize_run
    from archspec.train import run
    from archspec.train.config import TrainConfig
    from archspec.train.loop import Reporter, Stopped, train_and_evaluate
    from cnn_arch.cli.progress import RichReporter

    config = TrainConfig(spec=name, spec_text=text, input_shape=typed.input_shape, **settings)
    workdir = folder / f"{index + 1}-{run.spec_name(name)}"
    reporter = Reporter() if quiet else RichReporter()
    if not quiet:
        sys.stdout.write(f"\n== {name} ==\n")
    try:
        results = train_and_evaluate(config, workdir, reporter=reporter).results
    except Stopped as stopped:
        sys.stderr.write(f"{name}: {stopped}\n")
        raise typer.Exit(stopped.exit_code) from None
    finally:
        if isinstance(reporter, RichReporter):
            reporter.close()
    rows = run.read_metrics(workdir)
    entry.trained = summarize_run(rows)
    entry.trained["kept_epoch"] = results["epoch"]  # the epoch whose model the run keeps (--monitor)
    if "test" in results:  # the run's model (the kept epoch's) on the test images
        entry.trained["test_accuracy"] = results["test"]["accuracy"]
    return name, rows
