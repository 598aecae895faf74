"""The loss follows the model's head, computed from logits; metrics are masked sums."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from archspec.train.metrics import finalize
from archspec.train.outputs import Task


def test_softmax_head_uses_cross_entropy_from_logits():
    task = Task("softmax", 3, 3)
    logits = jnp.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    labels = jnp.array([0, 1])
    expected = -np.log(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))[[0, 1], [0, 1]]
    np.testing.assert_allclose(task.loss(logits, labels), expected, rtol=1e-6)


def test_cross_entropy_is_finite_for_huge_logits():
    """From logits, not from probabilities: no log(0) when the softmax saturates."""
    task = Task("softmax", 2, 2)
    losses = task.loss(jnp.array([[1000.0, -1000.0]]), jnp.array([1]))
    assert np.isfinite(losses).all() and losses[0] == pytest.approx(2000.0)


def test_one_sigmoid_unit_uses_binary_cross_entropy():
    task = Task("sigmoid", 1, 2)
    logits = jnp.array([[3.0], [-2.0]])
    labels = jnp.array([1, 1])
    expected = np.log1p(np.exp(-np.array([3.0, -2.0])))
    np.testing.assert_allclose(task.loss(logits, labels), expected, rtol=1e-6)
    np.testing.assert_allclose(task.scores(logits)[:, 1], 1 / (1 + np.exp(-np.array([3.0, -2.0]))), rtol=1e-6)
    assert task.binary


def test_sigmoid_per_class_sums_one_binary_loss_per_class():
    task = Task("sigmoid", 3, 3)
    logits = jnp.array([[1.0, -1.0, 0.0]])
    targets = np.array([0.0, 1.0, 0.0])
    per_class = np.log1p(np.exp(-np.array([1.0, -1.0, 0.0]))) * targets + np.log1p(
        np.exp(np.array([1.0, -1.0, 0.0]))
    ) * (1 - targets)
    np.testing.assert_allclose(task.loss(logits, jnp.array([1])), [per_class.sum()], rtol=1e-6)


def test_a_head_without_activation_outputs_logits_for_cross_entropy():
    logits = jnp.array([[2.0, 0.5, -1.0]])
    labels = jnp.array([2])
    np.testing.assert_allclose(Task(None, 3, 3).loss(logits, labels), Task("softmax", 3, 3).loss(logits, labels))


def test_label_smoothing_raises_the_loss_of_a_confident_right_answer():
    logits, labels = jnp.array([[10.0, -10.0]]), jnp.array([0])
    assert Task("softmax", 2, 2, 0.1).loss(logits, labels)[0] > Task("softmax", 2, 2).loss(logits, labels)[0]


def test_metric_sums_skip_masked_examples():
    task = Task("softmax", 2, 2)
    logits = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = jnp.array([0, 1, 1])
    sums = task.metric_sums(logits, labels, task.loss(logits, labels), jnp.array([1.0, 0.0, 1.0]))
    assert float(sums["count"]) == 2 and float(sums["correct"]) == 2
    assert finalize({k: float(v) for k, v in sums.items()})["accuracy"] == 1.0


@pytest.mark.parametrize(("classes", "has_top5"), [(10, False), (11, True)])
def test_top5_accuracy_beyond_ten_classes(classes, has_top5):
    task = Task("softmax", classes, classes)
    logits = jnp.tile(jnp.arange(classes, dtype=jnp.float32), (2, 1))  # ranks: last class first
    labels = jnp.array([classes - 1, classes - 5])
    sums = task.metric_sums(logits, labels, task.loss(logits, labels))
    metrics = finalize({k: float(v) for k, v in sums.items()})
    assert ("top5_accuracy" in metrics) is has_top5
    assert metrics["accuracy"] == 0.5
    if has_top5:
        assert metrics["top5_accuracy"] == 1.0
