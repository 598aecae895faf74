"""`cnn-arch export`: a trained run as ONNX (`RUN_DIR -o model.onnx`), or a spec as Keras, Flax or
PyTorch code (`SPEC --to keras`)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from cnn_arch.cli.common import CheckpointChoice as Checkpoint
from cnn_arch.cli.common import either, former_name


class Target(str, Enum):
    keras = "keras"
    flax = "flax"
    pytorch = "pytorch"
    onnx = "onnx"


class InputDtype(str, Enum):
    uint8 = "uint8"
    float32 = "float32"


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)


def export_command(
    source: str = typer.Argument(..., metavar="RUN_DIR|SPEC", help="A run folder, or a spec file or template name."),
    to: Target = typer.Option(None, "--to", help="What to write. [default: onnx for a run folder]"),
    out: Path = typer.Option(None, "-o", "--output", metavar="FILE", help="Where to write (code: default stdout)."),
    out_former: Path = former_name("--out"),
    checkpoint: Checkpoint = typer.Option(
        Checkpoint.best,
        "--checkpoint",
        help="For a run: the checkpoint it kept (its --monitor's best epoch), or the last one.",
    ),
    input_dtype: InputDtype = typer.Option(
        InputDtype.uint8, "--input-dtype", help="For ONNX: the input's type (float32: values 0-255 as predict takes)."
    ),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="For code: override the spec's input shape."),
) -> None:
    """Export a trained run as ONNX (images in, class probabilities out, batch size free), or a
    spec as readable Keras, Flax or PyTorch code that builds the same network."""
    from archspec.errors import UserError

    out = either(out, out_former, "--out")
    is_run = Path(source).is_dir() and (Path(source) / "config.json").is_file()
    target = to or (Target.onnx if is_run else None)
    if target is None:
        raise UserError("say what to export the spec to", hint="--to keras, --to flax or --to pytorch")
    if target is Target.onnx:
        if not is_run:
            raise UserError(
                f"`{source}` is not a run folder; ONNX export needs a trained model", hint="cnn-arch train it first"
            )
        if out is None:
            raise UserError("say where to write the ONNX model", hint="-o model.onnx")
        from archspec.interop.onnx_export import export_onnx

        result = export_onnx(source, out, checkpoint.value, input_dtype.value)
        shape = "x".join(map(str, result.input_shape))
        typer.echo(
            f"Wrote {result.path}: {result.input_dtype} images (N, {shape.replace('x', ', ')}) in, "
            f"probabilities of {len(result.class_names)} classes out ({result.checkpoint} checkpoint, step {result.step})."
        )
        return
    if is_run:
        raise UserError(f"`{source}` is a run folder; code export reads a spec", hint="pass the spec, or --to onnx")
    from archspec.interop.export_code import export_spec
    from cnn_arch.cli.common import parse_shape, read_target

    name, text = read_target(source)
    code = export_spec(text, name, target.value, parse_shape(input))
    if out is None:
        sys.stdout.write(code)
        return
    from archspec.errors import PathError

    try:
        out.write_text(code, encoding="utf-8")
    except OSError as error:
        raise PathError(str(out), error.strerror or str(error)) from None
    typer.echo(f"Wrote {out} ({target.value} code for {name}).")
