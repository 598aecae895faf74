"""`cnn-arch evaluate`: loss and accuracy of a trained run's model on each split of a dataset."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cnn_arch.cli.common import CheckpointChoice as Checkpoint
from cnn_arch.cli.common import TableOrJson as Format


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)


def evaluate_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder written by `cnn-arch train`."),
    data: str = typer.Option(
        None, "--data", metavar="DATA", help="Evaluate on this data instead (same classes).  [default: the run's data]"
    ),
    checkpoint: Checkpoint = typer.Option(
        Checkpoint.best,
        "--checkpoint",
        help="The checkpoint the run kept (its --monitor's best epoch), or the last one.",
    ),
    format: Format = typer.Option(Format.table, "--output-format", "--format", help="Output format."),
) -> None:
    """Score a trained model: loss and accuracy (top-5 beyond 10 classes) on the train, validation and
    test images, split as in training."""
    from archspec.extras import require

    require("train", "`cnn-arch evaluate`")
    from archspec.train.inference import evaluate_run, load_run
    from cnn_arch.cli.output import stdout_console, warn_skipped_checkpoints

    trained = load_run(run_dir, checkpoint.value)
    warn_skipped_checkpoints(trained.skipped)
    results = evaluate_run(trained, data)
    if format is Format.json:
        typer.echo(
            json.dumps(
                {
                    "run": str(run_dir),
                    "checkpoint": trained.checkpoint,
                    "step": trained.step,
                    "kept": trained.kept,
                    "data": data or trained.config.data,
                    "splits": results,
                },
                indent=2,
            )
        )
        return
    console = stdout_console()
    console.print(
        f"{run_dir} on {data or trained.config.data}: {trained.checkpoint} checkpoint, {trained.kept}",
        markup=False,
    )
    top5 = any("top5_accuracy" in metrics for metrics in results.values())
    header = f"{'split':<6}{'images':>8}{'loss':>9}{'accuracy':>10}" + (f"{'top-5':>9}" if top5 else "")
    console.print(header, markup=False)
    for split, metrics in results.items():
        line = f"{split:<6}{metrics['images']:>8,}{metrics['loss']:>9.4f}{metrics['accuracy']:>10.2%}"
        if top5:
            line += f"{metrics['top5_accuracy']:>9.2%}"
        console.print(line, markup=False)
