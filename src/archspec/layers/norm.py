"""Normalization: `bn` (BatchNorm, Keras counting: 4 values per channel, 2 trainable), `lrn`
(AlexNet's local response normalization), `normalize` (Keras Normalization: fixed mean and
variance) and `rescale` (multiply and shift, no parameters)."""

from __future__ import annotations

from archspec.layers import keras_config
from archspec.layers.base import Arg, LayerKind, Untranslatable, boolean, layer, positive, positive_real, real
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
    keras_classes = ("BatchNormalization",)
    keras_positional = ("axis", "momentum", "epsilon", "center", "scale")

    def param_count(self, attrs, inputs, output):
        channels = inputs[0][-1]
        return channels * (int(attrs["center"]) + int(attrs["scale"])), 2 * channels

    def read_keras(self, class_name, config, inputs):
        # renorm's extra statistics would change the counts: refused unless off, by check_keys
        keras_config.check_keys(config, ("axis", "momentum", "epsilon", "center", "scale", "renorm_momentum"))
        keras_config.channel_axis(config, "axis", len(inputs[0]))
        values = {key: config.get(key) for key in ("momentum", "epsilon", "center", "scale")}
        return [("bn", keras_config.bind(self, values))]

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
    keras_name = "LRN"
    summary = "local response normalization across channels (AlexNet; PyTorch's formula)"
    args = (
        Arg("size", positive, 5, doc="channels in the window"),
        Arg("alpha", real, 1e-4, doc="scale (divided by size)"),
        Arg("beta", real, 0.75, doc="exponent"),
        Arg("k", real, 2.0, doc="additive constant"),
    )
    # Keras has no LRN layer: this is the class `cnn-arch export --to keras` writes.
    keras_classes = ("LocalResponseNorm",)
    keras_positional = ("size", "alpha", "beta", "k")

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("size", "alpha", "beta", "k"))
        return [("lrn", keras_config.bind(self, {key: config.get(key) for key in ("size", "alpha", "beta", "k")}))]

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
    keras_classes = ("Normalization",)
    keras_positional = ("axis", "mean", "variance", "invert")

    def param_count(self, attrs, inputs, output):
        return 0, 2 * inputs[0][-1] + 1

    def read_keras(self, class_name, config, inputs):
        if config.get("mean") is not None or config.get("variance") is not None:
            raise Untranslatable(
                "mean",
                "a `Normalization` with fixed `mean` and `variance` holds them as constants, not weights; the "
                "spec's `normalize` keeps 2C+1 statistics, so the counts would differ",
                hint="read the model without this preprocessing (Keras applications: include_preprocessing=False)",
            )
        keras_config.check_keys(config, ("axis",))  # invert: refused
        keras_config.channel_axis(config, "axis", len(inputs[0]))
        return [("normalize", {})]

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
    keras_classes = ("Rescaling",)
    keras_positional = ("scale", "offset")

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("scale", "offset"))
        for key in ("scale", "offset"):
            if isinstance(config.get(key), (list, tuple)):
                raise Untranslatable(key, f"a `{key}` per channel has no spec equivalent (`rescale` takes one number)")
        return [("rescale", keras_config.bind(self, {"scale": config.get("scale"), "offset": config.get("offset")}))]

    def label(self, attrs):
        return f"rescale {show(attrs['scale'])}" + (f" +{show(attrs['offset'])}" if attrs["offset"] else "")

    def apply(self, module, attrs, xs, *, train):
        return xs[0] * attrs["scale"] + attrs["offset"]
