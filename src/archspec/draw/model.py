"""What a drawing shows, before any geometry: one item per row of `summarize --depth N`, and the
data-flow edges between items, taken from the IR graph (so any DAG, not only merge blocks, has edges).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archspec.head import DenseHead
from archspec.infer import TypedGraph
from archspec.layers import REGISTRY
from archspec.summary import Row, Summary

# Item roles: a `box` is a layer or a folded block; a `frame` is an unfolded call, repeat or branch
# drawn around its children; a `merge` is an unfolded add/concat/multiply, drawn as the node where
# its branches meet.
BOX, FRAME, MERGE = "box", "frame", "merge"


def layer_family(kind: str) -> str:
    """The family a layer kind is coloured by (the kind's own `family` trait); "block" for a folded
    macro call, repeat or branch."""
    layer = REGISTRY.get(kind)
    return layer.family if layer is not None else "block"


@dataclass
class Item:
    id: int  # index in `DrawModel.items`, in the order of the summary rows
    row: Row
    role: str  # BOX, FRAME or MERGE
    family: str
    parent: int | None = None  # the enclosing frame or merge
    children: list[int] = field(default_factory=list)  # visible rows one level down
    in_head: bool = False  # one of the layers after the flatten of a dense head

    @property
    def own_nodes(self) -> range:
        """The IR nodes drawn as this item: all of a box's, only the merge node of a merge."""
        nodes = self.row.nodes
        if self.role == MERGE:
            return range(nodes[-1], nodes[-1] + 1)
        return range(0) if self.role == FRAME else nodes

    @property
    def layers(self) -> int:
        return len(self.row.nodes)


@dataclass
class DrawModel:
    summary: Summary
    typed: TypedGraph
    items: list[Item]
    roots: list[int]  # the top-level items, in data-flow order
    edges: list[tuple[int, int]]  # (from item, to item) in node order; a merge has one per input
    head: DenseHead | None

    def inputs_of(self, item: int) -> list[int]:
        return [src for src, dst in self.edges if dst == item]


def build(summary: Summary, typed: TypedGraph, depth: int | None) -> DrawModel:
    """Items for `summary.folded(depth)`, their nesting, and the edges between them."""
    rows = summary.folded(depth)
    items: list[Item] = []
    roots: list[int] = []
    open_items: list[int] = []  # the chain of items enclosing the current row
    for index, row in enumerate(rows):
        expanded = index + 1 < len(rows) and rows[index + 1].depth > row.depth
        role = (MERGE if layer_family(row.kind) == "merge" else FRAME) if expanded else BOX
        if layer_family(row.kind) == "merge" and len(row.nodes) == 1:  # only `identity` / `@name` branches
            role = MERGE
        family = "block" if role == BOX and row.group else layer_family(row.kind)
        del open_items[row.depth - 1 :]
        parent = open_items[-1] if open_items else None
        items.append(Item(index, row, role, family, parent))
        (items[parent].children if parent is not None else roots).append(index)
        open_items.append(index)
    owner = {}
    for item in items:
        for node in item.own_nodes:
            owner[node] = item.id
    edges: list[tuple[int, int]] = []
    for node in typed.graph.nodes:
        for source in node.inputs:
            edge = (owner[source], owner[node.id])
            # Branches reading one tensor are one edge per branch head; a merge keeps one per input.
            if edge[0] != edge[1] and (edge not in edges or items[edge[1]].role == MERGE):
                edges.append(edge)
    head = summary.head
    if head is not None:
        reached = {head.flatten.id}
        for node in typed.graph.nodes[head.flatten.id + 1 :]:
            if any(i in reached for i in node.inputs):
                reached.add(node.id)
        for item in items:
            item.in_head = item.role != FRAME and set(item.own_nodes) <= reached
    return DrawModel(summary, typed, items, roots, edges, head)


def branches(model: DrawModel, merge: Item) -> list[list[int]]:
    """The children of an unfolded merge split into its branches, in the merge's input order;
    an `identity` branch is an empty list.

    Branches are written one after another, so each is the run of children up to the one that
    holds the node feeding the merge. Raises ValueError when the children do not split that way
    (a graph that is not series-parallel).
    """
    graph = model.typed.graph
    merge_node = graph.nodes[merge.row.nodes[-1]]
    block = merge.row.nodes
    children = merge.children
    result: list[list[int]] = []
    start = 0
    for source in merge_node.inputs:
        if source not in block:
            result.append([])
            continue
        end = next((i for i in range(start, len(children)) if source in model.items[children[i]].row.nodes), None)
        if end is None:
            raise ValueError(f"merge at line {merge.row.line} is not series-parallel")
        result.append(children[start : end + 1])
        start = end + 1
    if start != len(children):
        raise ValueError(f"merge at line {merge.row.line} is not series-parallel")
    return result
