"""The spec text as lines, counted as the parser counts them (`\n`, `\r\n` and a lone `\r` all end
a line), with (line, column) → offset arithmetic. Errors quote it; lint's fixes edit it, so the
file's own line endings are kept."""

from __future__ import annotations

import re

_NEWLINE = re.compile(r"\r\n|\r|\n")


class SourceText:
    """A spec's text and its display name (a path or `<template name>`)."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self._starts: list[int] | None = None
        if "\r" not in text:  # the common case, at C speed: the language server builds one per keystroke
            self.lines = text.split("\n")
            return
        self.lines = []
        self._starts = [0]
        position = 0
        for match in _NEWLINE.finditer(text):
            self.lines.append(text[position : match.start()])
            position = match.end()
            self._starts.append(position)
        self.lines.append(text[position:])

    @property
    def starts(self) -> list[int]:
        """The offset of each line's first character."""
        if self._starts is None:
            self._starts = [0]
            for line in self.lines[:-1]:
                self._starts.append(self._starts[-1] + len(line) + 1)
        return self._starts

    def __len__(self) -> int:
        return len(self.lines)

    def __repr__(self) -> str:
        return f"SourceText({self.name!r}, {len(self.lines)} lines)"

    def line(self, number: int) -> str:
        """Line `number` (1-based) without its line break; empty outside the text."""
        return self.lines[number - 1] if 1 <= number <= len(self.lines) else ""

    def offset(self, line: int, column: int) -> int:
        """The text offset of a 1-based (line, column); past a line's end means its end."""
        if line > len(self.lines):
            return len(self.text)
        return self.starts[line - 1] + min(column - 1, len(self.lines[line - 1]))

    def code_end(self, number: int) -> int:
        """The column just after the line's last code character (before a comment and trailing blanks)."""
        return len(self.line(number).split("#", 1)[0].rstrip()) + 1

    def continued(self, number: int) -> bool:
        """Whether the line ends in a `\\` that joins it with the next one."""
        return self.line(number).split("#", 1)[0].rstrip().endswith("\\")
