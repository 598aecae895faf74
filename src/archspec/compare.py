"""Side-by-side comparison of models: static numbers for each, relative to the first, and (when
trained) the measured accuracy, loss, overfitting gap and speed. No JAX here; the CLI trains.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from archspec.head import dense_head
from archspec.infer import TypedGraph
from archspec.summary import BYTES_PER_VALUE, human_bytes, human_count


@dataclass
class Entry:
    name: str
    params: int
    trainable: int
    macs: int
    activation_bytes: int
    head_share: float  # share of parameters in a flatten + dense head (0 without one)
    findings: int | None  # lint findings; None when lint is not available
    trained: dict[str, float] = field(default_factory=dict)  # see TRAINED


def entry(name: str, typed: TypedGraph, *, batch: int, findings: int | None) -> Entry:
    head = dense_head(typed)
    return Entry(
        name,
        typed.params,
        typed.trainable,
        typed.macs,
        typed.activation_values() * batch * BYTES_PER_VALUE,
        head.share if head else 0.0,
        findings,
    )


def ratio(value: float, reference: float) -> str:
    """`0.5x`, `3.2x`; far below 1 as a fraction, which reads better: `1/174`."""
    if reference == 0 or value == 0:
        return "-"
    share = value / reference
    return f"1/{1 / share:,.0f}" if share < 0.1 else f"{share:.3g}x"


STATIC = [
    # (column, value getter, formatter)
    ("params", lambda e: e.params, lambda v: f"{v:,}"),
    ("trainable", lambda e: e.trainable, lambda v: f"{v:,}"),
    ("MACs", lambda e: e.macs, human_count),
    ("activation memory", lambda e: e.activation_bytes, human_bytes),
]

TRAINED = [
    ("best val accuracy", "best_val_accuracy", lambda v: f"{v:.2%}"),
    ("best val loss", "best_val_loss", lambda v: f"{v:.4f}"),
    ("train-val gap", "gap", lambda v: f"{v:+.2%}"),
    ("test accuracy", "test_accuracy", lambda v: f"{v:.2%}"),
    ("images/s", "images_per_second", lambda v: f"{v:,.0f}"),
]


def rows(entries: list[Entry]) -> list[tuple[str, list[str]]]:
    """The comparison as (metric, one cell per model) rows; ratios are against the first model."""
    first = entries[0]
    table = []
    for column, get, show in STATIC:
        cells = [show(get(e)) + ("" if e is first else f" ({ratio(get(e), get(first))})") for e in entries]
        table.append((column, cells))
    table.append(("dense-head share", [f"{e.head_share:.1%}" for e in entries]))
    if any(e.findings is not None for e in entries):
        table.append(("lint findings", ["-" if e.findings is None else str(e.findings) for e in entries]))
    for column, key, show in TRAINED:
        if any(key in e.trained for e in entries):
            table.append((column, [show(e.trained[key]) if key in e.trained else "-" for e in entries]))
    return table


def to_json(entries: list[Entry]) -> str:
    first = entries[0]
    return json.dumps(
        {"models": [{**asdict(e), "params_ratio": e.params / first.params if first.params else None} for e in entries]},
        indent=2,
    )


def to_markdown(entries: list[Entry]) -> str:
    lines = ["| | " + " | ".join(e.name for e in entries) + " |", "|---|" + "---:|" * len(entries)]
    lines += [f"| {metric} | " + " | ".join(cells) + " |" for metric, cells in rows(entries)]
    return "\n".join(lines) + "\n"


def to_text(entries: list[Entry]) -> str:
    table = [("", [e.name for e in entries]), *rows(entries)]
    first_width = max(len(metric) for metric, _ in table)
    widths = [max(len(cells[i]) for _, cells in table) for i in range(len(entries))]
    out = []
    for index, (metric, cells) in enumerate(table):
        out.append(metric.ljust(first_width) + " │ " + " │ ".join(c.rjust(w) for c, w in zip(cells, widths)))
        if index == 0:
            out.append("━" * first_width + "━┿━" + "━┿━".join("━" * w for w in widths))
    return "\n".join(out) + "\n"
