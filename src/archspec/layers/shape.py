"""Layers that only move data: `input`, `flatten`, `zeropad`, `dropout`, `droppath`."""

from __future__ import annotations

import math

from archspec.layers import keras_config
from archspec.layers.base import (
    GLOBAL,
    REGISTRY,
    Arg,
    ArgError,
    LayerKind,
    Untranslatable,
    Window,
    layer,
    non_negative,
    positive,
    rate,
    spatial,
)
from archspec.text import show

MAX_SIDE = 65_536
MAX_CHANNELS = 1_000_000


def input_shape(name: str, value) -> tuple[int, ...]:
    """`HxWxC` for images, or `N` for a vector input."""
    dims = value if isinstance(value, tuple) else (value,)
    if len(dims) not in (1, 3):
        raise ArgError(f"`{name}` must be HxWxC (or N for a vector), got `{show(value)}`")
    dims = tuple(positive(name, d) for d in dims)
    if len(dims) == 3 and (dims[0] > MAX_SIDE or dims[1] > MAX_SIDE):
        raise ArgError(f"input {show(dims)} is larger than {MAX_SIDE}x{MAX_SIDE}")
    if dims[-1] > MAX_CHANNELS or math.prod(dims) > 2**31:
        raise ArgError(f"input {show(dims)} has {math.prod(dims):,} values, more than a model can take")
    return dims


@layer
class Input(LayerKind):
    name = "input"
    family = "input"
    keras_name = "Input"
    summary = "the input tensor: `input HxWxC` (batch not included)"
    args = (Arg("shape", input_shape, positional=True, doc="HxWxC, or N for a vector"),)
    keras_classes = ("InputLayer",)
    keras_positional = ("shape", "batch_size", "dtype", "sparse", "ragged", "batch_shape")

    def output_shape(self, attrs, inputs):
        return attrs["shape"]

    def read_keras(self, class_name, config, inputs):
        # Keras 3 saves `batch_shape`, Keras 2 `batch_input_shape`, both with the batch first;
        # source says `shape` without it.
        for key in ("batch_shape", "batch_input_shape"):
            if config.get(key) is not None:
                shape, where = keras_config.plain(config[key])[1:], key
                break
        else:
            shape, where = keras_config.plain(config.get("shape")), "shape"
        if shape is None or (isinstance(shape, tuple) and None in shape):
            raise Untranslatable(
                where,
                f"the input shape is not fixed ({keras_config.show(shape)})",
                hint="pass --input HxWxC to give it",
            )
        keras_config.check_keys(
            config, ("batch_shape", "batch_input_shape", "shape", "batch_size", "sparse", "ragged", "optional")
        )
        for key in ("sparse", "ragged"):
            if config.get(key):
                raise Untranslatable(key, f"a {key} input has no spec equivalent")
        return [("input", keras_config.bind(self, {"shape": shape}, {"shape": where}))]


@layer
class Flatten(LayerKind):
    name = "flatten"
    family = "reshape"
    keras_name = "Flatten"
    linear = True
    summary = "reshape HxWxC into a vector of H*W*C values"
    keras_classes = ("Flatten",)
    keras_positional = ("data_format",)

    def output_shape(self, attrs, inputs):
        return (math.prod(inputs[0]),)

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("data_format",))
        keras_config.channels_last(config)
        return [("flatten", {})]

    def window(self, attrs):
        return GLOBAL

    def apply(self, module, attrs, xs, *, train):
        return xs[0].reshape(xs[0].shape[0], -1)


def sides(name: str, value) -> tuple[int, int, int, int]:
    if isinstance(value, tuple):
        if len(value) == 2:
            h, w = (non_negative(name, v) for v in value)
            return h, h, w, w
        if len(value) == 4:
            top, bottom, left, right = (non_negative(name, v) for v in value)
            return top, bottom, left, right
        raise ArgError(f"`{name}` must be N, HxW or TxBxLxR, got `{show(value)}`")
    n = non_negative(name, value)
    return n, n, n, n


