"""The `cnn-arch` typer app. Commands live one per module and are mounted here.

User mistakes (`archspec.errors.UserError`) are printed to stderr as diagnostics with exit code 2;
a Python traceback means a bug in cnn-arch, never a mistake of the user's.
"""

from __future__ import annotations

import sys

if sys.argv[1:2] == ["train"]:
    # First thing, before the heavy imports: a Ctrl-C in the first second must stop the run, and one
    # landing in JAX's garbage-collection callbacks would be swallowed (see archspec.train.stopping).
    from archspec.train import stopping

    stopping.catch_early()

import typer

from cnn_arch.cli import (
    compare,
    devices,
    draw,
    evaluate,
    export,
    import_keras,
    lint,
    new,
    predict,
    rule,
    server,
    summarize,
    templates,
    train,
)

app = typer.Typer(
    name="cnn-arch",
    help="A model architect for convolutional networks: check a spec, summarize it, lint it, train it.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command
    add_completion=True,  # --install-completion / --show-completion, for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

summarize.register(app)
templates.register(app)
new.register(app)
lint.register(app)
rule.register(app)
train.register(app)
evaluate.register(app)
predict.register(app)
compare.register(app)
devices.register(app)
server.register(app)
draw.register(app)
import_keras.register(app)
export.register(app)


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
        app()  # standalone mode: typer handles its own usage errors (exit 2) and Ctrl-C
        code = 0
    except UserError as error:
        from cnn_arch.cli.output import print_error

        print_error(error)
        code = 2
    except SystemExit as exit:
        code = exit.code
    except OSError as error:  # a write to stdout failed on its way out (click leaves all but EPIPE to us)
        code = _output_failed(error)
    sys.exit(_flushed(code))


def _flushed(code):
    """Flush stdout before the interpreter does, so that a full or closed stream is reported here and
    not as a traceback at exit: 141 (as a shell shows a process killed by SIGPIPE) after the reader
    closed a pipe (`| head -1`), else a message and 2."""
    if type(sys.stdout).__name__ == "PacifyFlushWrapper":  # click met EPIPE during the command
        _discard_stdout()
        return 141
    try:
        sys.stdout.flush()
    except OSError as error:
        return _output_failed(error)
    except ValueError:  # closed by the command (the language server closes its stdio at `exit`)
        pass
    return code


def _output_failed(error: OSError) -> int:
    import errno

    _discard_stdout()
    if error.errno == errno.EPIPE:
        return 141  # the reader has all it wanted: nothing to say, as `cat file | head -1`
    try:
        sys.stderr.write(f"error: cannot write the output: {error.strerror or error}\n")
        sys.stderr.flush()
    except OSError:
        pass
    return 2


def _discard_stdout() -> None:
    """What stdout still buffers can never be written: point it at /dev/null so that the
    interpreter's last flush does not fail again."""
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError):  # a stdout without a file descriptor has no buffer left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
