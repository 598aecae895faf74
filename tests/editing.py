"""Random edits of a spec's lines, as a person typing makes them: digits changed, layer lines inserted,
lines deleted, blank and comment lines, a line duplicated, indented or moved, a line left broken. Used
by the tests that compare the language server's kept analysis with a fresh one."""

from __future__ import annotations

import random

INSERTED = ("relu", "bn", "gap", "dropout 0.2", "conv 8 3 padding=same", "@x", "identity -> q")
BROKEN = (" )", "(", " x", " ->")


def random_edit(chooser: random.Random, lines: list[str]) -> str:
    """Change `lines` in place; return what was done (for a failing test's message)."""
    number = chooser.randrange(len(lines))
    line = lines[number]
    digits = [i for i, c in enumerate(line) if c.isdigit()]
    kinds = ["insert", "delete", "blank", "comment", "duplicate", "indent", "move", "break"]
    edit = chooser.choice(kinds + ["digit"] * 3 if digits else kinds)
    if edit == "digit":
        at = chooser.choice(digits)
        lines[number] = line[:at] + chooser.choice("0123456789") + line[at + 1 :]
    elif edit == "insert":
        lines.insert(number, line[: len(line) - len(line.lstrip())] + chooser.choice(INSERTED))
    elif edit == "delete":
        del lines[number]
    elif edit == "blank":
        lines.insert(number, "")
    elif edit == "comment":
        lines[number] = line + "  # note"
    elif edit == "duplicate":
        lines.insert(number, line)
    elif edit == "indent":
        lines[number] = "    " + line
    elif edit == "move":
        lines.insert(chooser.randrange(len(lines)), lines.pop(number))
    else:
        lines[number] = line + chooser.choice(BROKEN)
    return f"{edit} at line {number + 1}"
