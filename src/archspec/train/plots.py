"""curves.png: loss and accuracy per epoch, train vs validation (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_curves(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Plot the epoch rows of metrics.jsonl into `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and no GUI toolkit imported
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in rows]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.9, wspace=0.22)  # cheaper than a layout engine
    for axes, metric, label in ((loss_axes, "loss", "loss"), (accuracy_axes, "accuracy", "accuracy")):
        for split, style in (("train", "-"), ("val", "--")):
            key = f"{split}_{metric}"
            points = [(e, row[key]) for e, row in zip(epochs, rows) if row.get(key) is not None]
            if points:
                axes.plot(
                    *zip(*points), style, marker="o", markersize=3, label="train" if split == "train" else "validation"
                )
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    temporary = Path(path).with_name(Path(path).name + ".tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    temporary.replace(path)
