"""`cnn-arch server`: the language server for editors, over stdin/stdout (see docs/editors.md)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("server")(server_command)


def server_command(
    stdio: bool = typer.Option(
        True, "--stdio", help="Talk LSP over stdin/stdout (the only transport; the flag is what editors pass)."
    ),
) -> None:
    """Run the language server for .arch files: diagnostics, hover, inlay hints, fixes, completion."""
    from archspec.errors import UserError
    from archspec.extras import install_command

    try:
        from cnn_arch.server.server import start
    except ImportError as error:  # pygls and lsprotocol are dependencies: only a broken install lacks them
        raise UserError(
            f"the language server needs `{error.name}`, which is not installed",
            hint=f"reinstall cnn-arch: {install_command()} --force-reinstall",
        ) from None
    start()
