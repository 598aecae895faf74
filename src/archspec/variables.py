"""`Statistic`: the Flax variable type of fixed, non-trainable values (Keras Normalization's mean,
variance and count), and `rewritable`, for variables written whole at every step. Its own module
because it imports Flax, which the layer modules import only when a model is built."""

from __future__ import annotations

import functools

from flax import nnx


class Statistic(nnx.Variable):
    """A fixed, non-trainable value: counted as non-trainable, never updated by the optimizer."""


def rewritable(variable: nnx.Variable) -> nnx.Variable:
    """`variable` as an instance of a subclass of its own type whose whole-array write
    (`v[...] = new`, as BatchNorm's moving averages and every RNG stream's counter are written) is a
    plain replacement when shape and dtype stay. Flax 0.12 first compares the new value's sharding
    with the old one's, and under tracing JAX answers that with an error message it builds by walking
    the whole traced graph: tracing grew with the square of a model's size (NASNet-Mobile's 192
    BatchNorms and 742 weight initialisers: 75 s to trace init and a training step, 4 s without)."""
    return _rewritable_type(type(variable))(variable.get_value(), **variable.get_metadata())


@functools.cache
def _rewritable_type(kind: type) -> type:
    def __setitem__(self, key, value) -> None:
        old = self.get_value()
        if key is Ellipsis and getattr(value, "shape", None) == old.shape and value.dtype == old.dtype:
            self.set_value(value)
        else:
            kind.__setitem__(self, key, value)

    return type(kind.__name__, (kind,), {"__setitem__": __setitem__, "__module__": __name__})
