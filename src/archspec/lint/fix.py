"""Fixes as text edits on the spec: built from spans, applied right to left, and kept only when the
edited spec still parses and infers. `fix_source` repeats lint-then-fix until nothing is left to fix.

Edits touch only the words a fix is about, so comments, blank lines and indentation stay as written.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from archspec.compile import compile_spec
from archspec.errors import Span, SpecError
from archspec.lint.engine import Finding, Settings, lint_source
from archspec.syntax import Line

if TYPE_CHECKING:
    from archspec.ir import Node
    from archspec.lint.engine import Context

_NEWLINE = re.compile(r"\r\n|\r|\n")  # the parser's line breaks (see archspec.parse._normalize)
MAX_PASSES = 20  # each pass fixes every non-overlapping finding; later passes pick up what overlapped


class Edit(NamedTuple):
    """Replace the text from (line, column) up to, not including, (end_line, end_column). 1-based."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


class Fix(NamedTuple):
    title: str  # what the fix does, e.g. "Replace `flatten` with `gap`"
    edits: tuple[Edit, ...]


class SourceLines:
    """The spec split into lines as the parser counts them, to turn (line, column) into text offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines: list[str] = []
        self.starts = [0]
        position = 0
        for match in _NEWLINE.finditer(text):
            self.lines.append(text[position : match.start()])
            position = match.end()
            self.starts.append(position)
        self.lines.append(text[position:])

    def __len__(self) -> int:
        return len(self.lines)

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 1 <= number <= len(self.lines) else ""

    def offset(self, line: int, column: int) -> int:
        if line > len(self.lines):
            return len(self.text)
        return self.starts[line - 1] + min(column - 1, len(self.lines[line - 1]))

    def code_end(self, number: int) -> int:
        """The column just after the line's last code character (before a comment and trailing blanks)."""
        return len(self.line(number).split("#", 1)[0].rstrip()) + 1

    def continued(self, number: int) -> bool:
        """Whether the line ends in a `\\` that joins it with the next one."""
        return self.line(number).split("#", 1)[0].rstrip().endswith("\\")


# --- building edits ------------------------------------------------------------------------------


def replace(span: Span, content: str) -> Edit:
    return Edit(span.line, span.column, span.line, span.end_column, content)


def insert(line: int, column: int, content: str) -> Edit:
    return Edit(line, column, line, column, content)


def delete_word(lines: SourceLines, span: Span) -> Edit:
    """Remove a word (a trailing `relu`) and the blanks before it."""
    text = lines.line(span.line)
    start = span.column - 1
    while start > 0 and text[start - 1] in " \t":
        start -= 1
    return Edit(span.line, start + 1, span.line, span.end_column, "")


def delete_line(lines: SourceLines, number: int) -> Edit:
    """Remove a whole line with its line break."""
    if number < len(lines):
        return Edit(number, 1, number + 1, 1, "")
    previous = number - 1
    return Edit(previous, len(lines.line(previous)) + 1, number, len(lines.line(number)) + 1, "")


def swap_lines(lines: SourceLines, first: int, second: int) -> tuple[Edit, Edit]:
    a, b = lines.line(first), lines.line(second)
    return Edit(first, 1, first, len(a) + 1, b), Edit(second, 1, second, len(b) + 1, a)


def append_word(lines: SourceLines, statement: Line, word: str) -> Edit | None:
    """Add a trailing word (`relu`) at the end of a layer line, before its `xN`; None if the line continues."""
    if statement.repeat_span is not None:
        return insert(statement.repeat_span.line, statement.repeat_span.column, f"{word} ")
    if lines.continued(statement.line):
        return None
    return insert(statement.line, lines.code_end(statement.line), f" {word}")


# --- applying them -------------------------------------------------------------------------------


def apply_edits(text: str, edits) -> str:
    """Apply non-overlapping edits, right to left so earlier offsets stay valid."""
    lines = SourceLines(text)
    ranges = sorted(
        ((lines.offset(e.line, e.column), lines.offset(e.end_line, e.end_column), e.content) for e in edits),
        reverse=True,
    )
    for start, end, content in ranges:
        text = text[:start] + content + text[end:]
    return text


