"""curves.png: loss and accuracy per epoch, train vs validation (matplotlib, headless), with the run's
settings (from the run folder's config.json) under the title."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archspec import plotting


def write_curves(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Plot the epoch rows of metrics.jsonl into `path` (PNG)."""
    plt = plotting.pyplot()
    epochs = [row["epoch"] for row in rows]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4.4))
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.84, wspace=0.25)  # cheaper than a layout engine
    for axes, metric, label in ((loss_axes, "loss", "loss"), (accuracy_axes, "accuracy", "accuracy")):
        for split, style, marker in (("train", "-", "o"), ("val", "--", "s")):
            key = f"{split}_{metric}"
            points = [(e, row[key]) for e, row in zip(epochs, rows) if row.get(key) is not None]
            if points:
                name = "train" if split == "train" else "validation"
                axes.plot(*zip(*points), style, marker=marker, markersize=4, label=name)
        plotting.style_axes(axes, label, percent=metric == "accuracy")
        axes.set_title(label)
        if axes.lines:
            axes.legend()
    settings = plotting.settings_text(plotting.run_settings(Path(path).parent))
    figure.suptitle(title or "training curves", y=0.98)
    if settings:
        figure.text(0.5, 0.905, settings, ha="center", fontsize=9, color="0.35")
    plotting.save(figure, path, dpi=100)
    plt.close(figure)
