"""`cnn-arch predict`: the most likely classes of images, by a trained run's model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from cnn_arch.cli.common import CheckpointChoice as Checkpoint
from cnn_arch.cli.common import TableOrJson as Format


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)


def predict_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder written by `cnn-arch train`."),
    images: list[str] = typer.Argument(..., metavar="IMAGE...", help="Image files (any format Pillow reads)."),
    top_k: int = typer.Option(5, "--top-k", help="How many classes to show per image."),
    checkpoint: Checkpoint = typer.Option(
        Checkpoint.best,
        "--checkpoint",
        help="The checkpoint the run kept (its --monitor's best epoch), or the last one.",
    ),
    format: Format = typer.Option(Format.table, "--output-format", "--format", help="Output format."),
) -> None:
    """Classify images: the top-k classes with their probabilities. Images are converted to the
    model's input exactly as the training images were (channels, then a bilinear resize)."""
    from archspec.extras import require

    require("train", "`cnn-arch predict`")
    from archspec.train import run
    from archspec.train.inference import load_run, predict, read_images
    from cnn_arch.cli.output import stdout_console, warn_skipped_checkpoints

    batch = read_images(images, run.saved_config(run.read(run_dir)).input_shape)  # bad files fail fast
    trained = load_run(run_dir, checkpoint.value)
    warn_skipped_checkpoints(trained.skipped)
    predictions = predict(trained, batch, top_k)
    # Which model answers, on stderr: stdout stays the predictions (JSON included).
    sys.stderr.write(f"model: {run_dir}, {trained.checkpoint} checkpoint, {trained.kept}\n")
    if format is Format.json:
        typer.echo(
            json.dumps(
                [
                    {"image": image, "top": [{"class": name, "probability": p} for name, p in ranked]}
                    for image, ranked in zip(images, predictions)
                ],
                indent=2,
            )
        )
        return
    console = stdout_console()
    width = max(len(name) for name in trained.class_names)
    for image, ranked in zip(images, predictions):
        console.print(image, markup=False)
        for name, probability in ranked:
            console.print(f"  {name:<{width}}  {probability:7.2%}", markup=False)
