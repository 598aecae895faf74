"""The `graph` style: one box per layer or folded block, data flowing down, blocks framed, coloured by
layer family, with the dense head after a `flatten` outlined and its share of the parameters.
"""

from __future__ import annotations

from archspec.draw.geometry import Placement, place
from archspec.draw.layered import Plan, plan
from archspec.draw.model import BOX, FRAME, MERGE, DrawModel, Item
from archspec.draw.scene import Circle, Group, Line, Polygon, Rect, Scene, Text, text_width
from archspec.summary import human_count, shape_text

# Fill and outline by layer family (the kinds' `family` trait), in legend order.
PALETTE = {
    "input": ("#eeeeee", "#7f7f7f"),
    "conv": ("#cfe2f3", "#3d6fa8"),
    "pool": ("#d9ead3", "#5b9448"),
    "global_pool": ("#c4e0bb", "#3f7a30"),
    "norm": ("#fff2cc", "#b38600"),
    "activation": ("#f3dcea", "#a64d79"),
    "dropout": ("#f4f4f4", "#9a9a9a"),
    "reshape": ("#d5ecee", "#3f8790"),
    "pad": ("#e2f0f1", "#5f9ea6"),
    "dense": ("#fde2c8", "#d2731c"),
    "merge": ("#ffffff", "#444444"),
    "block": ("#e3dcf2", "#6a51a8"),
}
LEGEND_NAMES = {
    "conv": "convolution",
    "pool": "pooling",
    "global_pool": "global pooling",
    "norm": "normalization",
    "dropout": "regularization",
    "pad": "padding",
    "block": "folded block",
}
FRAME_FILLS = ("#f3f4f7", "#e8ebf0")  # alternating by nesting depth
FRAME_STROKE = "#9aa3af"
HEAD_COLOR, HEAD_FILL = "#c62828", "#fdecea"  # a dense head above the lint threshold
QUIET_HEAD_COLOR, QUIET_HEAD_FILL = "#9e7c00", "#fbf6e3"  # a dense head below it
EDGE_COLOR = "#5f6670"
MERGE_SYMBOLS = {"add": "⊕", "multiply": "⊗", "concat": "‖"}

# Text sizes in scene units (SVG pixels at 1:1, points in the PDF): 12 is the smallest anywhere.
TITLE, SUBTITLE, LABEL, DETAIL, SMALL = 16.0, 12.0, 13.0, 12.0, 12.0
BOX_PAD_X, BOX_H, MIN_BOX_W = 10.0, 44.0, 130.0
RADIUS = 14.0
MARGIN = 20.0


def share_text(share: float) -> str:
    return f"{share:.1%}" if share >= 0.001 else "<0.1%"


def detail_text(model: DrawModel, item: Item, as_box: bool = True) -> str:
    """A box's second line: output shape, parameters (with their share in a dense head), and for a folded
    block the layers inside (`as_box`; an unfolded frame's title shows them)."""
    row = item.row
    parts = [shape_text(row.shape)]
    if row.params:
        share = f" ({share_text(row.params / model.summary.totals.params)})" if item.in_head else ""
        parts.append(f"{row.params:,} params{share}")
    if item.role == FRAME and as_box:
        parts.append(f"{item.layers} layers")
    return " · ".join(parts)


def merge_lines(model: DrawModel, item: Item) -> tuple[str, str]:
    row = item.row
    numbers = shape_text(row.shape)
    parent = model.items[item.parent].row if item.parent is not None else None
    if row.params and (parent is None or parent.params != row.params):  # else the frame above says it
        numbers += f" · {row.params:,} params in block"
    return item.label, numbers


def measure(model: DrawModel):
    """The extent (left, right, height) of an item drawn as a box or a merge node, around its edges' x."""

    def extent(item_id: int, role: str) -> tuple[float, float, float]:
        item = model.items[item_id]
        if role == MERGE:
            label, numbers = merge_lines(model, item)
            half = merge_width(model, item) / 2
            return half, half + 6 + max(text_width(label, LABEL), text_width(numbers, DETAIL)), 2 * RADIUS
        width = max(text_width(item.label, LABEL), text_width(detail_text(model, item), DETAIL)) + 2 * BOX_PAD_X
        width = max(MIN_BOX_W, width) + (3 if item.role == FRAME else 0)  # a folded block's second sheet
        return width / 2, width / 2, BOX_H + (3 if item.role == FRAME else 0)

    return extent


def merge_width(model: DrawModel, item: Item) -> float:
    """A merge node is a circle; with four inputs or more, a pill wide enough for their arrowheads."""
    return max(2 * RADIUS, 11.0 * (len(model.inputs_of(item.id)) - 1) + 16)


