"""The metrics of a classifier as running sums (`Task.metric_sums` in `outputs` computes a batch's).

Metrics are accumulated as sums on the device (`metric_sums`) and turned into means on the host
once per epoch (`finalize`), so training never waits for the host.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from archspec.train.outputs import Task


def zero_sums(task: Task) -> dict[str, jax.Array]:
    keys = ("loss", "correct", "count", "top5") if task.top5 else ("loss", "correct", "count")
    return {key: jnp.zeros((), jnp.float32) for key in keys}


def add_sums(totals: dict[str, jax.Array], batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return {key: totals[key] + batch[key] for key in totals}


def finalize(sums: dict[str, float]) -> dict[str, float]:
    """Means from host-side sums: loss, accuracy and (with many classes) top5_accuracy."""
    count = max(float(sums["count"]), 1.0)
    out = {"loss": float(sums["loss"]) / count, "accuracy": float(sums["correct"]) / count}
    if "top5" in sums:
        out["top5_accuracy"] = float(sums["top5"]) / count
    return out
