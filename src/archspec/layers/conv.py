"""Convolutions: `conv F K`, `dwconv K` (depthwise) and `sepconv F K` (depthwise then pointwise).

Keras conventions: padding `valid` by default, biases on by default, channels last.
"""

from __future__ import annotations

from archspec.layers.base import (
    Arg,
    LayerKind,
    ShapeError,
    Window,
    boolean,
    conv_output_size,
    layer,
    padding,
    pair,
    positive,
    spatial,
    window_fits,
)
from archspec.text import show, show_pair

_SLIDING = (
    Arg("stride", pair, (1, 1), doc="step of the window: N or HxW"),
    Arg("padding", padding, "valid", doc="valid, same, N or HxW"),
    Arg("dilation", pair, (1, 1), doc="spacing of the kernel taps"),
)


def _flax_padding(pad):
    return pad.upper() if isinstance(pad, str) else pad


def _conv(*args, **kwargs):
    """`nnx.Conv` computing with `archspec.gradients`' convolution (its gradients are written for XLA:CPU)."""
    from flax import nnx

    from archspec.gradients import conv_general_dilated

    return nnx.Conv(*args, conv_general_dilated=conv_general_dilated, **kwargs)


class _Sliding(LayerKind):
    """The shared shape and receptive-field rules of the three convolutions."""

    family = "conv"
    takes_suffix = True
    has_weights = True
    linear = True

    def label(self, attrs: dict) -> str:
        text = super().label(attrs)
        if attrs["stride"] != (1, 1):
            text += f" /{show_pair(attrs['stride'])}"
        if attrs["padding"] != "valid":
            text += f" {attrs['padding'] if isinstance(attrs['padding'], str) else 'pad'}"
        return text

    def _out_channels(self, attrs: dict, channels: int) -> int:
        raise NotImplementedError

    def output_shape(self, attrs, inputs):
        h, w, c = spatial(self.name, inputs[0])
        self._check_channels(attrs, c)
        kernel, stride, dilation, pad = attrs["kernel"], attrs["stride"], attrs["dilation"], attrs["padding"]
        pads = (pad, pad) if isinstance(pad, str) else pad
        what = f"`{self.name}` with a {show(kernel)} kernel" + (
            f" (dilation {show(dilation)})" if dilation != (1, 1) else ""
        )
        window_fits(self.name, (h, w, c), kernel, dilation, pad, what)
        out_h = conv_output_size(h, kernel[0], stride[0], dilation[0], pads[0])
        out_w = conv_output_size(w, kernel[1], stride[1], dilation[1], pads[1])
        return out_h, out_w, self._out_channels(attrs, c)

    def _check_channels(self, attrs: dict, channels: int) -> None:
        pass

    def window(self, attrs):
        return Window(attrs["kernel"], attrs["stride"], attrs["dilation"])


@layer
class Conv(_Sliding):
    name = "conv"
    keras_name = "Conv2D"
    width_arg = "filters"
    summary = "2D convolution: `conv F K` (F filters, K or HxW kernel)"
    args = (
        Arg("filters", positive, positional=True, doc="number of output channels"),
        Arg("kernel", pair, positional=True, doc="kernel size: K or HxW"),
        *_SLIDING,
        Arg("groups", positive, 1, doc="split channels into groups (ResNeXt); must divide both channel counts"),
        Arg("bias", boolean, True, doc="add a bias per filter"),
    )

    def _check_channels(self, attrs, channels):
        groups = attrs["groups"]
        if channels % groups:
            raise ShapeError(f"input channels (={channels}) must be divisible by `groups` (={groups})")
        if attrs["filters"] % groups:
            raise ShapeError(f"`filters` (={attrs['filters']}) must be divisible by `groups` (={groups})")

    def _out_channels(self, attrs, channels):
        return attrs["filters"]

    def param_count(self, attrs, inputs, output):
        kh, kw = attrs["kernel"]
        weights = kh * kw * (inputs[0][2] // attrs["groups"]) * attrs["filters"]
        return weights + (attrs["filters"] if attrs["bias"] else 0), 0

    def macs(self, attrs, inputs, output):
        kh, kw = attrs["kernel"]
        return output[0] * output[1] * output[2] * kh * kw * (inputs[0][2] // attrs["groups"])

    def build(self, attrs, inputs, output, rngs, dtype=None):
        return _conv(
            inputs[0][2],
            attrs["filters"],
            attrs["kernel"],
            strides=attrs["stride"],
            padding=_flax_padding(attrs["padding"]),
            kernel_dilation=attrs["dilation"],
            feature_group_count=attrs["groups"],
            use_bias=attrs["bias"],
            dtype=dtype,
            rngs=rngs,
        )

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])