def _ranges(lines: SourceLines, fix: Fix) -> list[tuple[int, int]]:
    return [(lines.offset(e.line, e.column), lines.offset(e.end_line, e.end_column)) for e in fix.edits]


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return (a[0] < b[1] and b[0] < a[1]) or a[0] == b[0]


def _non_overlapping(text: str, findings: list[Finding]) -> list[Finding]:
    lines = SourceLines(text)
    taken: list[tuple[int, int]] = []
    chosen = []
    for finding in findings:
        ranges = _ranges(lines, finding.fix)
        if any(_overlap(r, t) for r in ranges for t in taken):
            continue
        taken.extend(ranges)
        chosen.append(finding)
    return chosen


def _compiles(text: str, name: str, input_shape) -> bool:
    try:
        compile_spec(text, name, input_shape)
    except SpecError:
        return False
    return True


def _edits(findings: list[Finding]) -> list[Edit]:
    return [edit for finding in findings for edit in finding.fix.edits]


def apply_fixes(text: str, name: str, findings: list[Finding], input_shape=None) -> tuple[str, list[Finding]]:
    """Apply the fixes of `findings` that do not overlap; drop any whose result fails to parse or infer.

    Returns the new text and the findings whose fixes were applied.
    """
    chosen = _non_overlapping(text, [f for f in findings if f.fix is not None])
    if not chosen:
        return text, []
    edited = apply_edits(text, _edits(chosen))
    if _compiles(edited, name, input_shape):
        return edited, chosen
    good = [f for f in chosen if _compiles(apply_edits(text, f.fix.edits), name, input_shape)]
    if len(good) > 1:
        edited = apply_edits(text, _edits(good))
        if _compiles(edited, name, input_shape):
            return edited, good
    if good:
        return apply_edits(text, good[0].fix.edits), good[:1]
    return text, []


class FixOutcome(NamedTuple):
    text: str  # the spec after every fix that applied
    fixed: tuple[Finding, ...]  # located in the text of the pass that fixed them
    remaining: tuple[Finding, ...]  # located in `text`


def fix_source(text: str, name: str, settings: Settings, input_shape=None) -> FixOutcome:
    """Lint and fix until no fixable finding is left (or a fix would break the spec).

    Raises `SpecError` when the original spec does not compile.
    """
    fixed: list[Finding] = []
    findings = lint_source(text, name, settings, input_shape)
    for _ in range(MAX_PASSES):
        text, applied = apply_fixes(text, name, findings, input_shape)
        if not applied:
            break
        fixed.extend(applied)
        findings = lint_source(text, name, settings, input_shape)
    return FixOutcome(text, tuple(fixed), tuple(findings))


# --- edits that rules share ------------------------------------------------------------------------


def remove_layer(ctx: Context, node: Node) -> Edit | None:
    """Delete a layer: its trailing word (`relu` in `conv 64 3 relu`), or its line when the line holds
    only that layer and the block stays valid without it. None when neither is possible."""
    site = ctx.site(node)
    if site is None:
        return None
    if site.statement.span != node.span:
        return delete_word(ctx.lines, node.span)
    if ctx.removable_line(node) is None:
        return None
    return delete_line(ctx.lines, node.span.line)


def swap_layers(ctx: Context, first: Node, second: Node) -> tuple[Edit, Edit] | None:
    """Swap two one-layer lines that follow each other in the same block (`dropout 0.3` / `bn`)."""
    a, b = ctx.site(first), ctx.site(second)
    if a is None or b is None or a.body is not b.body or b.index != a.index + 1:
        return None
    for site, node in ((a, first), (b, second)):
        statement = site.statement
        if statement.span != node.span or statement.repeat is not None or ctx.lines.continued(statement.line):
            return None
    return swap_lines(ctx.lines, a.statement.line, b.statement.line)
