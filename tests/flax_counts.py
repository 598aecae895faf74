"""Counting a built Flax model's variables, to check them against the inferred counts."""

from __future__ import annotations

import math

import jax
from flax import nnx

from archspec.flax_model import SpecModel, build_model
from archspec.infer import TypedGraph
from archspec.variables import Statistic


def abstract_model(typed: TypedGraph) -> SpecModel:
    """The model with shapes only (no memory allocated): for checks on big networks. Built as `train`
    builds it (`build_model`, whose random streams avoid Flax's quadratic tracing cost: NASNet-Mobile
    takes 2 s here instead of 24 s)."""
    return nnx.eval_shape(lambda: build_model(typed))


def logits(model: SpecModel, x) -> jax.Array:
    """The model's logits for `x`, compiled as one function: run op by op, a ConvNeXt compiles some 360
    small executables (14 s here) where the whole forward pass compiles in a few seconds."""
    graphdef, state = nnx.split(model)
    # what the weights copied in leave abstract (the random streams of dropout, unused in inference)
    state = jax.tree.map(lambda v: _concrete(v) if isinstance(v, jax.ShapeDtypeStruct) else v, state)
    return jax.jit(lambda s, images: nnx.merge(graphdef, s)(images, logits=True))(state, x)


def _concrete(value: jax.ShapeDtypeStruct) -> jax.Array:
    if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        return jax.random.key(0)
    return jax.numpy.zeros(value.shape, value.dtype)


def count_parameters(model: SpecModel) -> tuple[int, int]:
    """(trainable, non-trainable) values held by the model's variables."""

    def total(state) -> int:
        return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(state))

    # Dropout's random-number streams are state too, but not parameters.
    return total(nnx.state(model, nnx.Param)), total(nnx.state(model, (nnx.BatchStat, Statistic)))
