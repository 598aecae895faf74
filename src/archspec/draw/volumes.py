"""The `volumes` style: the textbook picture (LeNet's planes, visualkeras), left to right, each feature
map a block whose height, depth and width follow log2 of H, W and C; a folded block is one such block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archspec.draw.graph import MARGIN, PALETTE, head_lines, legend_group, title_group
from archspec.draw.model import BOX, FRAME, DrawModel, Item, layer_family
from archspec.draw.scene import Line, Polygon, Rect, Scene, Text, text_width
from archspec.summary import shape_text

# Layers that act on a feature map without making a new one are written under the block before them.
ATTACHED_FAMILIES = ("activation", "norm", "dropout")
ATTACHED_KINDS = ("zeropad",)

UNIT_H, UNIT_W, UNIT_C = 9.0, 4.0, 3.5  # scene units per doubling of H, W (depth) and C (width)
GAP = 18.0
LABEL, SMALL = 12.0, 12.0  # text sizes: 12 is the smallest anywhere
LINE = 15.0  # between label lines
WRAP = 18  # characters per label line
SKIP_STEP = 14.0  # between skip arrows running over one row
FLOW_COLOR, SKIP_COLOR = "#5f6670", "#6a51a8"


@dataclass
class Volume:
    item: Item
    shape: tuple[int, ...]
    ops: list[str] = field(default_factory=list)  # attached layers' labels, in order
    attached: list[int] = field(default_factory=list)  # their items


def _size(value: int, unit: float) -> float:
    return unit * (math.log2(value) + 1)


def volumes(model: DrawModel) -> list[Volume]:
    """Volumes in data-flow order: sequential blocks unfolded down to the model's depth, blocks with
    branches kept whole, and shape-keeping layers attached to the volume before them."""
    out: list[Volume] = []
    nodes = model.typed.graph.nodes

    def visit(item: Item) -> None:
        shown = model.shown_as(item.id)
        if shown == FRAME and not any(layer_family(nodes[i].kind) == "merge" for i in item.row.nodes):
            for child in item.children:
                visit(model.items[child])
            return
        attached = item.row.kind in ATTACHED_KINDS or (not item.row.group and item.family in ATTACHED_FAMILIES)
        if out and attached and item.role == BOX:
            out[-1].attached.append(item.id)
            out[-1].ops.append(item.row.label)  # the block keeps its layer's shape: padding is a detail
            return
        out.append(Volume(item, item.row.shape))

    for root in model.roots:
        visit(model.items[root])
    return out


def _wrap(text: str) -> list[str]:
    lines = [""]
    for word in text.split():
        if lines[-1] and len(lines[-1]) + 1 + len(word) > WRAP:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    return lines


def _geometry(shape: tuple[int, ...]) -> tuple[float, float, float]:
    """(front height, width, receding depth) of a tensor's block."""
    if len(shape) == 3:
        h, w, c = shape
        return _size(h, UNIT_H), _size(c, UNIT_C), _size(w, UNIT_W)
    return _size(math.prod(shape), UNIT_H * 0.75), UNIT_C * 2, UNIT_W  # a vector: a tall thin slab


def skips(model: DrawModel, entries: list[Volume]) -> list[tuple[int, int]]:
    """(from, to) volume indices of the edges that jump over other volumes: U-Net's copied encoder maps,
    a cell reading the cell before last. Every other edge joins neighbours, which sit side by side."""
    where = {}
    for index, volume in enumerate(entries):
        for item in (volume.item.id, *volume.attached):
            where[item] = index
    for item in model.items:  # what a folded block or a whole merge block hides belongs to its volume
        outer = model.hidden_by(item.id)
        if item.id not in where and outer is not None and outer in where:
            where[item.id] = where[outer]
    found = []
    for source, target in model.edges:
        a, b = where.get(source), where.get(target)
        if a is not None and b is not None and b - a > 1 and (a, b) not in found:
            found.append((a, b))
    return found


