"""Pixel geometry of a layered plan for one folding: sizes in, rectangles and edge polylines out.

Only arithmetic: the widths of the half-columns of each block's lattice, the heights of its rows and
gaps, then positions top-down. `draw/viewer.js` repeats these few rules in the browser when a reader
folds or unfolds a block (the constants travel with the plan), so the two pictures agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

from archspec.draw.layered import DUMMY, IN, ITEM, OUT, Block, Plan
from archspec.draw.model import BOX, FRAME, MERGE

GAP_X = 20.0  # between neighbours in a row
GAP_Y = 26.0  # between rows, when no edge turns there
TRACK = 9.0  # between two horizontal edge tracks in a gap
PAD = 10.0  # inside a frame
HEADER = 40.0  # a frame's title band
LANE = 14.0  # width a long edge or a port takes in its row
PORT_SPREAD = 0.6  # share of a folded box's width its ports spread over
MERGE_SPREAD = 0.75  # share of a merge node's width its inputs spread over

# (left, right, height) of an item drawn as a box or merge node, around the x its edges attach at
Extent = tuple[float, float, float]
Measure = Callable[[int, str], Extent]


@dataclass
class Placement:
    width: float
    height: float
    rects: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)  # item -> x, y, w, h
    titles: dict[int, float] = field(default_factory=dict)  # unfolded frame -> x of its title, from its left
    routes: list[tuple[int, int, int, list[tuple[float, float]], bool]] = field(default_factory=list)
    # (tensor's item, item the piece leaves, item it reaches, points, ends on a drawn node: arrow)


@dataclass
class _Box:
    """A block measured for one folding: its nodes' extents, half-column widths, rows and gaps, size."""

    block: Block
    extents: dict[int, Extent]
    half: list[float]
    row_top: list[float]
    row_height: list[float]
    gap: list[float]
    width: float
    height: float
    title_x: float
    top: float  # content top inside the frame (below the title band)
    left: float


