"""The model's output against the data: which loss and scores its head calls for (`Task`), and
whether its last layer can represent the dataset's classes (`check_fits`).

The loss is always computed from logits (the input of a final softmax or sigmoid), which is the
numerically stable form: a softmax head trains with softmax cross-entropy, a 1-unit sigmoid head with
binary cross-entropy, a K-unit sigmoid head with one binary cross-entropy per class, and a head
without activation treats its outputs as logits for softmax cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import optax

from archspec.errors import UserError
from archspec.layers import REGISTRY
from archspec.text import shape_text

if TYPE_CHECKING:
    from archspec.train.data import Dataset

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


def head_of(typed) -> str | None:
    """The activation the model ends with, None for logits (a dense without one)."""
    last = typed.graph.nodes[-1]
    return last.kind if last.layer.family == "activation" and not last.layer.linear else None


def task_for(typed, num_classes: int, label_smoothing: float = 0.0) -> Task:
    """The task of a typed graph that outputs one score vector per image."""
    if len(typed.output_shape) != 1:
        # a per-pixel output is a segmentation model (U-Net): say so rather than only "not a classifier"
        spatial = "; training a per-pixel output (segmentation) is not supported yet" * (len(typed.output_shape) == 3)
        raise UserError(
            f"the spec outputs {shape_text(typed.output_shape)} per image, but a classifier outputs one score per class"
            + spatial,
            hint=f"end the spec with `gap` (or `flatten`) and `dense {num_classes} softmax`",
        )
    return Task(head_of(typed), typed.output_shape[0], num_classes, label_smoothing)


def make_task(typed, dataset, label_smoothing: float = 0.0) -> Task:
    """The loss and metrics for `typed` on `dataset`; refuses a head that does not fit the classes."""
    task = task_for(typed, dataset.num_classes, label_smoothing)
    check_fits(dataset, num_outputs=task.num_outputs, head_activation=task.head)
    return task


def check_fits(dataset: Dataset, *, num_outputs: int, head_activation: str | None) -> None:
    """Check that a model ending in `num_outputs` units and `head_activation` fits `dataset`.

    `head_activation` is the last layer's activation, None (or "linear") when it outputs logits.
    Softmax and logits need one unit per class; sigmoid needs one per class, or one for two classes.

    Raises:
        UserError: the last layer cannot represent the dataset's classes.
    """
    classes = dataset.num_classes
    activation = (head_activation or "linear").lower()
    head = f"dense {num_outputs}" if activation == "linear" else f"dense {num_outputs} {activation}"
    found = f"{dataset.source} has {_describe_classes(dataset.class_names)}"
    change = f"change the last layer to `dense {classes} softmax`"
    if activation != "linear" and not REGISTRY[activation].probability_output:
        raise UserError(
            f"the spec ends with `{head}`, which cannot output class scores: "
            "a classifier's last layer has softmax, sigmoid or no activation",
            hint=change,
        )
    if num_outputs == classes or (activation == "sigmoid" and num_outputs == 1 and classes == 2):
        return
    if activation == "sigmoid" and num_outputs == 1:
        raise UserError(f"`{head}` can tell only 2 classes apart, but {found}", hint=change)
    if activation == "linear":
        raise UserError(
            f"the spec ends with `{head}` (no activation: one logit per class) but {found}",
            hint=f"change the last layer to `dense {classes}` or `dense {classes} softmax`",
        )
    raise UserError(f"the spec ends with `{head}` but {found}", hint=change)


def _describe_classes(class_names: tuple[str, ...]) -> str:
    shown = ", ".join(class_names[:5]) + (", ..." if len(class_names) > 5 else "")
    return f"{len(class_names)} classes ({shown})"