def _level(shape: tuple[int, ...], first: tuple[int, ...], previous: int) -> int:
    """How many halvings of the input's height a feature map is down: the row of the U it stands in."""
    if len(shape) != 3 or len(first) != 3:
        return previous
    return max(0, round(math.log2(first[0] / shape[0])))


def volumes_scene(model: DrawModel) -> Scene:
    """Blocks left to right in data-flow order. With skips, each block stands in the row of its spatial
    size (the input's on top, each halving one row lower), so an encoder-decoder is a U: encoder and
    decoder face each other, and each skip is an arrow over the top from one to the other."""
    entries = volumes(model)
    jumps = skips(model, entries)
    columns = []
    level = 0
    for volume in entries:
        front, width, depth = _geometry(volume.shape)
        params = volume.item.row.params + sum(model.items[i].row.params for i in volume.attached)
        label = _wrap(volume.item.label)
        bold = len(label)  # the layer's own label; then its attached layers and the parameters
        label += [f"+ {op}" for op in volume.ops] + ([f"{params:,} params"] if params else [])
        text_w = max(text_width(line, LABEL) for line in [*label, shape_text(volume.shape)])
        if jumps:
            level = _level(volume.shape, model.summary.input_shape, level)
        columns.append((volume, front, width, depth, label, bold, max(width + depth, text_w), level))
    levels = max(c[-1] for c in columns) + 1
    over = [0] * levels  # skip arrows running over each row
    for a, _ in jumps:
        over[columns[a][-1]] += 1
    bands = []  # per row: (top, axis, label top, lines)
    families = [f for f in PALETTE if any(model.family(v.item.id) == f for v in entries)]
    span = sum(c[-2] for c in columns) + GAP * (len(columns) - 1)
    inner_w = max(span, 320.0)
    subtitle = "block height, depth and width: log2 of H, W and C"
    legend, legend_h = legend_group(families, MARGIN, MARGIN + 56, inner_w)  # under a two-line title
    y = MARGIN + 56 + legend_h + 22
    for row in range(levels):
        members = [c for c in columns if c[-1] == row] or [columns[0]]
        tallest = max(c[1] + c[3] for c in members)
        lines = max(len(c[4]) for c in members)
        top = y + SKIP_STEP * over[row]
        axis = top + LABEL + 8 + tallest / 2
        label_top = axis + tallest / 2 + LABEL + 6
        bands.append((top, axis, label_top, lines))
        y = label_top + LINE * lines + 18
    notes = head_lines(model)
    scene = Scene(inner_w + 2 * MARGIN, y + (LINE * len(notes) + 16 if notes else 0) + MARGIN - 18)
    title_group(scene, model.summary, subtitle)
    head_x = []
    x = MARGIN + (inner_w - span) / 2
    faces = []  # per volume: (left, right, top, axis) of its block, for the arrows
    for volume, front, width, depth, label, bold_lines, column_w, row in columns:
        _, axis, label_top, _ = bands[row]
        left = x + (column_w - width - depth) / 2
        group = scene.group(
            **{
                "class": "volume",
                "data-row": volume.item.id,
                "data-line": volume.item.row.line,
                "data-family": model.family(volume.item.id),
                "data-shape": shape_text(volume.shape),
                "data-level": row,
            }
        )
        _block(group.shapes, model.family(volume.item.id), left, axis - front / 2 + depth / 2, front, width, depth)
        top_y = axis - front / 2 - depth / 2
        group.shapes.append(Text(x + column_w / 2, top_y - 6, shape_text(volume.shape), SMALL, "#444444", "middle"))
        for index, line in enumerate(label):
            bold = index < bold_lines
            color = "#222222" if bold else "#666666"
            group.shapes.append(Text(x + column_w / 2, label_top + LINE * index, line, LABEL, color, "middle", bold))
        faces.append((left, left + width + 0.7 * depth, top_y - LABEL - 8, x + column_w))
        if volume.item.in_head:
            head_x.append((x, x + column_w, row))
        x += column_w + GAP
    if jumps:
        _arrows(scene, columns, faces, bands, jumps)
    if head_x and notes:
        row = head_x[0][2]
        _head(scene, model, head_x, bands[row][0], bands[row][2] + LINE * bands[row][3], notes)
    scene.groups.append(legend)
    return scene