@layer
class DepthwiseConv(_Sliding):
    name = "dwconv"
    keras_name = "DepthwiseConv2D"
    depthwise = True
    summary = "depthwise convolution: `dwconv K`, one filter per input channel (x `multiplier`)"
    args = (
        Arg("kernel", pair, positional=True, doc="kernel size: K or HxW"),
        *_SLIDING,
        Arg("multiplier", positive, 1, doc="output channels per input channel (Keras depth_multiplier)"),
        Arg("bias", boolean, True, doc="add a bias per output channel"),
    )

    def _out_channels(self, attrs, channels):
        return channels * attrs["multiplier"]

    def param_count(self, attrs, inputs, output):
        kh, kw = attrs["kernel"]
        out = output[2]
        return kh * kw * out + (out if attrs["bias"] else 0), 0

    def macs(self, attrs, inputs, output):
        kh, kw = attrs["kernel"]
        return output[0] * output[1] * output[2] * kh * kw

    def build(self, attrs, inputs, output, rngs, dtype=None):
        channels = inputs[0][2]
        return _conv(
            channels,
            output[2],
            attrs["kernel"],
            strides=attrs["stride"],
            padding=_flax_padding(attrs["padding"]),
            kernel_dilation=attrs["dilation"],
            feature_group_count=channels,
            use_bias=attrs["bias"],
            dtype=dtype,
            rngs=rngs,
        )

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])


@layer
class SeparableConv(_Sliding):
    name = "sepconv"
    keras_name = "SeparableConv2D"
    width_arg = "filters"
    summary = "depthwise-separable convolution: `sepconv F K` (Keras SeparableConv2D)"
    args = (
        Arg("filters", positive, positional=True, doc="number of output channels"),
        Arg("kernel", pair, positional=True, doc="kernel size of the depthwise step: K or HxW"),
        *_SLIDING,
        Arg("multiplier", positive, 1, doc="depthwise output channels per input channel"),
        Arg("bias", boolean, True, doc="add a bias per filter (after the pointwise step)"),
    )

    def _out_channels(self, attrs, channels):
        return attrs["filters"]

    def param_count(self, attrs, inputs, output):
        kh, kw = attrs["kernel"]
        middle = inputs[0][2] * attrs["multiplier"]
        weights = kh * kw * middle + middle * attrs["filters"]
        return weights + (attrs["filters"] if attrs["bias"] else 0), 0

    def macs(self, attrs, inputs, output):
        kh, kw = attrs["kernel"]
        middle = inputs[0][2] * attrs["multiplier"]
        return output[0] * output[1] * middle * (kh * kw + attrs["filters"])

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        channels = inputs[0][2]
        middle = channels * attrs["multiplier"]

        class Separable(nnx.Module):
            def __init__(self):
                self.depthwise = _conv(
                    channels,
                    middle,
                    attrs["kernel"],
                    strides=attrs["stride"],
                    padding=_flax_padding(attrs["padding"]),
                    kernel_dilation=attrs["dilation"],
                    feature_group_count=channels,
                    use_bias=False,
                    dtype=dtype,
                    rngs=rngs,
                )
                self.pointwise = _conv(middle, attrs["filters"], (1, 1), use_bias=attrs["bias"], dtype=dtype, rngs=rngs)

            def __call__(self, x):
                return self.pointwise(self.depthwise(x))

        return Separable()

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])
