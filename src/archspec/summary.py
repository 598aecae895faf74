"""The summary of a typed graph: per-layer rows first, totals second, formatting last.

Rows nest like the spec: a macro call or a merge block is a row carrying its totals with its
layers under it; `depth` folds rows below a level (like torchinfo). JSON, CSV and Markdown are
rendered here, the text table in `summary_table`, all from the same numbers.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass

from archspec.head import DENSE_SHARE_THRESHOLD, DenseHead, dense_head
from archspec.infer import LayerInfo, TypedGraph
from archspec.summary_inputs import block_inputs, named, named_inputs
from archspec.text import shape_text

BYTES_PER_VALUE = 4  # float32
DEFAULT_BATCH = 32
FORMAT_VERSION = 2  # the `format` field of the JSON: raised when a field changes meaning or goes away
MB = 1_000_000  # torchinfo's size figures are in MB (10^6 bytes)


@dataclass(frozen=True)
class Row:
    depth: int  # 1 for top-level rows
    line: int
    label: str  # `conv 64 3x3 /2 same`, `bottleneck 128 stride=2`
    type: str  # the layer's class name (Conv2D, BatchNorm, ...) or the block kind
    shape: tuple[int, ...]
    trainable: int
    non_trainable: int
    macs: int
    receptive_field: tuple[int, int] | None
    stride: tuple[int, int]
    group: bool  # a block row, whose numbers are the totals of the rows under it
    kind: str  # the layer kind (a merge block's merge kind); "call", "branch" or "repeat" for other blocks
    nodes: range  # the ids of the IR nodes the row covers (a block's are consecutive)
    connected_to: tuple[str, ...] = ()  # a merge row's inputs, as Keras' "Connected to" column

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


@dataclass(frozen=True)
class Totals:
    params: int
    trainable: int
    non_trainable: int
    macs: int
    batch: int
    activation_values: int  # per example, summed over all layer outputs
    input_values: int = 0  # per example
    weight_layer_output_values: int = 0  # per example, the outputs of layers with trainable parameters

    @property
    def param_bytes(self) -> int:
        return self.params * BYTES_PER_VALUE

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        return self.activation_values * self.batch * BYTES_PER_VALUE

    # torchinfo's four size figures, by its rules (torchinfo/model_statistics.py), so that they equal
    # what torchinfo prints for the same network (tests/test_summary_interface.py pins its outputs):
    # the input batch; twice (values, then gradients) the outputs of the layers that hold parameters;
    # the parameters, which in PyTorch exclude BatchNorm's statistics (buffers); and their sum.
    @property
    def input_bytes(self) -> int:
        return self.input_values * self.batch * BYTES_PER_VALUE

    @property
    def forward_backward_bytes(self) -> int:
        return 2 * self.weight_layer_output_values * self.batch * BYTES_PER_VALUE

    @property
    def params_size_bytes(self) -> int:
        return self.trainable * BYTES_PER_VALUE

    @property
    def estimated_total_bytes(self) -> int:
        return self.input_bytes + self.forward_backward_bytes + self.params_size_bytes


@dataclass(frozen=True)
class Summary:
    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    rows: tuple[Row, ...]
    totals: Totals
    head: DenseHead | None
    threshold: float

    @property
    def head_share(self) -> float:
        return self.head.share if self.head else 0.0

    @property
    def suggests_gap(self) -> bool:
        return self.head is not None and self.head.gap_saves and self.head.worth_reporting(self.threshold)

    def folded(self, depth: int | None) -> tuple[Row, ...]:
        """Rows down to `depth` (1 = top level only); None keeps them all."""
        return self.rows if depth is None else tuple(r for r in self.rows if r.depth <= depth)


def summarize(
    typed: TypedGraph, name: str, *, batch: int = DEFAULT_BATCH, threshold: float = DENSE_SHARE_THRESHOLD
) -> Summary:
    import math

    totals = Totals(
        typed.params,
        typed.trainable,
        typed.non_trainable,
        typed.macs,
        batch,
        typed.activation_values(),
        math.prod(typed.input_shape),
        sum(info.values for info in typed.infos if info.trainable),
    )
    return Summary(
        name, typed.input_shape, typed.output_shape, tuple(_rows(typed)), totals, dense_head(typed), threshold
    )


def _rows(typed: TypedGraph) -> list[Row]:
    graph = typed.graph
    # A scope's totals and output: sums over the nodes inside it, output of its merge or last node.
    sums: dict[int, list[int]] = {}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for node in graph.nodes:
        info = typed.infos[node.id]
        for scope in graph.scope_chain(node.scope):
            total = sums.setdefault(scope.id, [0, 0, 0])
            total[0] += info.trainable
            total[1] += info.non_trainable
            total[2] += info.macs
            first.setdefault(scope.id, node.id)
            last[scope.id] = node.id
    rows: list[Row] = []
    open_path: list[int] = []
    names = graph.tensor_names()
    for node in graph.nodes:
        chain = [s.id for s in graph.scope_chain(node.scope)]
        keep = 0
        while keep < min(len(chain), len(open_path)) and chain[keep] == open_path[keep]:
            keep += 1
        open_path = open_path[:keep]
        for scope_id in chain[keep:]:
            scope = graph.scopes[scope_id]
            output_id = scope.node if scope.node is not None else last[scope_id]
            output = typed.infos[output_id]
            trainable, non_trainable, macs = sums[scope_id]
            merge = graph.nodes[scope.node] if scope.node is not None else None
            rows.append(
                _row(
                    len(open_path) + 1,
                    scope.span.line,
                    scope.label + named(names, output_id),
                    merge.layer.keras_name if merge is not None else scope.kind,
                    output,
                    (trainable, non_trainable, macs),
                    group=True,
                    kind=merge.kind if merge is not None else scope.kind,
                    nodes=range(first[scope_id], last[scope_id] + 1),
                    connected_to=_connected_to(graph, scope, names)
                    if scope.node is not None
                    else block_inputs(graph, range(first[scope_id], last[scope_id] + 1), names),
                )
            )
            open_path.append(scope_id)
        if node.scope is not None and graph.scopes[node.scope].node == node.id:
            continue  # a merge node is shown by its block's row
        info = typed.infos[node.id]
        rows.append(
            _row(
                len(chain) + 1,
                node.line,
                node.label + named(names, node.id),
                node.layer.keras_name,
                info,
                (info.trainable, info.non_trainable, info.macs),
                group=False,
                kind=node.kind,
                nodes=range(node.id, node.id + 1),
                connected_to=named_inputs(graph, node, names),
            )
        )
    return rows


def _row(
    depth, line, label, type, info: LayerInfo, numbers, *, group: bool, kind: str, nodes: range, connected_to=()
) -> Row:
    trainable, non_trainable, macs = numbers
    rf, stride = info.receptive_field, info.stride
    return Row(
        depth,
        line,
        label,
        type,
        info.shape,
        trainable,
        non_trainable,
        macs,
        rf,
        stride,
        group,
        kind,
        nodes,
        tuple(connected_to),
    )


def _connected_to(graph, scope, names: dict[int, str]) -> list[str]:
    """What feeds a merge: each branch's last layer (`bn @14`), and `identity` for an input that comes
    from outside the block unchanged (the shortcut of a residual block), or its name (`@e1`)."""
    found = []
    for i in graph.nodes[scope.node].inputs:
        source = graph.nodes[i]
        inside = any(s.id == scope.id for s in graph.scope_chain(source.scope))
        where = f"{source.label} @{source.line}"
        if i in names:
            found.append(f"@{names[i]} ({where})")
        else:
            found.append(where if inside else f"identity ({where})")
    return found


# --- formatting ---------------------------------------------------------------------------


def rf_text(row: Row) -> str:
    if row.receptive_field is None:
        return "global"
    h, w = row.receptive_field
    return str(h) if h == w else f"{h}x{w}"


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_count(count: int) -> str:
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return str(count)


def footer_lines(summary: Summary) -> list[str]:
    """The totals under the table, as plain lines (the table renderer styles them)."""
    t = summary.totals
    lines = [
        f"Total params: {t.params:,}",
        f"Trainable params: {t.trainable:,}",
        f"Non-trainable params: {t.non_trainable:,}",
        f"MACs: {t.macs:,} ({human_count(t.macs)}); FLOPs (2 x MACs): {human_count(t.flops)}",
        f"Memory as torchinfo estimates it (batch {t.batch}, float32):",
        f"  Input size (MB): {t.input_bytes / MB:.2f}",
        f"  Forward/backward pass size (MB): {t.forward_backward_bytes / MB:.2f}",
        f"  Params size (MB): {t.params_size_bytes / MB:.2f}",
        f"  Estimated total size (MB): {t.estimated_total_bytes / MB:.2f}",
    ]
    head = summary.head
    if head is None:
        lines.append("Dense head: none (no flatten of a spatial tensor)")
    else:
        lines.append(
            f"Dense head (after flatten at line {head.flatten.line}): {head.head_params:,} params, "
            f"{head.share:.1%} of the model"
        )
    return lines


def suggestion_line(summary: Summary) -> str | None:
    if not summary.suggests_gap:
        return None
    head = summary.head
    saving = 1 - head.with_gap / head.total_params
    return (
        f"Suggestion: replace `flatten` at line {head.flatten.line} with `gap` (global average pooling): "
        f"{head.with_gap:,} params instead of {head.total_params:,} ({saving:.1%} fewer)"
    )


def to_dict(summary: Summary, depth: int | None = None) -> dict:
    t = summary.totals
    head = summary.head
    return {
        "format": FORMAT_VERSION,
        "name": summary.name,
        "input_shape": list(summary.input_shape),
        "output_shape": list(summary.output_shape),
        "layers": [
            {
                **{k: v for k, v in asdict(row).items() if k not in ("kind", "nodes")},
                "shape": list(row.shape),
                "params": row.params,
                "receptive_field": list(row.receptive_field) if row.receptive_field else None,
                "stride": list(row.stride),
                "connected_to": list(row.connected_to),
            }
            for row in summary.folded(depth)
        ],
        "totals": {
            "params": t.params,
            "trainable": t.trainable,
            "non_trainable": t.non_trainable,
            "param_bytes": t.param_bytes,
            "macs": t.macs,
            "flops": t.flops,
            "batch": t.batch,
            "activation_bytes": t.activation_bytes,
            "input_bytes": t.input_bytes,
            "forward_backward_bytes": t.forward_backward_bytes,
            "params_size_bytes": t.params_size_bytes,
            "estimated_total_bytes": t.estimated_total_bytes,
        },
        "dense_head": None
        if head is None
        else {
            "flatten_line": head.flatten.line,
            "params": head.head_params,
            "share": round(head.share, 6),
            "params_with_gap": head.with_gap,
            "params_lean": head.lean,
            "threshold": summary.threshold,
            "suggest_gap": summary.suggests_gap,
        },
    }


def to_json(summary: Summary, depth: int | None = None) -> str:
    return json.dumps(to_dict(summary, depth), indent=2)


COLUMNS = (
    "line",
    "layer",
    "type",
    "output_shape",
    "params",
    "trainable",
    "non_trainable",
    "macs",
    "receptive_field",
    "depth",
)


def _cells(row: Row) -> tuple:
    return (
        row.line,
        row.label,
        row.type,
        shape_text(row.shape),
        row.params,
        row.trainable,
        row.non_trainable,
        row.macs,
        rf_text(row),
        row.depth,
    )


def to_csv(summary: Summary, depth: int | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in summary.folded(depth):
        writer.writerow(_cells(row))
    return out.getvalue()


def to_markdown(summary: Summary, depth: int | None = None) -> str:
    lines = [
        f"### {summary.name}",
        "",
        "| line | layer | type | output shape | params | MACs | RF |",
        "|---:|---|---|---|---:|---:|---:|",
    ]
    for row in summary.folded(depth):
        indent = "&nbsp;&nbsp;" * (row.depth - 1)
        label = row.label.replace("|", "\\|")
        lines.append(
            f"| {row.line} | {indent}{'**' if row.group else ''}{label}{'**' if row.group else ''} | "
            f"{row.type} | {shape_text(row.shape)} | {row.params:,} | {row.macs:,} | {rf_text(row)} |"
        )
    lines.append("")
    lines.extend(f"{line[: len(line) - len(line.lstrip())]}- {line.lstrip()}" for line in footer_lines(summary))
    suggestion = suggestion_line(summary)
    if suggestion:
        lines.append(f"- {suggestion}")
    return "\n".join(lines) + "\n"
