"""The `graph` style: one box per summary row, data flowing down, branches side by side, coloured by
layer family, with the dense head after a `flatten` outlined and its share of the parameters.
"""

from __future__ import annotations

from archspec.draw.layout import PAD, layout
from archspec.draw.model import BOX, FRAME, MERGE, DrawModel, Item
from archspec.draw.scene import Circle, Line, Polygon, Rect, Scene, Text, text_width
from archspec.summary import human_count, shape_text

# family -> (fill, stroke); the legend lists them in this order
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
HEAD_COLOR, HEAD_FILL = "#c62828", "#fdecea"  # a dense head above the lint threshold
QUIET_HEAD_COLOR, QUIET_HEAD_FILL = "#9e7c00", "#fbf6e3"  # a dense head below it
EDGE_COLOR = "#5f6670"
MERGE_SYMBOLS = {"add": "⊕", "multiply": "⊗", "concat": "‖"}

LABEL, DETAIL, HEADER, HEADER_DETAIL = 11.0, 9.0, 10.0, 8.5
BOX_PAD_X, BOX_H, MIN_BOX_W = 10.0, 38.0, 120.0
HEADER_H = 26.0
RADIUS = 11.0
MARGIN = 18.0


def share_text(share: float) -> str:
    return f"{share:.1%}" if share >= 0.001 else "<0.1%"


def detail_text(model: DrawModel, item: Item) -> str:
    """A box's second line: output shape, parameters (with their share in a dense head), layers inside."""
    row = item.row
    parts = [shape_text(row.shape)]
    if row.params:
        share = f" ({share_text(row.params / model.summary.totals.params)})" if item.in_head else ""
        parts.append(f"{row.params:,} params{share}")
    if item.role == BOX and row.group:
        parts.append(f"{item.layers} layers")
    return " · ".join(parts)


def _box_size(model: DrawModel):
    def size(item: Item) -> tuple[float, float]:
        width = max(text_width(item.row.label, LABEL), text_width(detail_text(model, item), DETAIL))
        return max(MIN_BOX_W, width + 2 * BOX_PAD_X), BOX_H

    return size


def _header_size(model: DrawModel):
    def size(item: Item) -> tuple[float, float]:
        return max(text_width(item.row.label, HEADER), text_width(detail_text(model, item), HEADER_DETAIL)), HEADER_H

    return size


def _merge_lines(model: DrawModel, item: Item) -> tuple[str, str]:
    row = item.row
    numbers = shape_text(row.shape)
    parent = model.items[item.parent].row if item.parent is not None else None
    if row.params and (parent is None or parent.params != row.params):  # else the frame above says it
        numbers += f" · {row.params:,} params in block"
    return row.label, numbers


def _merge_size(model: DrawModel):
    def size(item: Item) -> tuple[float, float]:
        label, numbers = _merge_lines(model, item)
        text = max(text_width(label, LABEL), text_width(numbers, DETAIL))
        return 2 * (RADIUS + 6 + text), 2 * RADIUS

    return size


def graph_scene(model: DrawModel) -> Scene:
    if model.typed.graph.names:  # named tensors: any DAG, not only series-parallel
        from archspec.draw.layered import layered_layout

        placement = layered_layout(model, _box_size(model), _merge_size(model))
    else:
        placement = layout(model, _box_size(model), _header_size(model), _merge_size(model))
    notes = head_lines(model)
    annotation_w = max((text_width(t, DETAIL + 0.5) for t in notes), default=-22.0) + 22
    families = [f for f in PALETTE if any(i.family == f for i in model.items if i.role != FRAME)]
    inner_w = max(placement.width + annotation_w, 300.0)
    legend, legend_h = legend_group(families, MARGIN, MARGIN + 40, inner_w)
    top = MARGIN + 40 + legend_h + 16
    left = MARGIN + (inner_w - annotation_w - placement.width) / 2
    scene = Scene(inner_w + 2 * MARGIN, top + placement.height + MARGIN)
    title_group(scene, model.summary)

    def rect(item_id: int) -> tuple[float, float, float, float]:
        x, y, w, h = placement.rects[item_id]
        return x + left, y + top, w, h

    for item in model.items:
        if item.role == FRAME and item.id in placement.rects:  # the layered layout draws no frames
            x, y, w, h = rect(item.id)
            fill = FRAME_FILLS[(item.row.depth - 1) % 2]
            scene.group(**{"class": "frame-fill"}).shapes.append(Rect(x, y, w, h, fill=fill, radius=6))
    if notes:
        _head(scene, model, [rect(i.id) for i in model.items if i.in_head], notes)
    for source, target, points in placement.routes:
        group = scene.group(**{"class": "edge", "data-from": source, "data-to": target})
        _arrow(group.shapes, [(x + left, y + top) for x, y in points])
    for item in model.items:
        attrs = {
            "class": f"row {item.role}",
            "data-row": item.id,
            "data-line": item.row.line,
            "data-depth": item.row.depth,
            "data-kind": item.row.kind,
            "data-family": item.family,
        }
        if item.role == MERGE:
            attrs["data-inputs"] = len(model.inputs_of(item.id))
        if item.id not in placement.rects:
            continue
        group = scene.group(**attrs)
        x, y, w, h = rect(item.id)
        if item.role == BOX:
            _box(group.shapes, model, item, x, y, w, h)
        elif item.role == FRAME:
            _frame(group.shapes, model, item, x, y, w, h)
        else:
            _merge(group.shapes, model, item, x + w / 2, y + h / 2)
    scene.groups.append(legend)
    return scene


