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


def ratio(value: float, reference: float, fewer: str = "fewer") -> str:
    """How `value` compares with the first model's, as a person says it: `174x fewer`, `2.22x more`
    (two-fold or beyond), `3.3% less`, `22% more` (closer), `same`. `fewer` is the word for less of
    a count; memory says `less`."""
    if reference == 0 or value == 0:
        return "-"
    if value == reference:
        return "same"
    more = value > reference
    factor = value / reference if more else reference / value
    if factor >= 2:
        shown = f"{factor:,.0f}" if factor >= 1000 else f"{factor:.3g}"
        return f"{shown}x {'more' if more else fewer}"
    return f"{abs(value / reference - 1) * 100:.2g}% {'more' if more else fewer}"


STATIC = [
    # (row, value getter, formatter, the word for less of it)
    ("params", lambda e: e.params, lambda v: f"{v:,}", "fewer"),
    ("trainable", lambda e: e.trainable, lambda v: f"{v:,}", "fewer"),
    ("MACs", lambda e: e.macs, human_count, "fewer"),
    ("activation memory", lambda e: e.activation_bytes, human_bytes, "less"),
]

TRAINED = [
    ("best val accuracy", "best_val_accuracy", lambda v: f"{v:.2%}"),
    ("best val loss", "best_val_loss", lambda v: f"{v:.4f}"),
    ("train-val gap", "gap", lambda v: f"{v:+.2%}"),
    ("kept epoch", "kept_epoch", lambda v: f"{v:g}"),
    ("test accuracy", "test_accuracy", lambda v: f"{v:.2%}"),
    ("images/s", "images_per_second", lambda v: f"{v:,.0f}"),
]


def rows(entries: list[Entry], *, ratios_below: bool = False) -> list[tuple[str, list[str]]]:
    """The comparison as (metric, one cell per model) rows; ratios are against the first model, in
    the value's cell (`66,602 (174x fewer)`) or, with `ratios_below`, in a row of their own under it."""
    first = entries[0]
    found = []
    for metric, get, show, fewer in STATIC:
        ratios = ["" if e is first else ratio(get(e), get(first), fewer) for e in entries]
        if ratios_below:
            found += [(metric, [show(get(e)) for e in entries]), ("", ratios)]
        else:
            found.append((metric, [show(get(e)) + (f" ({r})" if r else "") for e, r in zip(entries, ratios)]))
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
    """The comparison as a text table, each ratio under its value, which keeps the columns narrow."""
    headers = ["", *(e.name for e in entries)]
    body = [[metric, *cells] for metric, cells in rows(entries, ratios_below=True)]
    lines = table(headers, body, right=range(1, len(headers)), rule="━┿━")
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


def plot_validation_curves(curves: list[tuple[str, list[dict]]], path: Path, settings: dict | None = None) -> None:
    """Overlay each model's validation accuracy and loss per epoch in one PNG (matplotlib, headless),
    with the settings every model was trained under (a TrainConfig's fields) under the title."""
    from archspec import plotting

    plt = plotting.pyplot()
    figure, (accuracy, loss) = plt.subplots(1, 2, figsize=(11, 4.6))
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.84, wspace=0.25)
    for index, (name, rows) in enumerate(curves):
        with_val = [r for r in rows if r.get("val_accuracy") is not None]
        marker = plotting.MARKERS[index % len(plotting.MARKERS)]
        epochs = [r["epoch"] for r in with_val]
        accuracy.plot(epochs, [r["val_accuracy"] for r in with_val], marker=marker, markersize=4, label=name)
        loss.plot(epochs, [r["val_loss"] for r in with_val], marker=marker, markersize=4, label=name)
    plotting.style_axes(accuracy, "validation accuracy", percent=True)
    plotting.style_axes(loss, "validation loss")
    accuracy.set_title("validation accuracy")
    loss.set_title("validation loss")
    accuracy.legend()
    figure.suptitle(f"{len(curves)} models compared", y=0.98)
    text = plotting.settings_text(settings or {})
    if text:
        figure.text(0.5, 0.905, text, ha="center", fontsize=9, color="0.35")
    plotting.save(figure, path, dpi=110)
    plt.close(figure)