def sides_text(value: tuple[int, int, int, int]) -> str:
    """How `sides` values read back: `1`, `1x2` or `1x2x3x4`."""
    top, bottom, left, right = value
    if top == bottom == left == right:
        return str(top)
    if top == bottom and left == right:
        return f"{top}x{left}"
    return f"{top}x{bottom}x{left}x{right}"


@layer
class ZeroPad(LayerKind):
    name = "zeropad"
    family = "pad"
    keras_name = "ZeroPad2D"
    linear = True
    summary = "pad with zeros: `zeropad N`, `zeropad HxW` or `zeropad TxBxLxR` (top, bottom, left, right)"
    args = (Arg("padding", sides, positional=True, doc="N, HxW or TxBxLxR", text=sides_text),)

    keras_classes = ("ZeroPadding2D",)
    keras_positional = ("padding", "data_format")

    def label(self, attrs):
        return f"zeropad {sides_text(attrs['padding'])}"

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("padding", "data_format"))
        keras_config.channels_last(config)
        return [("zeropad", keras_config.bind(self, {"padding": keras_config.sides(config, "padding", 1)}))]

    def output_shape(self, attrs, inputs):
        h, w, c = spatial(self.name, inputs[0])
        top, bottom, left, right = attrs["padding"]
        return h + top + bottom, w + left + right, c

    def window(self, attrs):
        return Window((1, 1), (1, 1))

    def apply(self, module, attrs, xs, *, train):
        import jax.numpy as jnp

        top, bottom, left, right = attrs["padding"]
        return jnp.pad(xs[0], ((0, 0), (top, bottom), (left, right), (0, 0)))


@layer
class Dropout(LayerKind):
    name = "dropout"
    family = "dropout"
    keras_name = "Dropout"
    linear = True  # at inference, the identity
    summary = "dropout: `dropout P` zeroes a fraction P of the values while training"
    args = (Arg("rate", rate, positional=True, doc="fraction dropped, 0 <= P < 1"),)
    keras_classes = ("Dropout",)
    keras_positional = ("rate", "noise_shape", "seed")

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("rate", "noise_shape"))
        if config.get("noise_shape") is not None:  # one draw per example: stochastic depth
            return REGISTRY["droppath"].read_keras(class_name, config, inputs)
        return [("dropout", keras_config.bind(self, {"rate": config.get("rate")}))]

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        return nnx.Dropout(attrs["rate"], rngs=rngs)

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0], deterministic=not train)


@layer
class DropPath(LayerKind):
    name = "droppath"
    family = "dropout"
    keras_name = "StochasticDepth"
    linear = True  # at inference, the identity
    summary = (
        "stochastic depth on a residual branch: `droppath P` zeroes a whole example's branch with probability P "
        "while training (the rest scaled by 1/(1-P)); the identity at inference"
    )
    args = (Arg("rate", rate, positional=True, doc="probability of dropping the branch, 0 <= P < 1"),)

    # Keras has no stochastic-depth layer: `cnn-arch export --to keras` writes a `DropPath` class,
    # and EfficientNet a `Dropout` whose `noise_shape` is 1 but for the batch (`dropout` hands it over).
    keras_classes = ("DropPath",)
    keras_positional = ("rate",)

    def read_keras(self, class_name, config, inputs):
        if class_name == "DropPath":
            keras_config.check_keys(config, ("rate",))
            return [("droppath", keras_config.bind(self, {"rate": config.get("rate")}))]
        shape = keras_config.plain(config.get("noise_shape"))
        if not isinstance(shape, tuple) or len(shape) != len(inputs[0]) + 1 or any(d != 1 for d in shape[1:]):
            raise Untranslatable(
                "noise_shape",
                f"`noise_shape={keras_config.show(shape)}` has no spec equivalent",
                hint="the spec has dropout (no noise_shape) and droppath (noise_shape (None, 1, 1, 1))",
            )
        return [("droppath", keras_config.bind(self, {"rate": config.get("rate")}))]

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        # one draw per example: the mask is shared over every other axis
        return nnx.Dropout(attrs["rate"], broadcast_dims=tuple(range(1, len(inputs[0]) + 1)), rngs=rngs)

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0], deterministic=not train)
