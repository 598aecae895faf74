"""`cnn-arch import`: Keras model code → a spec, by static analysis (no TensorFlow, no code run)."""

from __future__ import annotations

from pathlib import Path

import typer

from cnn_arch.cli.common import either, former_name


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)


def import_command(
    source: Path = typer.Argument(..., metavar="MODEL.py", help="Python source that builds a Keras model."),
    out: Path = typer.Option(
        None, "-o", "--output", metavar="FILE.arch", help="Write the spec here.  [default: stdout]"
    ),
    out_former: Path = former_name("--out"),
    model: str = typer.Option(
        None, "--model", metavar="NAME", help="The variable holding the model.  [default: the last one]"
    ),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="Input shape, where the code leaves it open."),
    force: bool = typer.Option(False, "--force", help="Overwrite FILE.arch if it exists."),
) -> None:
    """Read Keras model code (Sequential, model.add, functional API) and write the equivalent spec,
    each line commented with its Python line. Nothing is imported or run."""
    import sys

    from archspec.errors import PathError
    from archspec.interop.keras_check import compile_imported
    from archspec.interop.keras_import import import_keras
    from archspec.parse import read_spec_file
    from cnn_arch.cli.common import parse_shape

    out = either(out, out_former, "--out")
    imported = import_keras(read_spec_file(source), str(source), model, parse_shape(input))
    compile_imported(imported)  # a model the spec cannot type is reported at its Python line, not written
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
