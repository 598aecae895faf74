"""Consoles and the diagnostics printer shared by the commands."""

from __future__ import annotations

import os
import sys

from archspec.errors import UserError


def stdout_console():
    """A console for results. Piped output gets a wide page, so tables never wrap mid-cell."""
    from rich.console import Console

    color = {} if use_color(sys.stdout) else {"color_system": None}
    console = Console(highlight=False, soft_wrap=False, **color)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, soft_wrap=False, width=160, **color)
    return console


def use_color(stream) -> bool:
    """Colour only for a terminal that is not `TERM=dumb`; NO_COLOR turns it off (no-color.org),
    FORCE_COLOR on, except `FORCE_COLOR=0`, which means off (as Node and pytest read it)."""
    if os.environ.get("NO_COLOR"):
        return False
    force = os.environ.get("FORCE_COLOR")
    if force:
        return force != "0"
    if os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def terminal_width() -> int | None:
    """The width to fit: `COLUMNS` when set, the terminal's on a terminal, else None (piped output
    keeps every column, for scripts and diffs)."""
    import shutil

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def print_error(error: UserError) -> None:
    """Print a user error like a compiler diagnostic, colouring `error:` when stderr is a terminal."""
    text = error.render()
    if use_color(sys.stderr):
        import re

        # every diagnostic's `error:` (a spec with several errors lists them all), not one in a message
        text = re.sub(r"(?m)^((?:\S+: )?)error:", "\\1\x1b[1;31merror:\x1b[0m", text)
        text = text.replace("\nhint:", "\n\x1b[1;36mhint:\x1b[0m")
    sys.stderr.write(text + "\n")


def warn_skipped_checkpoints(skipped: list[tuple[str, str]]) -> None:
    """A warning on stderr for each damaged checkpoint a restore passed over."""
    for folder, reason in skipped:
        sys.stderr.write(f"warning: skipped the damaged checkpoint {folder} ({reason}); using an older one\n")
