"""The `volumes` style: the textbook picture (LeNet's planes, visualkeras), left to right, each feature
map a block whose height, depth and width follow log2 of H, W and C; a folded block is one such block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archspec.draw.graph import MARGIN, PALETTE, head_lines, legend_group, title_group
from archspec.draw.model import FRAME, MERGE, DrawModel, Item, layer_family
from archspec.draw.scene import Polygon, Rect, Scene, Text, text_width
from archspec.summary import shape_text

# Layers that act on a feature map without making a new one are written under the block before them.
ATTACHED_FAMILIES = ("activation", "norm", "dropout")
ATTACHED_KINDS = ("zeropad",)

UNIT_H, UNIT_W, UNIT_C = 9.0, 4.0, 3.5  # scene units per doubling of H, W (depth) and C (width)
GAP = 16.0
LABEL, SMALL = 9.5, 8.5
WRAP = 18  # characters per label line


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
        if item.role == FRAME and not any(layer_family(nodes[i].kind) == "merge" for i in item.row.nodes):
            for child in item.children:
                visit(model.items[child])
            return
        attached = item.row.kind in ATTACHED_KINDS or (not item.row.group and item.family in ATTACHED_FAMILIES)
        if out and attached and item.role not in (MERGE, FRAME):
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


def volumes_scene(model: DrawModel) -> Scene:
    entries = volumes(model)
    columns = []
    for volume in entries:
        front, width, depth = _geometry(volume.shape)
        params = volume.item.row.params + sum(model.items[i].row.params for i in volume.attached)
        label = _wrap(volume.item.row.label)
        bold = len(label)  # the layer's own label; then its attached layers and the parameters
        label += [f"+ {op}" for op in volume.ops] + ([f"{params:,} params"] if params else [])
        text_w = max(text_width(line, LABEL) for line in [*label, shape_text(volume.shape)])
        columns.append((volume, front, width, depth, label, bold, max(width + depth, text_w)))
    tallest = max(c[1] + c[3] for c in columns)
    lines = max(len(c[4]) for c in columns)
    span = sum(c[-1] for c in columns) + GAP * (len(columns) - 1)
    families = [f for f in PALETTE if any(v.item.family == f for v in entries)]
    inner_w = max(span, 320.0)
    subtitle = "block height, depth and width: log2 of H, W and C"
    legend, legend_h = legend_group(families, MARGIN, MARGIN + 53, inner_w)  # under a two-line title
    top = MARGIN + 53 + legend_h + 24
    axis = top + 12 + tallest / 2 + 4  # the centre line every block's front face is centred on
    label_top = axis + tallest / 2 + 16
    notes = head_lines(model)
    height = label_top + 12 * (lines + 1) + (16 * len(notes) + 16 if notes else 0) + MARGIN
    scene = Scene(inner_w + 2 * MARGIN, height)
    title_group(scene, model.summary, subtitle)
    head_x = []
    x = MARGIN + (inner_w - span) / 2
    for volume, front, width, depth, label, bold_lines, column_w in columns:
        left = x + (column_w - width - depth) / 2
        group = scene.group(
            **{
                "class": "volume",
                "data-row": volume.item.id,
                "data-line": volume.item.row.line,
                "data-family": volume.item.family,
                "data-shape": shape_text(volume.shape),
            }
        )
        _block(group.shapes, volume.item.family, left, axis - front / 2 + depth / 2, front, width, depth)
        top_y = axis - front / 2 - depth / 2
        group.shapes.append(Text(x + column_w / 2, top_y - 6, shape_text(volume.shape), SMALL, "#444444", "middle"))
        for index, line in enumerate(label):
            bold = index < bold_lines
            color = "#222222" if bold else "#666666"
            group.shapes.append(Text(x + column_w / 2, label_top + 12 * index, line, LABEL, color, "middle", bold))
        if volume.item.in_head:
            head_x.append((x, x + column_w))
        x += column_w + GAP
    if head_x and notes:
        _head(scene, model, head_x, top, label_top + 12 * lines, notes)
    scene.groups.append(legend)
    return scene


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
