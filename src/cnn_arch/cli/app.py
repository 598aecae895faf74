"""The `cnn-arch` typer app. Commands live one per module and are mounted here.

User mistakes (`archspec.errors.UserError`) are printed to stderr as diagnostics with exit code 2;
a Python traceback means a bug in cnn-arch, never a mistake of the user's.
"""

from __future__ import annotations

import sys

import typer

from cnn_arch.cli import summarize

app = typer.Typer(
    name="cnn-arch",
    help="A model architect for convolutional networks: check a spec, summarize it, lint it, train it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

summarize.register(app)


def _version(value: bool) -> None:
    if value:
        from archspec import __version__

        typer.echo(f"cnn-arch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """A model architect for convolutional networks: check a spec, summarize it, lint it, train it."""


def main() -> None:
    from archspec.errors import UserError

    try:
        app(standalone_mode=False)
    except UserError as error:
        from cnn_arch.cli.output import print_error

        print_error(error)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as error:
        _handle_click(error)


def _handle_click(error: Exception) -> None:
    import click

    if isinstance(error, click.exceptions.Exit):
        sys.exit(error.exit_code)
    if isinstance(error, click.exceptions.Abort):
        sys.stderr.write("aborted\n")
        sys.exit(1)
    if isinstance(error, click.ClickException):
        error.show()
        sys.exit(error.exit_code)
    raise error
