"""Moving what was parsed or expanded to other lines: after a line is inserted or deleted, the
statements below it are the same text a few lines lower, and the language server keeps their parse
and expansion (`parse_recovering`, `archspec.expand_memo`) with every span moved instead of reading
them again. Everything here is rebuilt, never changed in place: the last version's objects stay as
they were."""

from __future__ import annotations

import dataclasses
import re
from functools import cache

from archspec.errors import Span, SpecError

_LINE_WORDS = re.compile(r"\bline (\d+)")


class LineMap:
    """Old line → new line (1-based) across one edit: the lines of statements that moved inside the
    edited region, each listed, and every line from `tail_from` on moved by `tail_delta` (the statements
    below the edit). Other lines stay."""

    def __init__(self, tail_from: int = 0, tail_delta: int = 0) -> None:
        self.moved: dict[int, int] = {}
        self.tail_from = tail_from
        self.tail_delta = tail_delta

    def add(self, first: int, count: int, delta: int) -> None:
        if delta:
            for line in range(first, first + count):
                self.moved[line] = line + delta

    def __bool__(self) -> bool:
        """Whether any line moves."""
        return bool(self.moved or self.tail_delta)

    def bounds(self) -> tuple[float, float]:
        """The first line that moves, and the last line before the lines that all move alike (from
        `tail_from` on): lines outside them stay, or all move by `tail_delta`."""
        first = min(self.moved, default=float("inf"))
        last = max(self.moved, default=float("-inf"))
        if self.tail_delta:
            first = min(first, self.tail_from)
            last = max(last, self.tail_from - 1)
        return first, last

    def __call__(self, line: int) -> int:
        if self.tail_delta and line >= self.tail_from:
            return line + self.tail_delta
        return self.moved.get(line, line)

    def span(self, span: Span | None) -> Span | None:
        if span is None:
            return None
        line = self(span.line)
        return span if line == span.line else Span(line, span.column, span.end_column)

    def text(self, words: str) -> str:
        """`line 12` in a text (a merge's branch names) → its new number."""
        head, found, number = words.rpartition("line ")
        if found and number.isdigit() and "line " not in head:  # the usual: one, at the end
            return f"{head}line {self(int(number))}"
        return _LINE_WORDS.sub(lambda m: f"line {self(int(m.group(1)))}", words)


def shifted(node, delta: int):
    """A syntax tree (`archspec.syntax` nodes, tuples of them) `delta` lines lower."""
    if isinstance(node, Span):
        return Span(node.line + delta, node.column, node.end_column)
    if isinstance(node, tuple):
        return tuple(shifted(item, delta) for item in node)
    names = _fields(type(node))
    if names is None:
        return node  # a str, a number, None
    moved = object.__new__(type(node))  # frozen dataclasses: filled directly, as `replace` would
    moved.__dict__.update({name: shifted(getattr(node, name), delta) for name in names})
    return moved


@cache
def _fields(kind: type) -> tuple[str, ...] | None:
    return tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else None


def shifted_error(error: SpecError, delta: int) -> SpecError:
    """A parse error `delta` lines lower (its source is attached later)."""
    from archspec.errors import Note

    notes = tuple(Note(n.message, shifted(n.span, delta)) for n in error.notes)
    return SpecError(error.message, shifted(error.span, delta), hint=error.hint, notes=notes)
