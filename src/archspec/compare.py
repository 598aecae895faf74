"""Side-by-side comparison of models: static numbers for each, relative to the first, and (when
trained) the measured accuracy, loss, overfitting gap and speed, with their validation curves
overlaid. No JAX here; the CLI trains.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from archspec.head import dense_head
from archspec.infer import TypedGraph
from archspec.summary import BYTES_PER_VALUE, human_bytes, human_count
from archspec.text import table


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
    found = []
    for column, get, show in STATIC:
        cells = [show(get(e)) + ("" if e is first else f" ({ratio(get(e), get(first))})") for e in entries]
        found.append((column, cells))
    found.append(("dense-head share", [f"{e.head_share:.1%}" for e in entries]))
    if any(e.findings is not None for e in entries):
        found.append(("lint findings", ["-" if e.findings is None else str(e.findings) for e in entries]))
    for column, key, show in TRAINED:
        if any(key in e.trained for e in entries):
            found.append((column, [show(e.trained[key]) if key in e.trained else "-" for e in entries]))
    return found


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
    headers = ["", *(e.name for e in entries)]
    lines = table(
        headers, [[metric, *cells] for metric, cells in rows(entries)], right=range(1, len(headers)), rule="━┿━"
    )
    return "\n".join(lines) + "\n"


def summarize_run(rows: list[dict]) -> dict[str, float]:
    """Best validation accuracy and loss, the final train-validation accuracy gap, and the median speed
    (the first epoch is left out: it includes compilation)."""
    import statistics

    trained: dict[str, float] = {}
    with_val = [r for r in rows if r.get("val_accuracy") is not None]
    if with_val:
        trained["best_val_accuracy"] = max(r["val_accuracy"] for r in with_val)
        trained["best_val_loss"] = min(r["val_loss"] for r in with_val)
        trained["gap"] = with_val[-1]["train_accuracy"] - with_val[-1]["val_accuracy"]
    speeds = [r["images_per_second"] for r in rows[1:] or rows if r.get("images_per_second")]
    if speeds:
        trained["images_per_second"] = statistics.median(speeds)
    return trained


def plot_validation_curves(curves: list[tuple[str, list[dict]]], path: Path) -> None:
    """Overlay each model's validation accuracy and loss per epoch in one PNG (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (accuracy, loss) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in curves:
        epochs = [r["epoch"] for r in rows if r.get("val_accuracy") is not None]
        accuracy.plot(epochs, [r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None], label=name)
        loss.plot(epochs, [r["val_loss"] for r in rows if r.get("val_accuracy") is not None], label=name)
    accuracy.set(title="validation accuracy", xlabel="epoch")
    loss.set(title="validation loss", xlabel="epoch")
    accuracy.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
