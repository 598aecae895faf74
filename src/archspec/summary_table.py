"""The summary as the aligned text table `summarize` prints, fitted to a width: columns to choose
(as torchinfo's `col_names`), and on a narrow terminal fewer columns and layer text cut with `…`.

Drawn here rather than with rich's Table: a ResNet has hundreds of rows and rich takes longer to lay
them out than the tool takes to parse, expand and type the whole model.
"""

from __future__ import annotations

import textwrap

from archspec.summary import Row, Summary, footer_lines, rf_text, suggestion_line
from archspec.text import shape_text, table

# name: (header, cell, right-aligned)
COLUMNS = {
    "line": ("Line", lambda r: str(r.line), True),
    "layer": ("Layer", lambda r: "  " * (r.depth - 1) + r.label, False),
    "type": ("Type", lambda r: r.type, False),
    "shape": ("Output shape", lambda r: shape_text(r.shape), False),
    "params": ("Params", lambda r: f"{r.params:,}", True),
    "macs": ("MACs", lambda r: f"{r.macs:,}", True),
    "rf": ("RF", rf_text, True),
    "connected": ("Connected to", lambda r: ", ".join(r.connected_to), False),
}
DEFAULT_COLUMNS = ("line", "layer", "type", "shape", "params", "macs", "rf", "connected")
DROP_ORDER = ("connected", "type", "rf")  # what goes first when the table does not fit
MIN_LAYER_WIDTH = 16
SEPARATOR = " │ "


def to_table(
    summary: Summary,
    depth: int | None = None,
    *,
    color: bool = False,
    width: int | None = None,
    columns: tuple[str, ...] | None = None,
) -> str:
    """The table with its footer. `columns` chosen are kept as given; by default every column that
    has something to show, dropping `DROP_ORDER` and then cutting layer text until `width` fits."""
    rows = summary.folded(depth)
    chosen = list(columns or DEFAULT_COLUMNS)
    if columns is None and not any(r.connected_to for r in rows):
        chosen.remove("connected")
    cells = {name: [COLUMNS[name][1](r) for r in rows] for name in COLUMNS}
    if width is not None and columns is None:
        for name in DROP_ORDER:
            if _width(chosen, cells) <= width or name not in chosen:
                continue
            if name != "rf" or _width(chosen, cells, layer_cut=True) > width:
                chosen.remove(name)
    if width is not None and "layer" in chosen and _width(chosen, cells) > width:
        room = max(MIN_LAYER_WIDTH, _column_width("layer", cells) - (_width(chosen, cells) - width))
        cells["layer"] = [text if len(text) <= room else text[: room - 1] + "…" for text in cells["layer"]]
    return _render(summary, rows, chosen, cells, color, width)


def _column_width(name: str, cells: dict) -> int:
    return max([len(COLUMNS[name][0]), *(len(c) for c in cells[name])])


def _width(chosen: list[str], cells: dict, layer_cut: bool = False) -> int:
    widths = [MIN_LAYER_WIDTH if layer_cut and n == "layer" else _column_width(n, cells) for n in chosen]
    return sum(widths) + len(SEPARATOR) * (len(chosen) - 1)


def _render(summary: Summary, rows: tuple[Row, ...], chosen: list[str], cells: dict, color: bool, width) -> str:
    bold, dim, yellow, reset = ("\x1b[1m", "\x1b[2m", "\x1b[33m", "\x1b[0m") if color else ("",) * 4
    headers = [COLUMNS[n][0] for n in chosen]
    body = [[cells[n][k] for n in chosen] for k in range(len(rows))]
    right = {i for i, n in enumerate(chosen) if COLUMNS[n][2]}
    header, rule, *lines_of_rows = table(headers, body, right=right, separator=SEPARATOR, header_separator=" ┃ ")
    first_width = len(body[0][0]) if body else 0
    first_width = max([len(headers[0]), *(len(b[0]) for b in body)]) if body else first_width
    lines = [f"{bold}{summary.name}{reset}", f"{bold}{header}{reset}", rule]
    for text, row in zip(lines_of_rows, rows):
        if row.group:
            text = f"{bold}{text}{reset}"
        elif color and chosen[0] == "line":
            text = f"{dim}{text[:first_width]}{reset}{text[first_width:]}"
        lines.append(text)
    lines.append("")
    wrap = (lambda line: textwrap.wrap(line, width, subsequent_indent="  ")) if width else (lambda line: [line])
    for line in footer_lines(summary):
        lines.extend(wrap(line))
    suggestion = suggestion_line(summary)
    if suggestion:
        lines.extend(f"{yellow}{part}{reset}" for part in wrap(suggestion))
    return "\n".join(lines) + "\n"
