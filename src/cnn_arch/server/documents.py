"""The open documents as the editor holds them: a list of lines, so a change costs the lines it touches
(pygls' own store rebuilds the whole text at every change: 2 ms a change at 10,000 lines, seconds for a
burst of keystrokes)."""

from __future__ import annotations

import re

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str) -> list[str]:
    """The text's lines, each with its line break (`\\n`, `\\r\\n` or `\\r`, as LSP counts lines)."""
    return _LINE.findall(text)


def to_index(line: str, units: int, encoding: str) -> int:
    """The character index in `line` of a position counted in the client's code units (UTF-16 unless
    negotiated otherwise); past the line's end means its end, as LSP says."""
    content = line.rstrip("\r\n")
    if encoding == "utf-32" or content.isascii():
        return min(units, len(content))
    width = 2 if encoding == "utf-16" else 1
    count = 0
    for index, char in enumerate(content):
        if count >= units:
            return index
        count += len(char.encode("utf-8")) if width == 1 else (2 if ord(char) > 0xFFFF else 1)
    return len(content)


class Document:
    """One open document: its lines (with their line breaks) and its version."""

    def __init__(self, uri: str, text: str, version: int | None) -> None:
        self.uri = uri
        self.version = version
        self.lines = split_lines(text)
        self._text: str | None = text

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "".join(self.lines)
        return self._text

    def change(self, start: tuple[int, int] | None, end: tuple[int, int] | None, text: str, encoding: str) -> None:
        """Replace the range from `start` to `end` ((line, character) in client units), or the whole text
        when there is no range. Positions past the end of the text mean its end."""
        if start is None or end is None:
            self.lines = split_lines(text)
            self._text = text
            return
        lines = self.lines
        (first, first_char), (last, last_char) = sorted([start, end])
        if first >= len(lines):
            first, first_char = len(lines), 0
        if last >= len(lines):
            last, last_char = len(lines), 0
        before = lines[first][: to_index(lines[first], first_char, encoding)] if first < len(lines) else ""
        after = lines[last][to_index(lines[last], last_char, encoding) :] if last < len(lines) else ""
        lines[first : last + 1] = split_lines(before + text + after)
        self._text = None
