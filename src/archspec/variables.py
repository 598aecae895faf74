"""`Statistic`: the Flax variable type of fixed, non-trainable values (Keras Normalization's mean,
variance and count). Its own module because it imports Flax, which the layer modules import only
when a model is built."""

from __future__ import annotations

from flax import nnx


class Statistic(nnx.Variable):
    """A fixed, non-trainable value: counted as non-trainable, never updated by the optimizer."""