def title_group(scene: Scene, summary, note: str = "") -> None:
    """The model's name, totals and input → output over the picture (widening the scene to fit)."""
    totals = summary.totals
    subtitle = (
        f"{totals.params:,} params · {human_count(totals.macs)} MACs · "
        f"{shape_text(summary.input_shape)} → {shape_text(summary.output_shape)}"
    )
    lines = [subtitle, note] if note else [subtitle]
    needed = max(text_width(summary.name, 14), *(text_width(t, 9.5) for t in lines)) + 2 * MARGIN
    scene.width = max(scene.width, needed)
    group = scene.group(**{"class": "title"})
    group.shapes.append(Text(MARGIN, MARGIN + 14, summary.name, 14, bold=True))
    for index, line in enumerate(lines):
        group.shapes.append(Text(MARGIN, MARGIN + 30 + 13 * index, line, 9.5, "#555555"))


def _box(shapes: list, model: DrawModel, item: Item, x, y, w, h) -> None:
    fill, stroke = PALETTE[item.family]
    if item.row.group:  # a folded block: a second sheet behind it says "several layers"
        shapes.append(Rect(x + 3, y + 3, w, h, fill=fill, stroke=stroke, radius=4))
    shapes.append(Rect(x, y, w, h, fill=fill, stroke=stroke, stroke_width=1.4 if item.row.group else 1.0, radius=4))
    shapes.append(Text(x + BOX_PAD_X, y + 16, item.row.label, LABEL, bold=True))
    heavy = item.in_head and item.row.params > model.summary.totals.params / 10  # where the parameters are
    color, _ = head_colors(model) if heavy else ("#444444", "")
    shapes.append(Text(x + BOX_PAD_X, y + 30, detail_text(model, item), DETAIL, color=color, bold=heavy))


def _frame(shapes: list, model: DrawModel, item: Item, x, y, w, h) -> None:
    fill = FRAME_FILLS[(item.row.depth - 1) % 2]
    branch = item.row.kind == "branch"
    shapes.append(Rect(x, y, w, h, stroke="#9aa3af", radius=6, dash=branch))
    label, detail = item.row.label, detail_text(model, item)
    # The input edge enters through the header: a backdrop keeps the text readable over it.
    width = max(text_width(label, HEADER), text_width(detail, HEADER_DETAIL))
    shapes.append(Rect(x + PAD - 2, y + PAD - 1, width + 4, HEADER_H - 2, fill=fill))
    shapes.append(Text(x + PAD, y + PAD + 9, label, HEADER, color="#3b4250", bold=True))
    shapes.append(Text(x + PAD, y + PAD + 21, detail, HEADER_DETAIL, color="#555d6b"))


def _merge(shapes: list, model: DrawModel, item: Item, cx, cy) -> None:
    fill, stroke = PALETTE["merge"]
    shapes.append(Circle(cx, cy, RADIUS, fill=fill, stroke=stroke, stroke_width=1.4))
    shapes.append(Text(cx, cy + 5.5, MERGE_SYMBOLS.get(item.row.kind, "+"), 15, anchor="middle", color=stroke))
    label, numbers = _merge_lines(model, item)
    shapes.append(Text(cx + RADIUS + 6, cy - 2, label, LABEL, bold=True))
    shapes.append(Text(cx + RADIUS + 6, cy + 10, numbers, DETAIL, color="#444444"))


def _arrow(shapes: list, points: list[tuple[float, float]]) -> None:
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
        group.shapes.append(Text(x1 + 10, y0 + 14 + 14 * index, line, DETAIL + 0.5, color=color, bold=index == 1))


def legend_group(families: list[str], x0: float, y0: float, width: float):
    """The colour key, wrapped to `width`; returns its group (drawn last) and its height."""
    from archspec.draw.scene import Group

    group = Group({"class": "legend"})
    x, y = x0, y0
    for family in families:
        fill, stroke = PALETTE[family]
        name = LEGEND_NAMES.get(family, family)
        step = 18 + text_width(name, 9.5) + 14
        if x > x0 and x + step > x0 + width:
            x, y = x0, y + 18
        group.shapes.append(Rect(x, y, 12, 12, fill=fill, stroke=stroke, radius=2))
        group.shapes.append(Text(x + 17, y + 10, name, 9.5, color="#333333"))
        x += step
    return group, (y - y0 + 14 if families else 0.0)
