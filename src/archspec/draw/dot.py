"""The draw model as Graphviz text (`summarize --format dot`), for those who lay graphs out with `dot`.

Same items as the `graph` picture: a node per box or merge, a cluster per unfolded block. Nodes and
edges are written in spec order, and `ordering=in` has `dot` keep each merge's inputs, so its
branches, in the spec's order (left to right, as `draw` does). A cluster's title is a plain node at
its top, not Graphviz's cluster label: `dot` routes edges around nodes but across cluster labels.
"""

from __future__ import annotations

from archspec.draw.graph import EDGE_COLOR, FRAME_STROKE, MERGE_SYMBOLS, PALETTE, detail_text, head_colors
from archspec.draw.model import FRAME, MERGE, DrawModel, Item
from archspec.summary import shape_text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(model: DrawModel) -> str:
    summary = model.summary
    lines = [
        f"digraph {_quote(summary.name)} {{",
        f"  graph [rankdir=TB, ordering=in, fontname=monospace, labelloc=t, label={_quote(summary.name)}];",
        '  node [shape=box, style="rounded,filled", fontname=monospace, fontsize=10];',
        f"  edge [color={_quote(EDGE_COLOR)}];",
    ]
    head_color, _ = head_colors(model) if model.head else ("", "")
    edges = model.visible_edges()
    firsts: dict[int, int] = {}  # cluster -> the node its title stands above

    def emit(item: Item, indent: str) -> None:
        shown = model.shown_as(item.id)
        if shown == FRAME:
            lines.append(f"{indent}subgraph cluster_{item.id} {{")
            lines.append(f'{indent}  style="rounded,dashed"; color="{FRAME_STROKE}"; label="";')
            title = f"{item.label}\n{detail_text(model, item, as_box=False)}"
            lines.append(f"{indent}  t{item.id} [shape=plain, style=solid, label={_quote(title)}];")
            for child in item.children:
                emit(model.items[child], indent + "  ")
            lines.append(f"{indent}}}")
            inside = _drawn_within(model, item.id)
            if inside:
                firsts[item.id] = inside[0]
            return
        if shown == MERGE:
            for child in item.children:
                emit(model.items[child], indent)
            symbol = MERGE_SYMBOLS.get(item.row.kind, "+")
            xlabel = f"{item.label}\n{shape_text(item.row.shape)}"
            lines.append(
                f'{indent}n{item.id} [shape=circle, style=filled, fillcolor="#ffffff", label={_quote(symbol)}, '
                f"xlabel={_quote(xlabel)}];"
            )
            return
        fill, stroke = PALETTE[model.family(item.id)]
        extra = f', penwidth=2, color="{head_color}"' if item.in_head else f', color="{stroke}"'
        label = f"{item.label}\n{detail_text(model, item)}"
        lines.append(f'{indent}n{item.id} [label={_quote(label)}, fillcolor="{fill}"{extra}];')

    for root in model.roots:
        emit(model.items[root], "  ")
    # The title has a rank of its own, between what feeds the cluster and its first node (invisible
    # edges put it there); edges into the cluster pass beside it, as dot keeps edges off nodes.
    for cluster, first in firsts.items():
        inside = set(_drawn_within(model, cluster))
        feeding = next((a for a, b in edges if b in inside and a not in inside), None)
        if feeding is not None:
            lines.append(f"  n{feeding} -> t{cluster} [style=invis];")
        lines.append(f"  t{cluster} -> n{first} [style=invis];")
    lines.extend(f"  n{source} -> n{target};" for source, target in edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _drawn_within(model: DrawModel, frame: int) -> list[int]:
    """The nodes drawn inside an unfolded frame, in spec order."""
    out = []
    stack = list(model.items[frame].children)
    while stack:
        item = stack.pop()
        shown = model.shown_as(item)
        if shown in (FRAME, MERGE):
            stack.extend(model.items[item].children)
        if shown != FRAME:
            out.append(item)
    items = model.items
    return sorted(out, key=lambda i: items[i].row.nodes[-1] if items[i].role == MERGE else items[i].row.nodes[0])
