"""Growing and cutting the image, as U-Net decoders do: `convtranspose F K` (Keras Conv2DTranspose),
`upsample N` (Keras UpSampling2D, nearest or bilinear) and `crop N` (Keras Cropping2D).

Receptive fields: these layers move finer than one input pixel, which the integer jump of
archspec.infer cannot hold, so upsampling keeps the jump and later windows count as if no
upsampling happened (an upper bound of the true field).
"""

from __future__ import annotations

import math

from archspec.layers import keras_config
from archspec.layers.base import (
    Arg,
    ArgError,
    LayerKind,
    ShapeError,
    Untranslatable,
    Window,
    boolean,
    layer,
    pair,
    positive,
    spatial,
)
from archspec.layers.shape import sides, sides_text
from archspec.text import describe_shape, show, show_pair
from archspec.words import Word


def _same_or_valid(name, value) -> str:
    if isinstance(value, Word) and value.text in ("valid", "same"):
        return value.text
    raise ArgError(f"`{name}` must be valid or same, got `{show(value)}`")


@layer
class ConvTranspose(LayerKind):
    name = "convtranspose"
    family = "conv"
    keras_name = "Conv2DTranspose"
    takes_suffix = True
    has_weights = True
    linear = True
    width_arg = "filters"
    summary = "transposed convolution: `convtranspose F K stride=2` grows the image by the stride (Keras shapes)"
    args = (
        Arg("filters", positive, positional=True, doc="number of output channels"),
        Arg("kernel", pair, positional=True, doc="kernel size: K or HxW"),
        Arg("stride", pair, (1, 1), doc="upsampling factor: N or HxW"),
        Arg("padding", _same_or_valid, "valid", doc="valid (out = in*stride + max(K-stride, 0)) or same (in*stride)"),
        Arg("bias", boolean, True, doc="add a bias per filter"),
    )
    keras_classes = ("Conv2DTranspose", "Convolution2DTranspose")
    keras_positional = (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "output_padding",
        "data_format",
        "dilation_rate",
        "activation",
        "use_bias",
    )

    def read_keras(self, class_name, config, inputs):
        read = (
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "data_format",
            "dilation_rate",
            "activation",
            "use_bias",
        )
        keras_config.check_keys(config, read)
        keras_config.channels_last(config)
        if keras_config.size(config, "dilation_rate", 1) != 1:
            raise Untranslatable("dilation_rate", "a dilated `Conv2DTranspose` has no spec equivalent")
        values = {
            "filters": config.get("filters"),
            "kernel": keras_config.size(config, "kernel_size"),
            "stride": keras_config.size(config, "strides", 1),
            "padding": keras_config.padding(config),
            "bias": config.get("use_bias"),
        }
        keys = {"kernel": "kernel_size", "stride": "strides", "bias": "use_bias"}
        return [("convtranspose", keras_config.bind(self, values, keys)), *keras_config.activation(config)]

    def label(self, attrs):
        text = super().label(attrs)
        if attrs["stride"] != (1, 1):
            text += f" *{show_pair(attrs['stride'])}"
        return text + (" same" if attrs["padding"] == "same" else "")

    def output_shape(self, attrs, inputs):
        h, w, _ = spatial(self.name, inputs[0])
        sizes = []
        for size, kernel, stride in zip((h, w), attrs["kernel"], attrs["stride"]):
            grown = size * stride
            sizes.append(grown if attrs["padding"] == "same" else grown + max(kernel - stride, 0))
        return sizes[0], sizes[1], attrs["filters"]

    def param_count(self, attrs, inputs, output):
        kh, kw = attrs["kernel"]
        weights = kh * kw * inputs[0][2] * attrs["filters"]
        return weights + (attrs["filters"] if attrs["bias"] else 0), 0

    def macs(self, attrs, inputs, output):
        # every input pixel is multiplied into a KxK patch of every filter
        h, w, c = inputs[0]
        kh, kw = attrs["kernel"]
        return h * w * c * kh * kw * attrs["filters"]

    def window(self, attrs):
        # an output pixel gathers ceil(K / stride) input pixels in each direction
        kernel = tuple(math.ceil(k / s) for k, s in zip(attrs["kernel"], attrs["stride"]))
        return Window(kernel, (1, 1))

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        return nnx.ConvTranspose(
            inputs[0][2],
            attrs["filters"],
            attrs["kernel"],
            strides=attrs["stride"],
            padding=attrs["padding"].upper(),
            use_bias=attrs["bias"],
            transpose_kernel=True,  # the gradient of a convolution, as Keras and PyTorch compute it
            dtype=dtype,
            rngs=rngs,
        )

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])


