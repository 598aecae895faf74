"""What the summary says about named tensors: a row's `-> name`, and the inputs of a layer or folded
block that reads a named tensor (its "Connected to" cell)."""

from __future__ import annotations


def block_inputs(graph, nodes: range, names: dict[int, str]) -> tuple[str, ...]:
    """A call's or repeat's inputs from outside it, when one is a named tensor other than the row above
    (a cell reading `prev=@c1`): what a folded row (`--depth`) is connected to."""
    outside = sorted({i for n in nodes for i in graph.nodes[n].inputs if i < nodes.start})
    if not any(i in names and i != nodes.start - 1 for i in outside):
        return ()
    return tuple(
        f"@{names[i]} ({graph.nodes[i].label} @{graph.nodes[i].line})" if i in names else graph.nodes[i].label
        for i in outside
    )


def named(names: dict[int, str], node: int) -> str:
    """` -> e1` after the label of a row whose output the spec named."""
    return f" -> {names[node]}" if node in names else ""


def named_inputs(graph, node, names: dict[int, str]) -> tuple[str, ...]:
    """A layer's inputs when it reads a named tensor other than the row above it (`@e1` on a line)."""
    if not any(i in names and i != node.id - 1 for i in node.inputs):
        return ()
    return tuple(
        f"@{names[i]} ({graph.nodes[i].label} @{graph.nodes[i].line})" if i in names else graph.nodes[i].label
        for i in node.inputs
    )
