"""`cnn-arch new`: copy a built-in template into a spec file of the user's, to start from."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("new")(new_command)


def new_command(
    name: str = typer.Argument(..., metavar="TEMPLATE", help="A built-in template (see `cnn-arch templates`)."),
    output: Path = typer.Option(
        None,
        "-o",
        "--output",
        metavar="PATH",
        help="Where to write it (a file or a folder).  [default: ./TEMPLATE.arch]",
    ),
    path: Path = typer.Argument(None, metavar="[PATH]", hidden=True),  # the former -o: `new resnet50 mynet.arch`
    force: bool = typer.Option(False, "--force", help="Overwrite the file if it exists."),
) -> None:
    """Copy a built-in template into a new spec file: `cnn-arch new resnet50 -o mynet.arch`."""
    from archspec import templates
    from archspec.errors import PathError
    from cnn_arch.cli.common import either, template_hint

    path = either(output, path, "PATH")
    source = templates.path(name)
    if source is None:
        raise PathError(name, "no such built-in template", hint=template_hint(name))
    target = path if path is not None else Path(f"{name}{templates.SUFFIX}")
    if target.is_dir():
        target = target / f"{name}{templates.SUFFIX}"
    text = source.read_text(encoding="utf-8")
    try:
        # "x" refuses an existing file in the same system call that creates the new one.
        with open(target, "w" if force else "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise PathError(str(target), "already exists", hint="pass --force to overwrite it") from None
    except FileNotFoundError:
        raise PathError(str(target), "its folder does not exist") from None
    except OSError as error:
        raise PathError(str(target), error.strerror or str(error)) from None
    typer.echo(f"Wrote {target} (from template `{name}`). Check it with: cnn-arch summarize {target}")
