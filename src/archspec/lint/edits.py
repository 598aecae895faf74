"""Fixes as text edits on the spec, built from the spans of the syntax tree: what a rule attaches to
a finding. Applying them is `archspec.lint.fix`'s job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from archspec.errors import Span
from archspec.source import SourceText
from archspec.syntax import Line

if TYPE_CHECKING:
    from archspec.ir import Node
    from archspec.lint.engine import Context


class Edit(NamedTuple):
    """Replace the text from (line, column) up to, not including, (end_line, end_column). 1-based."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


class Fix(NamedTuple):
    """A rule's fix. `safe`: the network computes the same function with the same parameters after
    it, so `--fix` applies it; any other fix changes the trained network and needs `--unsafe-fixes`."""

    title: str  # what the fix does, e.g. "Replace `flatten` with `gap`"
    edits: tuple[Edit, ...]
    safe: bool = False


# --- building edits ------------------------------------------------------------------------------


def replace(span: Span, content: str) -> Edit:
    return Edit(span.line, span.column, span.line, span.end_column, content)


def insert(line: int, column: int, content: str) -> Edit:
    return Edit(line, column, line, column, content)


def delete_word(lines: SourceText, span: Span) -> Edit:
    """Remove a word (a trailing `relu`) and the blanks before it."""
    text = lines.line(span.line)
    start = span.column - 1
    while start > 0 and text[start - 1] in " \t":
        start -= 1
    return Edit(span.line, start + 1, span.line, span.end_column, "")


def delete_line(lines: SourceText, number: int) -> Edit:
    """Remove a whole line with its line break."""
    if number < len(lines):
        return Edit(number, 1, number + 1, 1, "")
    previous = number - 1
    return Edit(previous, len(lines.line(previous)) + 1, number, len(lines.line(number)) + 1, "")


def swap_lines(lines: SourceText, first: int, second: int) -> tuple[Edit, Edit]:
    a, b = lines.line(first), lines.line(second)
    return Edit(first, 1, first, len(a) + 1, b), Edit(second, 1, second, len(b) + 1, a)


def append_word(lines: SourceText, statement: Line, word: str) -> Edit | None:
    """Add a trailing word (`relu`) at the end of a layer line, before its `xN`; None if the line continues."""
    if statement.repeat_span is not None:
        return insert(statement.repeat_span.line, statement.repeat_span.column, f"{word} ")
    if lines.continued(statement.line):
        return None
    output = getattr(statement, "output", None)
    if output is not None:  # before the `-> name`
        arrow = lines.line(statement.line).rfind("->", 0, output.span.column - 1)
        return insert(statement.line, arrow + 1, f"{word} ") if arrow >= 0 else None
    return insert(statement.line, lines.code_end(statement.line), f" {word}")


# --- edits that several rules share ------------------------------------------------------------------------


def remove_layer(ctx: Context, node: Node) -> Edit | None:
    """Delete a layer: its trailing word (`relu` in `conv 64 3 relu`), or its line when the line holds
    only that layer and the block stays valid without it. None when neither is possible."""
    site = ctx.site(node)
    if site is None:
        return None
    if site.statement.span != node.span:
        return delete_word(ctx.lines, node.span)
    if ctx.removable_line(node) is None or getattr(site.statement, "output", None) is not None:
        return None  # deleting a `-> name` line would leave its readers without a tensor
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
        if statement.output is not None:  # the name would move to another tensor
            return None
    return swap_lines(ctx.lines, a.statement.line, b.statement.line)
