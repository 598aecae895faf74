"""What `curves.png` and `compare.png` share so that they read alike: integer epoch ticks, accuracy
in percent (as the tables print it), labelled axes, markers, and the run settings in the figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def pyplot():
    """matplotlib's pyplot on the headless Agg backend (no display, no GUI toolkit imported)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def style_axes(axes, ylabel: str, *, percent: bool = False) -> None:
    """Epoch on x with integer ticks only, `ylabel` on y (in percent for accuracy), a light grid."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if percent:
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    axes.grid(alpha=0.3)


def settings_text(config: dict[str, Any]) -> str:
    """`epochs 15 · batch 32 · lr 0.003 · seed 0 · input 8x8x1 · data digits` from a TrainConfig's JSON."""
    from archspec.text import shape_text

    parts = []
    for key, label in (("epochs", "epochs"), ("batch_size", "batch"), ("lr", "lr"), ("seed", "seed")):
        if config.get(key) is not None:
            value = config[key]
            parts.append(f"{label} {value:g}" if isinstance(value, float) else f"{label} {value}")
    if config.get("input_shape"):
        parts.append(f"input {shape_text(tuple(config['input_shape']))}")
    if config.get("data"):
        parts.append(f"data {Path(str(config['data'])).name or config['data']}")
    return " · ".join(parts)


def run_settings(run_dir: Path) -> dict[str, Any]:
    """The TrainConfig saved in a run folder's config.json; empty when there is none yet."""
    try:
        return json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("config", {})
    except (OSError, ValueError, AttributeError):
        return {}


def save(figure, path: str | Path, dpi: int) -> None:
    """Write the PNG through a temporary file, so a reader never sees half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.png")
    figure.savefig(temporary, dpi=dpi)
    temporary.replace(path)
