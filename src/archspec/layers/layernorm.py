"""Per-example normalization and scaling, ConvNeXt's and the GroupNorm networks': `layernorm`
(Keras LayerNormalization over channels), `groupnorm G` (Keras GroupNormalization) and
`layerscale` (a learnable per-channel scale, ConvNeXt's gamma)."""

from __future__ import annotations

from archspec.layers import keras_config
from archspec.layers.base import (
    GLOBAL,
    Arg,
    LayerKind,
    ShapeError,
    Untranslatable,
    boolean,
    layer,
    positive,
    positive_real,
    real,
)

_AFFINE = (
    Arg("center", boolean, True, doc="learn a shift (beta)"),
    Arg("scale", boolean, True, doc="learn a scale (gamma)"),
)


def _affine_count(attrs: dict, channels: int) -> int:
    return channels * (int(attrs["center"]) + int(attrs["scale"]))


def _read_norm(kind: LayerKind, config: dict, inputs, read: tuple[str, ...]) -> list:
    keras_config.check_keys(config, ("axis", *read))
    keras_config.channel_axis(config, "axis", len(inputs[0]))
    return [(kind.name, keras_config.bind(kind, {key: config.get(key) for key in read}))]


@layer
class LayerNorm(LayerKind):
    name = "layernorm"
    family = "norm"
    keras_name = "LayerNormalization"
    summary = "layer normalization over the channels of each pixel (Keras defaults: epsilon 0.001; ConvNeXt 1e-6)"
    args = (Arg("epsilon", positive_real, 1e-3, doc="added to the variance"), *_AFFINE)
    keras_classes = ("LayerNormalization",)
    keras_positional = ("axis", "epsilon", "center", "scale")

    def read_keras(self, class_name, config, inputs):
        return _read_norm(self, config, inputs, ("epsilon", "center", "scale"))

    def param_count(self, attrs, inputs, output):
        return _affine_count(attrs, inputs[0][-1]), 0

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        return nnx.LayerNorm(
            inputs[0][-1],
            epsilon=attrs["epsilon"],
            use_bias=attrs["center"],
            use_scale=attrs["scale"],
            use_fast_variance=False,  # Keras computes the variance around the mean
            dtype=dtype,
            rngs=rngs,
        )

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])


@layer
class GroupNorm(LayerKind):
    name = "groupnorm"
    family = "norm"
    keras_name = "GroupNormalization"
    summary = "group normalization: `groupnorm G` normalizes G channel groups over the whole image (epsilon 0.001)"
    args = (
        Arg("groups", positive, positional=True, doc="number of channel groups; must divide the channels"),
        Arg("epsilon", positive_real, 1e-3, doc="added to the variance"),
        *_AFFINE,
    )
    keras_classes = ("GroupNormalization",)
    keras_positional = ("groups", "axis", "epsilon", "center", "scale")

    def read_keras(self, class_name, config, inputs):
        config = {"groups": 32, **config}  # Keras' default
        return _read_norm(self, config, inputs, ("groups", "epsilon", "center", "scale"))

    def output_shape(self, attrs, inputs):
        channels = inputs[0][-1]
        if channels % attrs["groups"]:
            raise ShapeError(
                f"input channels (={channels}) must be divisible by `groups` (={attrs['groups']})",
                hint=f"`groupnorm 1` is per-example normalization over everything; {channels} has divisors "
                + ", ".join(str(d) for d in range(1, min(channels, 64) + 1) if channels % d == 0),
            )
        return inputs[0]

    def param_count(self, attrs, inputs, output):
        return _affine_count(attrs, inputs[0][-1]), 0

    def window(self, attrs):
        return GLOBAL  # each value is normalized with statistics of the whole image

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        return nnx.GroupNorm(
            inputs[0][-1],
            num_groups=attrs["groups"],
            epsilon=attrs["epsilon"],
            use_bias=attrs["center"],
            use_scale=attrs["scale"],
            use_fast_variance=False,
            dtype=dtype,
            rngs=rngs,
        )

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])


@layer
class LayerScale(LayerKind):
    name = "layerscale"
    family = "norm"
    keras_name = "LayerScale"
    linear = True
    summary = "a learnable scale per channel, x * gamma (ConvNeXt's layer scale; `init=` starts gamma, 1e-6)"
    args = (Arg("init", real, 1e-6, doc="the starting value of every gamma"),)
    # Keras has no core layer-scale layer: the one keras.applications' ConvNeXt defines
    # (`init_values`, `projection_dim`); `cnn-arch export --to keras` writes one that says `init`.
    keras_classes = ("LayerScale",)
    keras_positional = ("init_values", "projection_dim")

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("init_values", "projection_dim", "init"))
        if "init" in config:
            config = {**config, "init_values": config["init"]}
        width = config.get("projection_dim")
        if width is not None and width != inputs[0][-1]:
            raise Untranslatable(
                "projection_dim", f"`projection_dim={width}` differs from the input's {inputs[0][-1]} channels"
            )
        return [("layerscale", keras_config.bind(self, {"init": config.get("init_values")}, {"init": "init_values"}))]

    def label(self, attrs):
        return f"layerscale {attrs['init']:g}"

    def param_count(self, attrs, inputs, output):
        return inputs[0][-1], 0

    def build(self, attrs, inputs, output, rngs, dtype=None):
        import jax.numpy as jnp
        from flax import nnx

        channels, init = inputs[0][-1], attrs["init"]

        class Scale(nnx.Module):
            def __init__(self):
                self.gamma = nnx.Param(jnp.full((channels,), init, dtype=jnp.float32))

            def __call__(self, x):
                return x * self.gamma[...].astype(x.dtype)

        return Scale()

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])
