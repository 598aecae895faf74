"""The interactive picture: one self-contained HTML file (no network access) with pan, zoom, folding of
blocks, a tooltip per layer (shape, parameters, MACs, receptive field), search by name, and the dense
head outlined.

The page carries the layered plan of every block at full depth (`draw.layered`), the texts and colours
of every item, and `viewer.js`, which turns the plan into coordinates for the reader's current folding
with the same arithmetic as `draw.geometry` and draws it as SVG with the same classes and data
attributes as the static picture.
"""

from __future__ import annotations

import json
from importlib import resources

from archspec.draw import geometry
from archspec.draw.graph import (
    BOX_H,
    BOX_PAD_X,
    DETAIL,
    EDGE_COLOR,
    FRAME_FILLS,
    FRAME_STROKE,
    LABEL,
    LEGEND_NAMES,
    MERGE_SYMBOLS,
    PALETTE,
    RADIUS,
    detail_text,
    head_colors,
    head_lines,
    measure,
    merge_lines,
    merge_width,
    title_width,
)
from archspec.draw.layered import Plan
from archspec.draw.model import BOX, FRAME, MERGE, DrawModel
from archspec.summary import human_count, rf_text, shape_text


def html_page(model: DrawModel, layered: Plan) -> str:
    """The viewer page for `model`, opened with the model's current folding."""
    data = {
        "name": model.summary.name,
        "subtitle": _subtitle(model),
        "constants": {
            name: getattr(geometry, name)
            for name in ("GAP_X", "GAP_Y", "TRACK", "PAD", "HEADER", "LANE", "PORT_SPREAD", "MERGE_SPREAD")
        }
        | {"BOX_H": BOX_H, "BOX_PAD_X": BOX_PAD_X, "LABEL": LABEL, "DETAIL": DETAIL, "RADIUS": RADIUS},
        "colors": {
            "palette": PALETTE,
            "frames": FRAME_FILLS,
            "frame_stroke": FRAME_STROKE,
            "edge": EDGE_COLOR,
            "legend": LEGEND_NAMES,
        },
        "items": [_item(model, item.id) for item in model.items],
        "roots": model.roots,
        "blocks": {_key(key): _block(block) for key, block in layered.blocks.items()},
        "lanes": {str(lane): merge for lane, merge in layered.lanes.items()},
        "folded": sorted(model.folded),
        "head": _head(model),
    }
    script = resources.files("archspec.draw").joinpath("viewer.js").read_text(encoding="utf-8")
    style = resources.files("archspec.draw").joinpath("viewer.css").read_text(encoding="utf-8")
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    title = model.summary.name.replace("&", "&amp;").replace("<", "&lt;")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title} · cnn-arch</title>\n<style>\n{style}</style></head>\n<body>\n"
        f'<script type="application/json" id="model">{payload}</script>\n'
        f"<script>\n{script}</script>\n</body></html>\n"
    )


def _key(block: int | None) -> str:
    return "root" if block is None else str(block)


def _block(block) -> dict:
    return {
        "slots": [[s.kind, s.key, s.row, s.pos] for s in block.slots],
        "rows": block.rows,
        "tracks": block.tracks,
        "pieces": [[p.source, p.slots, p.out_pin, p.in_pin, p.tracks] for p in block.pieces],
        "inputs": block.inputs,
        "outputs": block.outputs,
        "width": block.width,
    }


def _subtitle(model: DrawModel) -> str:
    summary, totals = model.summary, model.summary.totals
    return (
        f"{totals.params:,} params · {human_count(totals.macs)} MACs · "
        f"{shape_text(summary.input_shape)} → {shape_text(summary.output_shape)}"
    )


def _item(model: DrawModel, item_id: int) -> dict:
    item = model.items[item_id]
    row = item.row
    extent = measure(model)
    found = {
        "id": item.id,
        "label": item.label,
        "role": item.role,
        "parent": item.parent,
        "depth": row.depth,
        "line": row.line,
        "kind": row.kind,
        "type": row.type,
        "family": model.family(item.id),
        "shape": shape_text(row.shape),
        "params": row.params,
        "trainable": row.trainable,
        "non_trainable": row.non_trainable,
        "macs": row.macs,
        "macs_text": human_count(row.macs),
        "rf": rf_text(row),
        "stride": "x".join(map(str, row.stride)),
        "layers": item.layers,
        "in_head": item.in_head,
        "detail": detail_text(model, item),
    }
    if item.role == MERGE:
        numbers = merge_lines(model, item)[1]
        found |= {
            "extent": extent(item.id, MERGE),
            "width": merge_width(model, item),
            "numbers": numbers,
            "symbol": MERGE_SYMBOLS.get(row.kind, "+"),
            "inputs": len(model.inputs_of(item.id)),
        }
    else:
        found["extent"] = extent(item.id, BOX)
    if item.role == FRAME:
        found |= {"title": detail_text(model, item, as_box=False), "title_width": title_width(model)(item.id)}
    return found


def _head(model: DrawModel) -> dict | None:
    notes = head_lines(model)
    if not notes:
        return None
    color, fill = head_colors(model)
    heavy = model.summary.totals.params / 10  # boxes holding this much are where the parameters are
    return {
        "notes": notes,
        "color": color,
        "fill": fill,
        "share": round(model.head.share, 4),
        "heavy": [i.id for i in model.items if i.in_head and i.row.params > heavy],
    }
