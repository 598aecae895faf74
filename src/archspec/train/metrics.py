"""The loss a model's head calls for, and the metrics of a classifier.

The loss is always computed from logits (the input of a final softmax or sigmoid), which is the
numerically stable form: a softmax head trains with softmax cross-entropy, a 1-unit sigmoid head with
binary cross-entropy, a K-unit sigmoid head with one binary cross-entropy per class, and a head
without activation treats its outputs as logits for softmax cross-entropy.

Metrics are accumulated as sums on the device (`metric_sums`) and turned into means on the host
once per epoch (`finalize`), so training never waits for the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

TOP5_ABOVE_CLASSES = 10  # top-5 accuracy is reported for more classes than this


@dataclass(frozen=True)
class Task:
    """How to score a model with `num_outputs` outputs and `head` activation on `num_classes` classes."""

    head: str | None  # "softmax", "sigmoid" or None (logits)
    num_outputs: int
    num_classes: int
    label_smoothing: float = 0.0

    @property
    def binary(self) -> bool:
        """One sigmoid unit telling two classes apart."""
        return self.head == "sigmoid" and self.num_outputs == 1

    @property
    def top5(self) -> bool:
        return self.num_classes > TOP5_ABOVE_CLASSES

    def loss(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
        """Per-example loss from float logits (N, outputs) and integer labels (N,)."""
        logits = logits.astype(jnp.float32)
        smoothing = self.label_smoothing
        if self.binary:
            targets = labels.astype(jnp.float32) * (1 - smoothing) + smoothing / 2
            return optax.sigmoid_binary_cross_entropy(logits[:, 0], targets)
        targets = jax.nn.one_hot(labels, self.num_outputs)
        if self.head == "sigmoid":
            targets = targets * (1 - smoothing) + smoothing / 2
            return optax.sigmoid_binary_cross_entropy(logits, targets).sum(axis=-1)
        if smoothing:
            targets = optax.smooth_labels(targets, smoothing)
        return optax.softmax_cross_entropy(logits, targets)

    def scores(self, logits: jax.Array) -> jax.Array:
        """Per-class scores (N, classes) whose argmax is the prediction: probabilities."""
        logits = logits.astype(jnp.float32)
        if self.binary:
            positive = jax.nn.sigmoid(logits[:, 0])
            return jnp.stack([1 - positive, positive], axis=-1)
        if self.head == "sigmoid":
            return jax.nn.sigmoid(logits)
        return jax.nn.softmax(logits)

    def metric_sums(
        self, logits: jax.Array, labels: jax.Array, losses: jax.Array, mask: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        """Sums over the batch (examples where `mask` is 0 left out): loss, correct, top-5, count."""
        weight = jnp.ones_like(losses) if mask is None else mask.astype(jnp.float32)
        # Softmax and sigmoid keep the order of the logits: rank those (one unit: positive or not).
        predictions = (logits[:, 0] > 0).astype(labels.dtype) if self.binary else jnp.argmax(logits, axis=-1)
        correct = (predictions == labels).astype(jnp.float32)
        sums = {"loss": jnp.sum(losses * weight), "correct": jnp.sum(correct * weight), "count": jnp.sum(weight)}
        if self.top5:
            top = jax.lax.top_k(logits, 5)[1]
            sums["top5"] = jnp.sum(jnp.any(top == labels[:, None], axis=-1) * weight)
        return sums


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
