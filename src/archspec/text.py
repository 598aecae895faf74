"""The wordings every output shares: shapes and values, did-you-mean hints, source excerpts with a
caret, the "in expansion of" note, and one plain text table (hand-drawn: rich's Table takes longer
to lay out a ResNet's rows than the tool takes to compile it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

EXCERPT_WIDTH = 100  # characters of a source line shown around the caret


def shape_text(shape: Sequence[int]) -> str:
    """`224x224x3`."""
    return "x".join(str(d) for d in shape)


def describe_shape(shape: Sequence[int]) -> str:
    """A shape in a sentence: `a vector of 1,024` or `7x7x512`."""
    if len(shape) == 1:
        return f"a vector of {shape[0]:,}"
    return shape_text(shape)


def show(value: Any) -> str:
    """An argument value as the spec writes it: `3x3`, `0.3`, `same`, `true`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return shape_text(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def show_pair(value: tuple[int, int]) -> str:
    """`2` for (2, 2), `2x1` otherwise: how a stride reads in a layer label."""
    return str(value[0]) if value[0] == value[1] else show(value)


def nearest(word: str, choices: Iterable[str], count: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to `count` choices nearest to a misspelt `word`, nearest first."""
    import difflib

    return difflib.get_close_matches(word, list(choices), n=count, cutoff=cutoff)


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice nearest to a misspelt `word`, or None when none is near."""
    found = nearest(word, choices, 1, cutoff)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str], shown: str = "`{}`", cutoff: float = 0.6) -> str | None:
    """`did you mean `maxpool`?` for the nearest choice (`shown` formats it), or None."""
    found = closest(word, choices, cutoff)
    return None if found is None else f"did you mean {shown.format(found)}?"


def expansion_note(call: str, line: int) -> str:
    """Where a layer written inside a `def` was expanded from."""
    return f"in expansion of `{call}` at line {line}"


def excerpt(text: str, column: int, end_column: int | None = None) -> tuple[str, int, int]:
    """A source line cut to a window around a 1-based column range: (shown text, caret start, caret width).

    Tabs count as one column, as the parser counts them; a cut end is marked with `...`.
    """
    text = text.rstrip().expandtabs(1)
    start = column - 1
    width = end_column - column if end_column is not None and end_column > column else 1
    shift = 0
    if len(text) > EXCERPT_WIDTH:
        shift = max(0, min(start - EXCERPT_WIDTH // 4, len(text) - EXCERPT_WIDTH))
        shown = text[shift : shift + EXCERPT_WIDTH]
        if shift:
            shown = "..." + shown[3:]
        if shift + EXCERPT_WIDTH < len(text):
            shown += "..."
        text = shown
    start -= shift
    return text, start, max(1, min(width, EXCERPT_WIDTH - start, len(text) - start))


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Iterable[int] = (),
    separator: str = " │ ",
    header_separator: str | None = None,
    rule: str | None = "━╇━",
) -> list[str]:
    """Rows of cells aligned in columns: the header line, a rule (`rule` is where it crosses a
    separator; None for no rule), then one line per row. Columns in `right` are right-aligned."""
    right = set(right)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(values: Sequence[str], between: str) -> str:
        cells = [v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))]
        return between.join(cells)

    lines = [line(headers, separator if header_separator is None else header_separator)]
    if rule is not None:
        lines.append(rule.join("━" * w for w in widths))
    lines.extend(line(row, separator) for row in rows)
    return [text.rstrip() for text in lines]