def _arrows(scene: Scene, columns, faces, bands, jumps) -> None:
    """Flow arrows where the U steps down or up a row, and each skip as an arrow over the top."""
    for index in range(len(columns) - 1):
        here, there = columns[index][-1], columns[index + 1][-1]
        if here != there:  # from the block's side, down or up the gap after its column, into the next
            start = (faces[index][1], bands[here][1])
            mid = faces[index][3] + GAP / 2
            end = (faces[index + 1][0], bands[there][1])
            _arrow(scene.group(**{"class": "flow"}).shapes, [start, (mid, start[1]), (mid, end[1]), end], FLOW_COLOR)
    taken: dict[int, int] = {}
    for a, b in jumps:  # from above the block's shape, over the row's top, down onto the reader
        row = columns[a][-1]
        taken[row] = taken.get(row, 0) + 1
        y = bands[row][0] - SKIP_STEP * (taken[row] - 0.5)
        start = ((faces[a][0] + faces[a][1]) / 2, faces[a][2])
        end = ((faces[b][0] + faces[b][1]) / 2, faces[b][2])
        group = scene.group(**{"class": "skip", "data-from": columns[a][0].item.id, "data-to": columns[b][0].item.id})
        _arrow(group.shapes, [start, (start[0], y), (end[0], y), end], SKIP_COLOR)


def _arrow(shapes: list, points: list[tuple[float, float]], color: str) -> None:
    """A polyline ending in an arrowhead that points along its last segment (down or right)."""
    *body, (tx, ty) = points
    if abs(body[-1][0] - tx) < 0.01:  # heading down
        shapes.append(Line((*body, (tx, ty - 6)), stroke=color, stroke_width=1.6))
        shapes.append(Polygon(((tx - 5, ty - 8), (tx + 5, ty - 8), (tx, ty)), fill=color))
    else:
        shapes.append(Line((*body, (tx - 6, ty)), stroke=color, stroke_width=1.6))
        shapes.append(Polygon(((tx - 8, ty - 5), (tx - 8, ty + 5), (tx, ty)), fill=color))


def _shade(color: str, factor: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{max(0, min(255, round(v * factor))):02x}" for v in (r, g, b))


def _block(shapes: list, family: str, x: float, y: float, front: float, width: float, depth: float) -> None:
    """A box in oblique projection: front face at (x, y), depth receding up and to the right."""
    fill, stroke = PALETTE[family]
    dx, dy = depth * 0.7, -depth * 0.7
    shapes.append(
        Polygon(((x, y), (x + dx, y + dy), (x + width + dx, y + dy), (x + width, y)), _shade(fill, 1.04), stroke)
    )
    shapes.append(
        Polygon(
            ((x + width, y), (x + width + dx, y + dy), (x + width + dx, y + front + dy), (x + width, y + front)),
            _shade(fill, 0.86),
            stroke,
        )
    )
    shapes.append(Rect(x, y, width, front, fill=fill, stroke=stroke))


def _head(scene: Scene, model: DrawModel, spans, top: float, bottom: float, notes: list[str]) -> None:
    from archspec.draw.graph import head_colors

    color, _ = head_colors(model)
    x0, x1 = spans[0][0] - 6, spans[-1][1] + 6
    group = scene.group(**{"class": "dense-head", "data-share": f"{model.head.share:.4f}"})
    group.shapes.append(
        Rect(x0, top - 8, x1 - x0, bottom - top + 16, stroke=color, stroke_width=1.6, radius=8, dash=True)
    )
    fits_left = x1 - max(text_width(line, LABEL) for line in notes) >= MARGIN
    for index, line in enumerate(notes):
        x, anchor = (x1, "end") if fits_left else (MARGIN, "start")
        group.shapes.append(Text(x, bottom + 26 + 16 * index, line, LABEL, color, anchor, index == 1))