def _method(name, value) -> str:
    if isinstance(value, Word) and value.text in ("nearest", "bilinear"):
        return value.text
    raise ArgError(f"`{name}` must be nearest or bilinear, got `{show(value)}`")


@layer
class Upsample(LayerKind):
    name = "upsample"
    family = "reshape"
    keras_name = "UpSampling2D"
    linear = True
    summary = "repeat each pixel: `upsample 2` doubles height and width (`method=nearest` or `bilinear`)"
    args = (
        Arg("size", pair, positional=True, doc="factor: N or HxW"),
        Arg("method", _method, "nearest", doc="nearest or bilinear"),
    )
    keras_classes = ("UpSampling2D",)
    keras_positional = ("size", "data_format", "interpolation")

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("size", "data_format", "interpolation"))
        keras_config.channels_last(config)
        values = {"size": keras_config.size(config, "size", 2), "method": config.get("interpolation")}
        return [("upsample", keras_config.bind(self, values, {"method": "interpolation"}))]

    def label(self, attrs):
        return f"upsample {show_pair(attrs['size'])}" + (" bilinear" if attrs["method"] == "bilinear" else "")

    def output_shape(self, attrs, inputs):
        h, w, c = spatial(self.name, inputs[0])
        return h * attrs["size"][0], w * attrs["size"][1], c

    def apply(self, module, attrs, xs, *, train):
        import jax
        import jax.numpy as jnp

        x = xs[0]
        sh, sw = attrs["size"]
        if attrs["method"] == "nearest":
            return jnp.repeat(jnp.repeat(x, sh, axis=1), sw, axis=2)
        n, h, w, c = x.shape
        return jax.image.resize(x, (n, h * sh, w * sw, c), method="bilinear")


@layer
class Crop(LayerKind):
    name = "crop"
    family = "pad"
    keras_name = "Cropping2D"
    linear = True
    summary = "cut rows and columns off the edges: `crop N`, `crop HxW` or `crop TxBxLxR`, like `zeropad`"
    args = (Arg("cropping", sides, positional=True, doc="N, HxW or TxBxLxR", text=sides_text),)
    keras_classes = ("Cropping2D",)
    keras_positional = ("cropping", "data_format")

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("cropping", "data_format"))
        keras_config.channels_last(config)
        return [("crop", keras_config.bind(self, {"cropping": keras_config.sides(config, "cropping", 0)}))]

    def label(self, attrs):
        return f"crop {sides_text(attrs['cropping'])}"

    def output_shape(self, attrs, inputs):
        h, w, c = spatial(self.name, inputs[0])
        top, bottom, left, right = attrs["cropping"]
        if top + bottom >= h or left + right >= w:
            raise ShapeError(
                f"`{self.label(attrs)}` removes {top + bottom}x{left + right} of a {describe_shape(inputs[0])} "
                "input, leaving nothing",
                hint="crop less than the input's height and width",
            )
        return h - top - bottom, w - left - right, c

    def apply(self, module, attrs, xs, *, train):
        top, bottom, left, right = attrs["cropping"]
        x = xs[0]
        return x[:, top : x.shape[1] - bottom, left : x.shape[2] - right, :]
