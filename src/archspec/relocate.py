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
    """Old line → new line, for the lines that moved (others stay)."""

    def __init__(self) -> None:
        self.moved: dict[int, int] = {}

    def add(self, first: int, count: int, delta: int) -> None:
        if delta:
            for line in range(first, first + count):
                self.moved[line] = line + delta

    def __call__(self, line: int) -> int:
        return self.moved.get(line, line)

    def span(self, span: Span | None) -> Span | None:
        if span is None or span.line not in self.moved:
            return span
        return Span(self.moved[span.line], span.column, span.end_column)

    def text(self, words: str) -> str:
        """`line 12` in a text (a merge's branch names) → its new number."""
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
