"""Growing and cutting the image, as U-Net decoders do: `convtranspose F K` (Keras Conv2DTranspose),
`upsample N` (Keras UpSampling2D, nearest or bilinear) and `crop N` (Keras Cropping2D).

Receptive fields: these layers move finer than one input pixel, which the integer jump of
archspec.infer cannot hold, so upsampling keeps the jump and later windows count as if no
upsampling happened (an upper bound of the true field).
"""

from __future__ import annotations

import math

from archspec.layers.base import Arg, ArgError, LayerKind, ShapeError, Window, boolean, layer, pair, positive, spatial
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
    has_kernel = True
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
    args = (Arg("cropping", sides, positional=True, doc="N, HxW or TxBxLxR"),)

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
