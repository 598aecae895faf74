"""One open document, checked: lint findings or the spec error, and, on demand, what each source line
computes (shapes, parameters, MACs, receptive field) taken from the summary's rows. No LSP types here.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import NamedTuple

from archspec.errors import SpecError
from archspec.lint import Finding, Settings, lint_source
from archspec.source import SourceText
from archspec.summary import Row, summarize
from archspec.syntax import Def, Module

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Occurrence(NamedTuple):
    """What one source line computes in one place of the network: at top level, once; inside a `def`,
    once per call. Numbers are totals over the line's layers (all of them, with `xN` or `repeat`)."""

    shape: tuple[int, ...]  # the output of the line's last layer
    trainable: int
    non_trainable: int
    macs: int
    last: Row  # the line's last row, for its receptive field and stride
    layers: int  # layers the line expands to
    call: Row | None  # the innermost macro call this occurrence sits in

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


class Analysis:
    """A document's text checked with the given lint settings. Linting happens at once (diagnostics
    need it on every change); the typed graph and the per-line facts only when hover or hints ask."""

    def __init__(self, text: str, name: str, settings: Settings, previous: Analysis | None = None) -> None:
        self.text = text
        self.name = name
        self.lines = SourceText("", text)
        self.error: SpecError | None = None
        self.findings: list[Finding] = []
        try:
            self.findings = lint_source(text, name, settings)
        except SpecError as error:
            self.error = error
        # While a line is half typed the text may not parse; completion and go-to-definition then use
        # the previous version's macros. One level only, so analyses never form a chain.
        self._previous = previous
        if previous is not None:
            previous._previous = None

    @cached_property
    def module(self) -> Module | None:
        """The syntax tree; the previous version's when this text does not parse; None without one."""
        from archspec.parse import parse

        try:
            module = parse(self.text, self.name)
        except SpecError:
            module = self._previous.module if self._previous is not None else None
        self._previous = None
        return module

    @cached_property
    def rows(self) -> tuple[Row, ...]:
        """The summary's rows (every layer and block, nested), or none when the spec has an error."""
        if self.error is not None:
            return ()
        from archspec.compile import compile_with_syntax

        _, typed = compile_with_syntax(self.text, self.name)
        return summarize(typed, self.name).rows

    @cached_property
    def facts(self) -> dict[int, list[Occurrence]]:
        """By 1-based source line: what the line computes, once per place it is expanded in."""
        return line_facts(self.rows)

    def definition(self, name: str) -> Def | None:
        module = self.module
        return next((d for d in module.defs if d.name == name), None) if module else None


def line_facts(rows: tuple[Row, ...]) -> dict[int, list[Occurrence]]:
    """Group summary rows by source line. Rows of one line under the same parent row are one
    occurrence (`conv 64 3 bn relu x2` is six rows, one occurrence); a row nested in a row of its own
    line is already counted by it."""
    parents: list[int | None] = []
    stack: list[int] = []
    for index, row in enumerate(rows):
        while stack and rows[stack[-1]].depth >= row.depth:
            stack.pop()
        parents.append(stack[-1] if stack else None)
        if row.group:
            stack.append(index)
    leaves = [0] * len(rows)  # layers under each group row
    for index, row in enumerate(rows):
        if not row.group:
            parent = parents[index]
            while parent is not None:
                leaves[parent] += 1
                parent = parents[parent]

    runs: dict[tuple[int, int | None], list[int]] = {}
    for index, row in enumerate(rows):
        parent = parents[index]
        if parent is not None and rows[parent].line == row.line:
            continue
        runs.setdefault((row.line, parent), []).append(index)
    facts: dict[int, list[Occurrence]] = {}
    for (line, parent), members in runs.items():
        chosen = [rows[i] for i in members]
        call = parent
        while call is not None and rows[call].type != "call":
            call = parents[call]
        facts.setdefault(line, []).append(
            Occurrence(
                chosen[-1].shape,
                sum(r.trainable for r in chosen),
                sum(r.non_trainable for r in chosen),
                sum(r.macs for r in chosen),
                chosen[-1],
                sum(leaves[i] if rows[i].group else 1 for i in members),
                rows[call] if call is not None else None,
            )
        )
    return facts


def word_at(line: str, column: int) -> tuple[str, int, int] | None:
    """The word (letters, digits, `_`) under a 0-based column: (word, start, end), or None."""
    for match in _WORD.finditer(line):
        if match.start() <= column <= match.end():
            return match.group(), match.start(), match.end()
    return None


def code_before(line: str, column: int) -> str | None:
    """The line's text before a 0-based column, or None when the column is inside a comment."""
    before = line[:column]
    return None if "#" in before else before


def def_docs(lines: SourceText, definition: Def) -> str:
    """The comment lines right above a `def`, as its documentation (how the templates document macros)."""
    found: list[str] = []
    number = definition.line - 1
    while number >= 1 and lines.line(number).lstrip().startswith("#"):
        found.append(lines.line(number).lstrip()[1:].strip())
        number -= 1
    return " ".join(reversed(found))


def def_signature(lines: SourceText, definition: Def) -> str:
    """`def bottleneck(f, stride=1)`, as written."""
    return lines.line(definition.line).split("#", 1)[0].strip().rstrip(":").rstrip()
