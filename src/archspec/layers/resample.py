"""Growing and cutting the image, as U-Net decoders do: `convtranspose F K` (Keras Conv2DTranspose),
`upsample N` (Keras UpSampling2D, nearest or bilinear) and `crop N` (Keras Cropping2D).

Receptive fields: these layers move finer than one input pixel, which the integer jump of
archspec.infer cannot hold, so upsampling keeps the jump and later windows count as if no
upsampling happened (an upper bound of the true field).
"""

from __future__ import annotations

import math

from archspec.layers.base import (
    Arg,
    ArgError,
    Code,
    LayerKind,
    Module,
    Op,
    ShapeError,
    Window,
    boolean,
    call,
    keyword,
    layer,
    pair,
    positive,
    python,
    settled,
    size_keyword,
    spatial,
    square,
    upper,
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
            padding=upper(attrs["padding"]),
            use_bias=attrs["bias"],
            transpose_kernel=True,  # the gradient of a convolution, as Keras and PyTorch compute it
            dtype=dtype,
            rngs=rngs,
        )

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])

    def keras_code(self, attrs, inputs, output):
        conv = call(
            "layers.Conv2DTranspose",
            attrs["filters"],
            Code(square(attrs["kernel"])),
            strides=size_keyword(attrs["stride"], (1, 1)),
            padding=keyword(attrs["padding"], "valid"),
            use_bias=keyword(attrs["bias"], True),
        )
        return [Module(conv, name="up")]

    def pytorch_code(self, attrs, inputs, output):
        # Keras' sizes: `valid` gives in*stride + max(K - stride, 0), `same` in*stride, the odd pixel of
        # `same` cropped at the bottom and right. PyTorch crops `padding` on both sides and adds
        # `output_padding` at the end.
        pads, extra, crop = [], [], False
        for kernel, stride in zip(attrs["kernel"], attrs["stride"]):
            total = settled(kernel - stride) if attrs["padding"] == "same" else 0
            total = total if total > 0 else 0
            pads.append(settled(total // 2))
            extra.append(settled(stride - kernel) if stride > kernel else 0)
            crop = crop or settled(total % 2) == 1
        conv = call(
            "nn.ConvTranspose2d",
            inputs[0][2],
            attrs["filters"],
            Code(square(attrs["kernel"])),
            stride=size_keyword(attrs["stride"], (1, 1)),
            padding=size_keyword(tuple(pads), (0, 0)),
            output_padding=size_keyword(tuple(extra), (0, 0)),
            bias=keyword(attrs["bias"], True),
        )
        steps = [Module(conv, name="up")]
        if crop:
            steps.append(
                Op(call("crop_odd_same", Code("{0}"), attrs["kernel"], attrs["stride"]), helpers=(TORCH_CROP,))
            )
        return steps

    def flax_code(self, attrs, inputs, output):
        conv = call(
            "nnx.ConvTranspose",
            inputs[0][2],
            attrs["filters"],
            kernel_size=attrs["kernel"],
            strides=keyword(attrs["stride"], (1, 1)),
            padding=upper(attrs["padding"]),
            use_bias=keyword(attrs["bias"], True),
            transpose_kernel=True,  # the gradient of a convolution, as Keras and PyTorch compute it
            rngs=Code("rngs"),
        )
        return [Module(conv, name="up")]


TORCH_CROP = '''def crop_odd_same(x, kernel, stride):
    """Crop the last row and column where a transposed conv's `same` padding is odd, as Keras."""
    rows, columns = (1 if (k - s) > 0 and (k - s) % 2 else 0 for k, s in zip(kernel, stride))
    return x[:, :, : x.shape[2] - rows, : x.shape[3] - columns]'''


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

    def keras_code(self, attrs, inputs, output):
        bilinear = keyword(attrs["method"], "nearest")
        up = call("layers.UpSampling2D", Code(square(attrs["size"])), interpolation=bilinear)
        return [Module(up, name="up")]

    def pytorch_code(self, attrs, inputs, output):
        sh, sw = attrs["size"]
        bilinear = attrs["method"] == "bilinear"
        # bilinear: half-pixel centres (align_corners=False), as Keras and jax.image.resize
        keywords = {"mode": "bilinear", "align_corners": False} if bilinear else {}
        return [Op(call("F.interpolate", Code("{0}"), scale_factor=(sh, sw), **keywords))]

    def flax_code(self, attrs, inputs, output):
        sh, sw = attrs["size"]
        if attrs["method"] == "nearest":
            return [Op(f"jnp.repeat(jnp.repeat({{0}}, {python(sh)}, axis=1), {python(sw)}, axis=2)")]
        size = f"({{0}}.shape[0], {{0}}.shape[1] * {python(sh)}, {{0}}.shape[2] * {python(sw)}, {{0}}.shape[3])"
        return [Op(f'jax.image.resize({{0}}, {size}, method="bilinear")')]


@layer
class Crop(LayerKind):
    name = "crop"
    family = "pad"
    keras_name = "Cropping2D"
    linear = True
    summary = "cut rows and columns off the edges: `crop N`, `crop HxW` or `crop TxBxLxR`, like `zeropad`"
    args = (Arg("cropping", sides, positional=True, doc="N, HxW or TxBxLxR", text=sides_text),)

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

    def keras_code(self, attrs, inputs, output):
        top, bottom, left, right = attrs["cropping"]
        return [Module(call("layers.Cropping2D", ((top, bottom), (left, right))), name="crop")]

    def _slices(self, attrs, height: str, width: str) -> tuple[str, str]:
        top, bottom, left, right = attrs["cropping"]
        return (
            f"{python(top)} : {{0}}.shape[{height}] - {python(bottom)}",
            f"{python(left)} : {{0}}.shape[{width}] - {python(right)}",
        )

    def pytorch_code(self, attrs, inputs, output):
        rows, columns = self._slices(attrs, "2", "3")
        return [Op(f"{{0}}[:, :, {rows}, {columns}]")]

    def flax_code(self, attrs, inputs, output):
        rows, columns = self._slices(attrs, "1", "2")
        return [Op(f"{{0}}[:, {rows}, {columns}, :]")]
