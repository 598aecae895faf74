"""Series-parallel layout of a draw model: data flows top to bottom, a merge's branches stand side by
side above the merge node, unfolded blocks are frames around their children; edges are orthogonal.

A spec without named tensors is series-parallel, so a recursive layout is exact and fast (no
crossing minimisation needed). One with named tensors (`-> e1`, `@e1`) is any DAG: `draw.graph`
uses the layered (Sugiyama) layout of `draw.layered` for it instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from archspec.draw.model import FRAME, MERGE, DrawModel, Item, branches

GAP_Y = 22  # between consecutive elements; edges bend in the middle of it
GAP_X = 18  # between branches
PAD = 8  # inside a frame
LANE = 22  # width of an `identity` branch: just its edge


@dataclass
class Placement:
    width: float
    height: float
    rects: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)  # item -> x, y, w, h
    routes: list[tuple[int, int, list[tuple[float, float]]]] = field(default_factory=list)  # from, to, points


@dataclass
class _Element:
    w: float = 0.0
    h: float = 0.0


@dataclass
class _Box(_Element):
    item: int = -1


@dataclass
class _Series(_Element):
    elements: list[_Element] = field(default_factory=list)


@dataclass
class _Frame(_Element):
    item: int = -1
    header: float = 0.0
    body: _Series | None = None


@dataclass
class _Parallel(_Element):
    item: int = -1
    node_w: float = 0.0
    node_h: float = 0.0
    lanes: list[_Series | None] = field(default_factory=list)  # None: an identity branch


Size = Callable[[Item], tuple[float, float]]


def layout(model: DrawModel, box_size: Size, frame_header: Size, merge_size: Size) -> Placement:
    """Place every item. The size functions give a box's (w, h), a frame header's (w, h) and a merge
    node's (w, h), where a merge node's w counts the label on both sides of its centre."""
    builder = _Builder(model, box_size, frame_header, merge_size)
    root = builder.series(model.roots)
    placement = Placement(root.w, root.h)
    placer = _Placer(model, placement)
    placer.place(root, 0.0, 0.0, root.w)
    placer.route()
    return placement


class _Builder:
    def __init__(self, model: DrawModel, box_size: Size, frame_header: Size, merge_size: Size) -> None:
        self.model, self.box_size, self.frame_header, self.merge_size = model, box_size, frame_header, merge_size

    def series(self, ids: list[int]) -> _Series:
        elements = [self.element(self.model.items[i]) for i in ids]
        boxes = [e for e in elements if isinstance(e, _Box)]
        widest = max((b.w for b in boxes), default=0.0)
        for box in boxes:  # boxes of one column share a width: a tidy column
            box.w = widest
        width = max((e.w for e in elements), default=0.0)
        height = sum(e.h for e in elements) + GAP_Y * max(0, len(elements) - 1)
        return _Series(width, height, elements)

    def element(self, item: Item) -> _Element:
        if item.role == FRAME:
            body = self.series(item.children)
            header_w, header_h = self.frame_header(item)
            return _Frame(
                max(body.w, header_w) + 2 * PAD, PAD + header_h + GAP_Y + body.h + PAD, item.id, header_h, body
            )
        if item.role == MERGE:
            lanes = [self.series(b) if b else None for b in branches(self.model, item)]
            node_w, node_h = self.merge_size(item)
            above = sum(lane.w if lane else LANE for lane in lanes) + GAP_X * (len(lanes) - 1)
            tallest = max((lane.h for lane in lanes if lane), default=0.0)
            return _Parallel(max(above, node_w), tallest + GAP_Y + node_h, item.id, node_w, node_h, lanes)
        w, h = self.box_size(item)
        return _Box(w, h, item.id)


class _Placer:
    def __init__(self, model: DrawModel, placement: Placement) -> None:
        self.model = model
        self.out = placement
        # For an item at the head of branches: per enclosing merge, outermost first, the y where edges
        # from the block's input turn, and the x of the branch column they turn into.
        self.head_turns: dict[object, list[tuple[float, float]]] = {}
        self.lane_keys: dict[int, list[object]] = {}  # merge item -> keys of its identity lanes
        self.merge_turn: dict[int, float] = {}  # merge item -> y where its inputs turn towards it

    def place(self, element: _Element, x: float, y: float, width: float) -> None:
        """Place `element` centred in the column [x, x + width] from `y` down."""
        left = x + (width - element.w) / 2
        if isinstance(element, _Box):
            self.out.rects[element.item] = (left, y, element.w, element.h)
        elif isinstance(element, _Series):
            for child in element.elements:
                self.place(child, x, y, width)
                y += child.h + GAP_Y
        elif isinstance(element, _Frame):
            self.out.rects[element.item] = (left, y, element.w, element.h)
            self.place(element.body, left + PAD, y + PAD + element.header + GAP_Y, element.w - 2 * PAD)
        elif isinstance(element, _Parallel):
            self._place_parallel(element, left, y)

    def _place_parallel(self, element: _Parallel, left: float, y: float) -> None:
        above = sum(lane.w if lane else LANE for lane in element.lanes) + GAP_X * (len(element.lanes) - 1)
        x = left + (element.w - above) / 2
        turn = y - GAP_Y / 2
        lanes = []
        for index, lane in enumerate(element.lanes):
            lane_w = lane.w if lane else LANE
            centre = x + lane_w / 2
            heads = self._heads(lane) if lane else [("lane", element.item, index)]
            for head in heads:
                self.head_turns.setdefault(head, []).append((turn, centre))
            if lane is None:
                lanes.append(("lane", element.item, index))
            else:
                self.place(lane, x, y, lane_w)
            x += lane_w + GAP_X
        self.lane_keys[element.item] = lanes
        tallest = max((lane.h for lane in element.lanes if lane), default=0.0)
        node_y = y + tallest + GAP_Y
        self.merge_turn[element.item] = node_y - GAP_Y / 2
        node_x = left + element.w / 2 - element.node_h / 2  # the node's circle is node_h across
        self.out.rects[element.item] = (node_x, node_y, element.node_h, element.node_h)

    def _heads(self, element: _Element) -> list[object]:
        """Keys of what edges from a block's input reach first inside `element`."""
        if isinstance(element, _Box):
            return [element.item]
        if isinstance(element, _Series):
            return self._heads(element.elements[0]) if element.elements else []
        if isinstance(element, _Frame):
            return self._heads(element.body)
        assert isinstance(element, _Parallel)
        heads: list[object] = [("merge", element.item)]
        for index, lane in enumerate(element.lanes):
            heads.extend(self._heads(lane) if lane else [("lane", element.item, index)])
        return heads

    def route(self) -> None:
        items = self.model.items
        lanes_used: dict[int, int] = {}
        for source, target in self.model.edges:
            sx, sy = self._bottom(source)
            tx, ty = self._top(target)
            points = [(sx, sy)]
            if items[target].role == MERGE and not self._inside(source, target):
                used = lanes_used.get(target, 0)
                lanes_used[target] = used + 1
                keys = self.lane_keys[target]
                for turn_y, column_x in self.head_turns.get(keys[min(used, len(keys) - 1)], []):
                    points += [(points[-1][0], turn_y), (column_x, turn_y)]
            elif items[target].role != MERGE:
                for turn_y, column_x in self.head_turns.get(target, []):
                    points += [(points[-1][0], turn_y), (column_x, turn_y)]
            turn_y = self.merge_turn.get(target, ty - GAP_Y / 2)
            points += [(points[-1][0], turn_y), (tx, turn_y), (tx, ty)]
            self.out.routes.append((source, target, _simplify(points)))

    def _inside(self, source: int, merge: int) -> bool:
        return self.model.items[source].row.nodes[0] in self.model.items[merge].row.nodes

    def _bottom(self, item: int) -> tuple[float, float]:
        x, y, w, h = self.out.rects[item]
        return x + w / 2, y + h

    def _top(self, item: int) -> tuple[float, float]:
        x, y, w, _ = self.out.rects[item]
        return x + w / 2, y


def _simplify(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Drop repeated points and the middle of straight runs."""
    out: list[tuple[float, float]] = []
    for point in points:
        if out and abs(point[0] - out[-1][0]) < 0.01 and abs(point[1] - out[-1][1]) < 0.01:
            continue
        if len(out) >= 2:
            (ax, ay), (bx, by) = out[-2], out[-1]
            if (abs(ax - bx) < 0.01 and abs(bx - point[0]) < 0.01) or (
                abs(ay - by) < 0.01 and abs(by - point[1]) < 0.01
            ):
                out[-1] = point
                continue
        out.append(point)
    return out
