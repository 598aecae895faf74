"""A graph of layers read from a model file, written as a spec: nested `add:`/`concat:`/`multiply:`
blocks where the graph is series-parallel (every merge's branches start where they split), and named
tensors (`-> name`, `@name`) where it is not (DenseNet's concatenations of every earlier output).

Each line ends with a comment saying where in the file the layer came from; `origins` maps the spec's
line numbers back to the file's places, so errors and findings about the spec name the file's layers.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Any

COMMENT_COLUMN = 40
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REPEAT_OR_DIMS = re.compile(r"x[0-9]+|[0-9].*")  # words the spec lexer reads as `x3` repeats or sizes


@dataclass
class Item:
    """One layer: its spec text (`conv 64 3`, or the merge word `add`), the items it reads, where it
    came from (`origin`, any value the caller maps to a place) and the comment that says so."""

    text: str
    inputs: tuple[int, ...]
    origin: Any
    comment: str
    merge: bool = False
    tensor: str = ""  # the file's own name for the output, used when the spec must name it


def write_graph(items: list[Item], output: int, header: str) -> tuple[str, dict[int, Any]]:
    """The spec text computing `items[output]` from `items[0]` (the input), and each line's origin.

    `items` are in topological order. Nested blocks when the graph is series-parallel, otherwise one
    line per layer in order with named tensors.
    """
    live = _live(items, output)
    lines = [header]
    origins: dict[int, Any] = {}
    nested = _Nested(items, live, output).statements()
    if nested is not None:
        _emit_nested(items, nested, lines, origins, 0)
    else:
        _emit_named(items, live, lines, origins)
    return "\n".join(lines) + "\n", origins


def _live(items: list[Item], output: int) -> list[int]:
    """The items `output` depends on, in order (a file may compute tensors its output never reads)."""
    needed, stack = set(), [output]
    while stack:
        index = stack.pop()
        if index not in needed:
            needed.add(index)
            stack.extend(items[index].inputs)
    return sorted(needed)


def _line(text: str, depth: int, comment: str) -> str:
    return f"{('    ' * depth + text).ljust(COMMENT_COLUMN)} # {comment}" if comment else "    " * depth + text


class _Nested:
    """Series-parallel writing: each merge's branches are the paths from its immediate dominator (the
    last item every path to it passes through) to each of its inputs. None when an item would be
    written twice: its output feeds two places that are not one merge's branches."""

    def __init__(self, items: list[Item], live: list[int], output: int) -> None:
        self.items = items
        self.output = output
        self.dominators: dict[int, frozenset[int]] = {}
        for index in live:
            inputs = items[index].inputs
            shared = frozenset.intersection(*(self.dominators[i] for i in inputs)) if inputs else frozenset()
            self.dominators[index] = shared | {index}
        self.written: set[int] = set()

    def statements(self) -> list | None:
        try:
            return [(0, None), *self._path(0, self.output)]
        except _NotSeriesParallel:
            return None

    def _path(self, start: int, end: int) -> list:
        chain: list = []
        index = end
        while index != start:
            if index in self.written or index == 0:
                raise _NotSeriesParallel
            self.written.add(index)
            item = self.items[index]
            if item.merge:
                fork = max(self.dominators[index] - {index})
                chain.append((index, [self._path(fork, i) for i in item.inputs]))
                index = fork
            else:
                chain.append((index, None))
                index = item.inputs[0]
        return chain[::-1]


class _NotSeriesParallel(Exception):
    pass


def _emit_nested(items: list[Item], statements: list, lines: list[str], origins: dict, depth: int) -> None:
    for index, branches in statements:
        item = items[index]
        lines.append(_line(item.text + (":" if branches is not None else ""), depth, item.comment))
        origins[len(lines)] = item.origin
        for branch in branches or ():
            if not branch:
                lines.append("    " * (depth + 1) + "identity")
            elif len(branch) == 1 and branch[0][1] is None:
                _emit_nested(items, branch, lines, origins, depth + 1)
            else:
                lines.append("    " * (depth + 1) + "branch:")
                _emit_nested(items, branch, lines, origins, depth + 2)


def _emit_named(items: list[Item], live: list[int], lines: list[str], origins: dict) -> None:
    """One line per item in order: a line continues the stream from the line above; any other input is
    read by name. Only tensors read away from the line after them are named."""
    previous: dict[int, int] = {}  # item -> the item written just before it
    last = None
    for index in live:
        previous[index] = last
        last = index
    far = {i for index in live for i in items[index].inputs if i != previous[index]}
    names = _names(items, far)
    for index in live:
        item = items[index]
        named = f" -> {names[index]}" if index in names else ""
        if item.merge:
            lines.append(_line(f"{item.text}{named}:", 0, item.comment))
            origins[len(lines)] = item.origin
            for i in item.inputs:
                lines.append("    " + ("identity" if i == previous[index] else f"@{names[i]}"))
            continue
        if index and item.inputs[0] != previous[index]:
            lines.append(f"@{names[item.inputs[0]]}")
        lines.append(_line(item.text + named, 0, item.comment))
        origins[len(lines)] = item.origin


def _names(items: list[Item], wanted: set[int]) -> dict[int, str]:
    """A spec name for each wanted item: the file's tensor name where it is a valid one, else `t<N>`."""
    names: dict[int, str] = {}
    taken: set[str] = set()
    for index in sorted(wanted):
        name = items[index].tensor
        if not _IDENTIFIER.fullmatch(name) or _REPEAT_OR_DIMS.fullmatch(name) or keyword.iskeyword(name):
            name = f"t{index}"
        while name in taken:
            name = f"{name}_{index}"
        taken.add(name)
        names[index] = name
    return names
