"""`cnn-arch import`: a model file (Keras code, a saved .keras/.h5 model) → a spec. Read as data: no
TensorFlow or Keras is imported and no code runs, unless `--run` asks to run a script."""

from __future__ import annotations

from pathlib import Path

import typer

from cnn_arch.cli.common import either, former_name


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)


def import_command(
    source: Path = typer.Argument(
        ...,
        metavar="MODEL",
        help="Keras code (model.py), a saved Keras model (model.keras, model.h5) or an ONNX file (model.onnx).",
    ),
    out: Path = typer.Option(
        None, "-o", "--output", metavar="FILE.arch", help="Write the spec here.  [default: stdout]"
    ),
    out_former: Path = former_name("--out"),
    model: str = typer.Option(
        None, "--model", metavar="NAME", help="The variable holding the model.  [default: the last one]"
    ),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="Input shape, where the model leaves it open."),
    run: bool = typer.Option(
        False,
        "--run",
        help="RUN the Python file (in a subprocess, with Keras on JAX) and read the model it builds, for code "
        "static reading cannot follow. This executes the script; training calls (fit, evaluate, predict) stop it.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite FILE.arch if it exists."),
) -> None:
    """Read a Keras model or an ONNX graph and write the equivalent spec, each line commented with
    where it comes from (a Python line, the Keras layer's name, the ONNX node). Keras code is read
    statically (nothing is imported or run) unless --run; saved models and ONNX files are read as data."""
    import sys

    from archspec.errors import PathError, UserError
    from archspec.interop import readers
    from cnn_arch.cli.common import parse_shape

    out = either(out, out_former, "--out")
    shape = parse_shape(input)
    if run:
        if Path(source).suffix.lower() != ".py":
            raise UserError("--run runs a Python script", hint=f"`cnn-arch import {source}` reads it without running")
        from archspec.interop.keras_run import read_run

        imported, keras_count = read_run(str(source), model, shape)
    else:
        imported, keras_count = readers.read_model(str(source), model, shape), None
    typed = readers.compile_imported(imported)  # a model the spec cannot type is reported at its origin, not written
    if keras_count is not None and typed.params != keras_count:
        raise UserError(
            f"the spec counts {typed.params:,} parameters where Keras counts {keras_count:,}: a bug of the reader",
            hint="please report it with the script",
        )
    if out is None:
        sys.stdout.write(imported.text)
        return
    try:
        with open(out, "w" if force else "x", encoding="utf-8") as file:
            file.write(imported.text)
    except FileExistsError:
        raise PathError(str(out), "already exists", hint="pass --force to overwrite it") from None
    except OSError as error:
        raise PathError(str(out), error.strerror or str(error)) from None
    typer.echo(f"Wrote {out} (model `{imported.name}` of {source}). Check it with: cnn-arch summarize {out}")