def title_width(model: DrawModel):
    def width(frame: int) -> float:
        item = model.items[frame]
        return max(text_width(item.label, LABEL), text_width(detail_text(model, item, as_box=False), DETAIL))

    return width


def layout(model: DrawModel, layered: Plan | None = None) -> Placement:
    """Coordinates of the model as folded, from its layered plan (made here unless given)."""
    return place(layered or plan(model), measure(model), title_width(model))


def graph_scene(model: DrawModel, layered: Plan | None = None) -> Scene:
    placement = layout(model, layered)
    notes = head_lines(model)
    annotation_w = max((text_width(t, SMALL + 0.5) for t in notes), default=-22.0) + 22
    shown = [i for i in model.items if model.shown_as(i.id) is not None]
    families = [f for f in PALETTE if any(model.family(i.id) == f for i in shown if model.shown_as(i.id) != FRAME)]
    inner_w = max(placement.width + annotation_w, 300.0)
    legend, legend_h = legend_group(families, MARGIN, MARGIN + 46, inner_w)
    top = MARGIN + 46 + legend_h + 20
    left = MARGIN + (inner_w - annotation_w - placement.width) / 2
    scene = Scene(inner_w + 2 * MARGIN, top + placement.height + MARGIN)
    title_group(scene, model.summary)

    def rect(item_id: int) -> tuple[float, float, float, float]:
        x, y, w, h = placement.rects[item_id]
        return x + left, y + top, w, h

    frames = [i for i in shown if model.shown_as(i.id) == FRAME]
    for item in frames:  # outer frames first, so inner ones are painted over them
        x, y, w, h = rect(item.id)
        group = scene.group(**{"class": "frame-fill"})
        group.shapes.append(Rect(x, y, w, h, fill=FRAME_FILLS[(item.row.depth - 1) % 2], radius=6))
    if notes:
        head_rects = [rect(i.id) for i in shown if i.in_head and model.shown_as(i.id) != FRAME]
        if head_rects:
            _head(scene, model, head_rects, notes)
    for source, start, end, points, arrow in placement.routes:
        group = scene.group(**{"class": "edge", "data-tensor": source, "data-from": start, "data-to": end})
        edge_shapes(group.shapes, [(x + left, y + top) for x, y in points], arrow)
    for item in shown:
        role = model.shown_as(item.id)
        group = scene.group(**row_attributes(model, item))
        x, y, w, h = rect(item.id)
        if role == BOX:
            box_shapes(group.shapes, model, item, x, y, w)
        elif role == FRAME:
            group.shapes.append(Rect(x, y, w, h, stroke=FRAME_STROKE, radius=6, dash=item.row.kind == "branch"))
            frame_title_shapes(group.shapes, model, item, x + placement.titles[item.id], y)
        else:
            merge_shapes(group.shapes, model, item, x + merge_width(model, item) / 2, y + RADIUS)
    scene.groups.append(legend)
    return scene


def row_attributes(model: DrawModel, item: Item) -> dict[str, object]:
    role = model.shown_as(item.id)
    folded = " folded" if role == BOX and item.role == FRAME else ""
    attrs: dict[str, object] = {
        "class": f"row {role}{folded}",
        "data-row": item.id,
        "data-line": item.row.line,
        "data-depth": item.row.depth,
        "data-kind": item.row.kind,
        "data-family": model.family(item.id),
    }
    if role == MERGE:
        attrs["data-inputs"] = len(model.inputs_of(item.id))
    return attrs


def title_group(scene: Scene, summary, note: str = "") -> None:
    """The model's name, totals and input → output over the picture (widening the scene to fit)."""
    totals = summary.totals
    subtitle = (
        f"{totals.params:,} params · {human_count(totals.macs)} MACs · "
        f"{shape_text(summary.input_shape)} → {shape_text(summary.output_shape)}"
    )
    lines = [subtitle, note] if note else [subtitle]
    needed = max(text_width(summary.name, TITLE), *(text_width(t, SUBTITLE) for t in lines)) + 2 * MARGIN
    scene.width = max(scene.width, needed)
    group = scene.group(**{"class": "title"})
    group.shapes.append(Text(MARGIN, MARGIN + 15, summary.name, TITLE, bold=True))
    for index, line in enumerate(lines):
        group.shapes.append(Text(MARGIN, MARGIN + 33 + 15 * index, line, SUBTITLE, "#555555"))


