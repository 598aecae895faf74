"""Pooling: `maxpool K`, `avgpool K` (stride defaults to the window, Keras style) and the global
poolings `gap` / `gmp`, which give one value per channel."""

from __future__ import annotations

from archspec.layers.base import (
    GLOBAL,
    Arg,
    LayerKind,
    Window,
    boolean,
    conv_output_size,
    layer,
    padding,
    pair,
    spatial,
    window_fits,
)
from archspec.text import show_pair


class _Pool(LayerKind):
    family = "pool"
    args = (
        Arg("size", pair, positional=True, doc="window: K or HxW"),
        Arg("stride", pair, None, doc="step of the window (default: the window size)"),
        Arg("padding", padding, "valid", doc="valid, same, N or HxW"),
    )

    def _stride(self, attrs):
        return attrs["stride"] or attrs["size"]

    def label(self, attrs):
        text = super().label(attrs)
        if attrs["stride"] and attrs["stride"] != attrs["size"]:
            text += f" /{show_pair(attrs['stride'])}"
        if attrs["padding"] != "valid":
            text += f" {attrs['padding'] if isinstance(attrs['padding'], str) else 'pad'}"
        return text

    def output_shape(self, attrs, inputs):
        h, w, c = spatial(self.name, inputs[0])
        size, stride, pad = attrs["size"], self._stride(attrs), attrs["padding"]
        window_fits(self.name, (h, w, c), size, (1, 1), pad, f"{self.name} {show_pair(size)}")
        pads = (pad, pad) if isinstance(pad, str) else pad
        return (
            conv_output_size(h, size[0], stride[0], 1, pads[0]),
            conv_output_size(w, size[1], stride[1], 1, pads[1]),
            c,
        )

    def window(self, attrs):
        return Window(attrs["size"], self._stride(attrs))

    def _flax_padding(self, attrs):
        pad = attrs["padding"]
        return pad.upper() if isinstance(pad, str) else pad


@layer
class MaxPool(_Pool):
    name = "maxpool"
    keras_name = "MaxPool2D"
    summary = "max pooling: `maxpool K` (stride defaults to K)"

    def apply(self, module, attrs, xs, *, train):
        from archspec.gradients import max_pool

        return max_pool(xs[0], attrs["size"], self._stride(attrs), self._flax_padding(attrs))


@layer
class AvgPool(_Pool):
    name = "avgpool"
    keras_name = "AvgPool2D"
    linear = True
    summary = "average pooling: `avgpool K` (stride defaults to K; `same` padding averages real pixels only)"

    def apply(self, module, attrs, xs, *, train):
        from flax import nnx

        x = xs[0]
        pooled = nnx.avg_pool(
            x,
            window_shape=attrs["size"],
            strides=self._stride(attrs),
            padding=self._flax_padding(attrs),
            count_include_pad=False,
        )
        return pooled.astype(x.dtype)  # its divisor of real pixels is float32: keep bf16 compute in bf16


class _GlobalPool(LayerKind):
    family = "global_pool"
    args = (Arg("keepdims", boolean, False, doc="keep a 1x1xC shape (for squeeze-excite) instead of a vector"),)

    def label(self, attrs):
        return self.name + (" keepdims" if attrs["keepdims"] else "")

    def output_shape(self, attrs, inputs):
        _, _, c = spatial(self.name, inputs[0])
        return (1, 1, c) if attrs["keepdims"] else (c,)

    def window(self, attrs):
        return GLOBAL


@layer
class GlobalAveragePool(_GlobalPool):
    name = "gap"
    keras_name = "GlobalAvgPool"
    linear = True
    summary = "global average pooling: the mean of each channel"

    def apply(self, module, attrs, xs, *, train):
        return xs[0].mean(axis=(1, 2), keepdims=attrs["keepdims"])


@layer
class GlobalMaxPool(_GlobalPool):
    name = "gmp"
    keras_name = "GlobalMaxPool"
    summary = "global max pooling: the maximum of each channel"

    def apply(self, module, attrs, xs, *, train):
        return xs[0].max(axis=(1, 2), keepdims=attrs["keepdims"])
