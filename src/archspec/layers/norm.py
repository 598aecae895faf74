"""Normalization: `bn` (BatchNorm, Keras counting: 4 values per channel, 2 trainable), `lrn`
(AlexNet's local response normalization), `normalize` (Keras Normalization: fixed mean and
variance) and `rescale` (multiply and shift, no parameters)."""

from __future__ import annotations

from archspec.layers.base import Arg, LayerKind, boolean, layer, positive, positive_real, real
from archspec.text import show


@layer
class BatchNorm(LayerKind):
    name = "bn"
    family = "norm"
    keras_name = "BatchNorm"
    trailing = True
    linear = True  # at inference: a fixed scale and shift per channel
    batch_statistics = True
    summary = "batch normalization over the last axis (Keras defaults: momentum 0.99, epsilon 0.001)"
    args = (
        Arg("momentum", real, 0.99, doc="moving-average momentum of the statistics"),
        Arg("epsilon", positive_real, 1e-3, doc="added to the variance"),
        Arg("center", boolean, True, doc="learn a shift (beta)"),
        Arg("scale", boolean, True, doc="learn a scale (gamma)"),
    )

    def param_count(self, attrs, inputs, output):
        channels = inputs[0][-1]
        return channels * (int(attrs["center"]) + int(attrs["scale"])), 2 * channels

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        module = nnx.BatchNorm(
            inputs[0][-1],
            momentum=attrs["momentum"],
            epsilon=attrs["epsilon"],
            use_bias=attrs["center"],
            use_scale=attrs["scale"],
            dtype=dtype,
            rngs=rngs,
        )
        from archspec.variables import rewritable

        module.mean, module.var = rewritable(module.mean), rewritable(module.var)  # written at every step
        return module

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0], use_running_average=not train)


@layer
class LocalResponseNorm(LayerKind):
    name = "lrn"
    family = "norm"
    neighbour_channel_norm = True
    keras_name = "LRN"
    summary = "local response normalization across channels (AlexNet; PyTorch's formula)"
    args = (
        Arg("size", positive, 5, doc="channels in the window"),
        Arg("alpha", real, 1e-4, doc="scale (divided by size)"),
        Arg("beta", real, 0.75, doc="exponent"),
        Arg("k", real, 2.0, doc="additive constant"),
    )

    def apply(self, module, attrs, xs, *, train):
        import jax

        x = xs[0]
        size = attrs["size"]
        squares = jax.lax.reduce_window(
            x * x,
            0.0,
            jax.lax.add,
            (1,) * (x.ndim - 1) + (size,),
            (1,) * x.ndim,
            [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)],
        )
        return x / (attrs["k"] + attrs["alpha"] / size * squares) ** attrs["beta"]


@layer
class Normalize(LayerKind):
    name = "normalize"
    family = "norm"
    keras_name = "Normalization"
    linear = True
    summary = "fixed per-channel (x - mean) / sqrt(variance), Keras Normalization: 2C+1 non-trainable values"
    args = ()

    def param_count(self, attrs, inputs, output):
        return 0, 2 * inputs[0][-1] + 1

    def build(self, attrs, inputs, output, rngs, dtype=None):
        import jax.numpy as jnp
        from flax import nnx

        from archspec.variables import Statistic

        channels = inputs[0][-1]

        class Standardize(nnx.Module):
            def __init__(self):
                self.mean = Statistic(jnp.zeros((channels,)))
                self.variance = Statistic(jnp.ones((channels,)))
                self.count = Statistic(jnp.zeros(()))

            def __call__(self, x):
                # float32 statistics, the activations' own dtype out (bf16 compute stays bf16)
                return ((x - self.mean[...]) / jnp.sqrt(jnp.maximum(self.variance[...], 1e-7))).astype(x.dtype)

        return Standardize()

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])


@layer
class Rescale(LayerKind):
    name = "rescale"
    family = "norm"
    keras_name = "Rescaling"
    linear = True
    summary = "x * scale + offset, e.g. `rescale 1/255` (Keras Rescaling)"
    args = (
        Arg("scale", real, positional=True, doc="multiplier"),
        Arg("offset", real, 0.0, doc="added after scaling"),
    )

    def label(self, attrs):
        return f"rescale {show(attrs['scale'])}" + (f" +{show(attrs['offset'])}" if attrs["offset"] else "")

    def apply(self, module, attrs, xs, *, train):
        return xs[0] * attrs["scale"] + attrs["offset"]