def place(plan: Plan, measure: Measure, title_width: Callable[[int], float]) -> Placement:
    """Coordinates of everything drawn, for the model's current folding. `measure(item, role)` gives the
    extent of a box or merge node; `title_width(frame)` the width of an unfolded frame's title."""
    model = plan.model
    boxes: dict[int | None, _Box] = {}

    def opened(key: int) -> bool:  # a block drawn with its contents: a lane, or an unfolded frame
        return key in plan.lanes or model.shown_as(key) == FRAME

    def size(frame: int | None) -> _Box:
        block = plan.blocks[frame]
        extents: dict[int, Extent] = {}
        columns: dict[float, float] = {}  # boxes in one column share a width: a tidy column
        for slot in block.slots:
            if slot.kind != ITEM:
                continue
            if opened(slot.key):
                inner = size(slot.key)
                extents[slot.key] = (inner.width / 2, inner.width / 2, inner.height)
                continue
            role = model.shown_as(slot.key)
            extents[slot.key] = measure(slot.key, role)
            if role == BOX:
                columns[slot.pos] = max(columns.get(slot.pos, 0.0), extents[slot.key][0])
        for slot in block.slots:
            if slot.kind == ITEM and not opened(slot.key) and model.shown_as(slot.key) == BOX:
                half_w = columns[slot.pos]
                extents[slot.key] = (half_w, half_w, extents[slot.key][2])
        half = [0.0] * (round(2 * block.width) + 1)
        heights = [0.0] * len(block.rows)
        for slot in block.slots:
            left, right, h = extents[slot.key] if slot.kind == ITEM else (LANE / 2, LANE / 2, 0.0)
            k = round(2 * slot.pos)
            half[k] = max(half[k], left + GAP_X / 2)
            half[k + 1] = max(half[k + 1], right + GAP_X / 2)
            heights[slot.row] = max(heights[slot.row], h)
        gaps = [max(GAP_Y, TRACK * (t + 1)) for t in block.tracks]
        tops, y = [], 0.0
        for r, h in enumerate(heights):
            tops.append(y)
            y += h + (gaps[r] if r + 1 < len(heights) else 0.0)
        grid_w, grid_h = sum(half), y
        if frame is None or frame in plan.lanes:
            found = _Box(block, extents, half, tops, heights, gaps, grid_w, grid_h, 0.0, 0.0, 0.0)
        else:
            width = grid_w + 2 * PAD
            ins = [i for i in block.rows[0] if block.slots[i].kind == IN]
            ports = sorted(PAD + _column_x(half, block.slots[i].pos) for i in ins)
            title_x, width, left = _title_place(ports, title_width(frame), width)
            found = _Box(block, extents, half, tops, heights, gaps, width, HEADER + grid_h + PAD, title_x, HEADER, left)
        boxes[frame] = found
        return found

    root = size(None)
    out = Placement(root.width, root.height)
    origin: dict[int | None, tuple[float, float]] = {None: (0.0, 0.0)}
    slot_x: dict[tuple[int | None, int], float] = {}

    def locate(frame: int | None, x0: float, y0: float) -> None:
        box = boxes[frame]
        origin[frame] = (x0, y0)
        for i, slot in enumerate(box.block.slots):
            x = x0 + box.left + _column_x(box.half, slot.pos)
            slot_x[(frame, i)] = x
            if slot.kind != ITEM:
                continue
            left, right, h = box.extents[slot.key]
            y = y0 + box.top + box.row_top[slot.row]
            if opened(slot.key):
                locate(slot.key, x - left, y)
            if slot.key in plan.lanes:
                continue
            out.rects[slot.key] = (x - left, y, left + right, h)
            if model.shown_as(slot.key) == FRAME:
                out.titles[slot.key] = boxes[slot.key].title_x

    locate(None, 0.0, 0.0)

    def pin_x(frame: int | None, index: int, side: str, pin: int) -> float:
        """x where an edge leaves (side OUT) or reaches (side IN) slot `index` of block `frame`."""
        slot = boxes[frame].block.slots[index]
        x = slot_x[(frame, index)]
        if slot.kind != ITEM:
            return x
        if opened(slot.key):
            inner = plan.blocks[slot.key]
            for j in inner.rows[0 if side == IN else -1]:
                port = inner.slots[j]
                if port.kind == side and port.key == pin:
                    return slot_x[(slot.key, j)]
            return x
        left, right, _ = boxes[frame].extents[slot.key]
        if plan.is_block(slot.key):  # a folded frame: its ports spread over the box
            ports = plan.blocks[slot.key].inputs if side == IN else plan.blocks[slot.key].outputs
            return x + _spread(ports.index(pin) if pin in ports else 0, len(ports), (left + right) * PORT_SPREAD)
        if model.shown_as(slot.key) == MERGE and side == IN and pin >= 0:
            return x + _spread(pin, len(model.inputs_of(slot.key)), 2 * left * MERGE_SPREAD)
        return x

    def pin_y(frame: int | None, index: int, side: str, x: float) -> float:
        box = boxes[frame]
        slot = box.block.slots[index]
        y0 = origin[frame][1]
        if slot.kind == IN:
            return y0
        if slot.kind == OUT:
            return y0 + box.height
        if slot.kind == DUMMY:
            return y0 + box.top + box.row_top[slot.row]
        left, _, h = box.extents[slot.key]
        y = y0 + box.top + box.row_top[slot.row]
        if side == OUT:
            return y + h
        if not opened(slot.key) and model.shown_as(slot.key) == MERGE:  # onto the rim of the circle or pill
            r = h / 2
            dx = min(max(0.0, abs(x - slot_x[(frame, index)]) - (left - r)), r)
            return y + r - math.sqrt(r * r - dx * dx)
        return y

    def drawn(block: int | None) -> bool:
        if block in plan.lanes:
            return model.shown_as(plan.lanes[block]) is not None
        return block is None or model.shown_as(block) == FRAME

    for frame, box in boxes.items():
        if not drawn(frame):
            continue
        block = box.block
        y0 = origin[frame][1]
        for piece in block.pieces:
            path = piece.slots
            start_x = pin_x(frame, path[0], OUT, piece.out_pin)
            points = [(start_x, pin_y(frame, path[0], OUT, start_x))]
            for k in range(len(path) - 1):
                upper = block.slots[path[k]]
                last = k == len(path) - 2
                x = pin_x(frame, path[k + 1], IN, piece.in_pin if last else piece.source)
                track = piece.tracks[k]
                gap_top = y0 + box.top + box.row_top[upper.row] + box.row_height[upper.row]
                spacing = box.gap[upper.row] / (block.tracks[upper.row] + 1)  # between the gap's tracks
                if isinstance(track, list):  # a dogleg: down at the middle of its span, onto a low track
                    middle = (points[-1][0] + x) / 2
                    high, low = (gap_top + spacing * (t + 1) for t in track)
                    points += [(points[-1][0], high), (middle, high), (middle, low), (x, low)]
                elif track >= 0:
                    y = gap_top + spacing * (track + 1)
                    points += [(points[-1][0], y), (x, y)]
            end = path[-1]
            points.append((points[-1][0], pin_y(frame, end, IN, points[-1][0])))
            ends = [block.slots[path[0]], block.slots[end]]
            # the items the piece leaves and reaches as drawn; -1 for a lane, which has no border
            reach = [s.key if s.kind == ITEM else frame for s in ends]
            reach = [-1 if r is None or r in plan.lanes else r for r in reach]
            arrow = ends[1].kind == ITEM and not opened(ends[1].key)
            out.routes.append((piece.source, reach[0], reach[1], _simplify(points), arrow))
    return out


def _column_x(half: list[float], pos: float) -> float:
    k = round(2 * pos)
    return sum(half[: k + 1])


def _spread(index: int, count: int, span: float) -> float:
    return 0.0 if count < 2 else (index / (count - 1) - 0.5) * span


def _title_place(ports: list[float], title: float, width: float) -> tuple[float, float, float]:
    """(x of the title, frame width, x of the contents): the title takes the leftmost stretch of the title
    band between the frame's input ports where it fits, so no edge crosses it. Where none is wide
    enough, the frame widens on both sides, the contents staying centred (a chain of frames stays one
    straight column), and the title goes right of the last port."""
    edges = [PAD - 6, *ports, width - PAD + 6]
    for left, right in pairwise(edges):
        if right - left - 12 >= title:
            return left + 6, width, PAD
    extra = 2 * max(0.0, edges[-2] + 6 + title - (width - PAD))  # twice what the right side lacks
    return edges[-2] + extra / 2 + 6, width + extra, PAD + extra / 2


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
