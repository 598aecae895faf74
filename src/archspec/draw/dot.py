"""The draw model as Graphviz text (`summarize --format dot`), for those who lay graphs out with `dot`.

Same items as the `graph` picture: a node per box or merge, a cluster per unfolded block.
"""

from __future__ import annotations

from archspec.draw.graph import EDGE_COLOR, MERGE_SYMBOLS, PALETTE, detail_text, head_colors
from archspec.draw.model import FRAME, MERGE, DrawModel, Item
from archspec.summary import shape_text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(model: DrawModel) -> str:
    summary = model.summary
    lines = [
        f"digraph {_quote(summary.name)} {{",
        f"  graph [rankdir=TB, fontname=monospace, labelloc=t, label={_quote(summary.name)}];",
        '  node [shape=box, style="rounded,filled", fontname=monospace, fontsize=10];',
        f"  edge [color={_quote(EDGE_COLOR)}];",
    ]
    head_color, _ = head_colors(model) if model.head else ("", "")

    def emit(item: Item, indent: str) -> None:
        if item.role == FRAME:
            lines.append(f"{indent}subgraph cluster_{item.id} {{")
            label = f"{item.row.label}\n{detail_text(model, item)}"
            lines.append(f'{indent}  label={_quote(label)}; style="rounded,dashed"; color="#9aa3af";')
            for child in item.children:
                emit(model.items[child], indent + "  ")
            lines.append(f"{indent}}}")
            return
        if item.role == MERGE:
            for child in item.children:
                emit(model.items[child], indent)
            symbol = MERGE_SYMBOLS.get(item.row.kind, "+")
            xlabel = f"{item.row.label}\n{shape_text(item.row.shape)}"
            lines.append(
                f'{indent}n{item.id} [shape=circle, style=filled, fillcolor="#ffffff", label={_quote(symbol)}, '
                f"xlabel={_quote(xlabel)}];"
            )
            return
        fill, stroke = PALETTE[item.family]
        extra = f', penwidth=2, color="{head_color}"' if item.in_head else f', color="{stroke}"'
        label = f"{item.row.label}\n{detail_text(model, item)}"
        lines.append(f'{indent}n{item.id} [label={_quote(label)}, fillcolor="{fill}"{extra}];')

    for root in model.roots:
        emit(model.items[root], "  ")
    lines.extend(f"  n{source} -> n{target};" for source, target in model.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"