def box_shapes(shapes: list, model: DrawModel, item: Item, x: float, y: float, w: float) -> None:
    """A layer, or a folded block (a second sheet behind it says "several layers")."""
    fill, stroke = PALETTE[model.family(item.id)]
    folded = item.role == FRAME
    if folded:
        w -= 3
        shapes.append(Rect(x + 3, y + 3, w, BOX_H, fill=fill, stroke=stroke, radius=4))
    shapes.append(Rect(x, y, w, BOX_H, fill=fill, stroke=stroke, stroke_width=1.4 if folded else 1.0, radius=4))
    shapes.append(Text(x + BOX_PAD_X, y + 19, item.label, LABEL, bold=True))
    heavy = item.in_head and item.row.params > model.summary.totals.params / 10  # where the parameters are
    color, _ = head_colors(model) if heavy else ("#444444", "")
    shapes.append(Text(x + BOX_PAD_X, y + 36, detail_text(model, item), DETAIL, color=color, bold=heavy))


def frame_title_shapes(shapes: list, model: DrawModel, item: Item, x: float, y: float) -> None:
    """An unfolded block's title: its call and totals, in the band above its contents."""
    shapes.append(Text(x, y + 18, item.label, LABEL, color="#3b4250", bold=True))
    shapes.append(Text(x, y + 33, detail_text(model, item, as_box=False), DETAIL, color="#555d6b"))


def merge_shapes(shapes: list, model: DrawModel, item: Item, cx: float, cy: float) -> None:
    fill, stroke = PALETTE["merge"]
    half = merge_width(model, item) / 2
    if half > RADIUS:
        shapes.append(Rect(cx - half, cy - RADIUS, 2 * half, 2 * RADIUS, fill, stroke, 1.4, RADIUS))
    else:
        shapes.append(Circle(cx, cy, RADIUS, fill=fill, stroke=stroke, stroke_width=1.4))
    shapes.append(Text(cx, cy + 6, MERGE_SYMBOLS.get(item.row.kind, "+"), 17, anchor="middle", color=stroke))
    label, numbers = merge_lines(model, item)
    shapes.append(Text(cx + half + 6, cy - 3, label, LABEL, bold=True))
    shapes.append(Text(cx + half + 6, cy + 12, numbers, DETAIL, color="#444444"))


def edge_shapes(shapes: list, points: list[tuple[float, float]], arrow: bool) -> None:
    """A polyline; with `arrow`, it stops short of its last point, where an arrowhead ends."""
    if not arrow:
        shapes.append(Line(tuple(points), stroke=EDGE_COLOR))
        return
    *body, (tx, ty) = points
    shapes.append(Line((*body, (tx, ty - 5)), stroke=EDGE_COLOR))
    shapes.append(Polygon(((tx - 4, ty - 7), (tx + 4, ty - 7), (tx, ty)), fill=EDGE_COLOR))


def head_lines(model: DrawModel) -> list[str]:
    head, summary = model.head, model.summary
    if head is None:
        return []
    lines = [
        f"dense head after `flatten` (line {head.flatten.line})",
        f"{head.head_params:,} params = {head.share:.1%} of the model",
    ]
    if summary.suggests_gap:
        lines.append(f"CA101: `gap` instead of `flatten`: {head.with_gap:,} params")
    return lines


def head_colors(model: DrawModel) -> tuple[str, str]:
    """(line, fill) colours of the dense head: loud when it is above the lint threshold (CA101)."""
    return (HEAD_COLOR, HEAD_FILL) if model.summary.suggests_gap else (QUIET_HEAD_COLOR, QUIET_HEAD_FILL)


def _head(scene: Scene, model: DrawModel, rects: list, lines: list[str]) -> None:
    color, fill = head_colors(model)
    x0 = min(r[0] for r in rects) - 7
    y0 = min(r[1] for r in rects) - 7
    x1 = max(r[0] + r[2] for r in rects) + 10
    y1 = max(r[1] + r[3] for r in rects) + 10
    group = scene.group(**{"class": "dense-head", "data-share": f"{model.head.share:.4f}"})
    group.shapes.append(Rect(x0, y0, x1 - x0, y1 - y0, fill=fill, stroke=color, stroke_width=1.6, radius=8, dash=True))
    for index, line in enumerate(lines):
        group.shapes.append(Text(x1 + 10, y0 + 15 + 16 * index, line, SMALL + 0.5, color=color, bold=index == 1))


def legend_group(families: list[str], x0: float, y0: float, width: float) -> tuple[Group, float]:
    """The colour key, wrapped to `width`; returns its group (drawn last) and its height."""
    group = Group({"class": "legend"})
    x, y = x0, y0
    for family in families:
        fill, stroke = PALETTE[family]
        name = LEGEND_NAMES.get(family, family)
        step = 20 + text_width(name, SMALL) + 16
        if x > x0 and x + step > x0 + width:
            x, y = x0, y + 20
        group.shapes.append(Rect(x, y, 13, 13, fill=fill, stroke=stroke, radius=2))
        group.shapes.append(Text(x + 19, y + 11, name, SMALL, color="#333333"))
        x += step
    return group, (y - y0 + 16 if families else 0.0)
