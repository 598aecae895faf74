"""What a drawing shows, before any geometry: one item per summary row at full depth, the data-flow
edges between them (from the IR graph, so any DAG), and which blocks a given `--depth` folds.

Folding follows `summarize --depth N` with one exception that keeps a picture's meaning: a merge block
(`add:`, `concat:`, `multiply:`) never folds into a single box, or its shortcut would vanish; it stays a
merge node, and each of its branches folds into one box instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archspec.head import DenseHead
from archspec.infer import TypedGraph
from archspec.layers import REGISTRY
from archspec.summary import Row, Summary

# Item roles at full depth: a `box` is a layer; a `frame` is a macro call, `repeat` or `branch`, drawn
# around its children or, folded, as one box; a `merge` is an add/concat/multiply node with its branches.
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
    family: str  # the layer family; "block" for a frame (the colour it has when folded)
    label: str  # the row's spec text; a `branch` is named by its first line, as the spec shows it
    parent: int | None = None  # the enclosing frame or merge
    children: list[int] = field(default_factory=list)  # rows one level down
    in_head: bool = False  # inside the dense head after a flatten

    @property
    def own_nodes(self) -> range:
        """The IR nodes drawn as this item at full depth: a box's layer, a merge's merge node."""
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
    roots: list[int]  # the top-level items, in spec order
    edges: list[tuple[int, int]]  # (from, to) between boxes and merges at full depth; a merge has one per input
    head: DenseHead | None
    folded: frozenset[int] = frozenset()  # the frames drawn as one box
    _inputs: dict[int, list[int]] = field(default_factory=dict, repr=False)  # target -> sources, once asked

    def inputs_of(self, item: int) -> list[int]:
        if not self._inputs:
            for source, target in self.edges:
                self._inputs.setdefault(target, []).append(source)
        return self._inputs.get(item, [])

    def shown_as(self, item: int) -> str | None:
        """BOX, FRAME or MERGE as drawn with the model's folding; None when a folded frame hides it."""
        if self.hidden_by(item) is not None:
            return None
        role = self.items[item].role
        return BOX if role == FRAME and item in self.folded else role

    def hidden_by(self, item: int) -> int | None:
        """The outermost folded frame around `item`, if any."""
        outer = None
        parent = self.items[item].parent
        while parent is not None:
            if parent in self.folded:
                outer = parent
            parent = self.items[parent].parent
        return outer

    def family(self, item: int) -> str:
        found = self.items[item]
        return "block" if found.role == FRAME else found.family

    def visible_edges(self) -> list[tuple[int, int]]:
        """Edges between what is drawn: an edge into or out of a folded frame ends at its box."""
        out: list[tuple[int, int]] = []
        for source, target in self.edges:
            edge = (self.hidden_by(source) or source, self.hidden_by(target) or target)
            if edge[0] != edge[1] and (edge not in out or self.shown_as(edge[1]) == MERGE):
                out.append(edge)
        return out


def fold_depth(model: DrawModel, depth: int | None) -> frozenset[int]:
    """The frames `--depth N` folds: those at level N and deeper (1 = top level)."""
    if depth is None:
        return frozenset()
    return frozenset(i.id for i in model.items if i.role == FRAME and i.row.depth >= depth)


def max_depth(model: DrawModel) -> int:
    """The smallest `--depth` that folds nothing."""
    return max((i.row.depth + 1 for i in model.items if i.role == FRAME), default=1)


def build(summary: Summary, typed: TypedGraph, depth: int | None = None) -> DrawModel:
    """Items for every row of `summary`, their nesting and edges, folded at `depth`."""
    rows = summary.rows
    items: list[Item] = []
    roots: list[int] = []
    open_items: list[int] = []  # the chain of items enclosing the current row
    for index, row in enumerate(rows):
        has_children = index + 1 < len(rows) and rows[index + 1].depth > row.depth
        family = layer_family(row.kind)
        role = MERGE if family == "merge" else FRAME if has_children else BOX
        del open_items[row.depth - 1 :]
        parent = open_items[-1] if open_items else None
        items.append(Item(index, row, role, "block" if role == FRAME else family, row.label, parent))
        (items[parent].children if parent is not None else roots).append(index)
        open_items.append(index)
    for item in items:
        if item.row.kind == "branch" and item.children:
            first = items[item.children[0]]
            item.label = first.label + (" …" if len(item.children) > 1 else "")
    owner = {}
    for item in items:
        for node in item.own_nodes:
            owner[node] = item.id
    edges: list[tuple[int, int]] = []
    for node in typed.graph.nodes:
        for source in node.inputs:
            edge = (owner[source], owner[node.id])
            if edge[0] != edge[1] and (edge not in edges or items[edge[1]].role == MERGE):
                edges.append(edge)
    head = summary.head
    if head is not None:
        reached = {head.flatten.id}
        for node in typed.graph.nodes[head.flatten.id + 1 :]:
            if any(i in reached for i in node.inputs):
                reached.add(node.id)
        for item in items:
            item.in_head = set(item.row.nodes) <= reached
    model = DrawModel(summary, typed, items, roots, edges, head)
    model.folded = fold_depth(model, depth)
    return model
