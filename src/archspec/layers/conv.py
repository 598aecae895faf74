"""Convolutions: `conv F K`, `dwconv K` (depthwise) and `sepconv F K` (depthwise then pointwise).

Keras conventions: padding `valid` by default, biases on by default, channels last.
"""

from __future__ import annotations

from typing import ClassVar

from archspec.layers import keras_config, onnx_attrs
from archspec.layers.base import (
    Arg,
    Code,
    LayerKind,
    Module,
    ShapeError,
    Stored,
    Untranslatable,
    Window,
    boolean,
    call,
    conv_output_size,
    differs,
    hwio,
    is_a,
    keras_depthwise,
    keyword,
    layer,
    padding,
    pair,
    positive,
    size_keyword,
    spatial,
    square,
    upper,
    vector,
    window_fits,
)
from archspec.layers.writing import RNGS, torch_padding
from archspec.text import show, show_pair

_SLIDING = (
    Arg("stride", pair, (1, 1), doc="step of the window: N or HxW"),
    Arg("padding", padding, "valid", doc="valid, same, N or HxW"),
    Arg("dilation", pair, (1, 1), doc="spacing of the kernel taps"),
)

# How PyTorch and ONNX store a convolution (plain or depthwise): OIHW kernels, a bias per filter
# (ONNX: the conv's input or an Add after it).
_TORCH_CONV = ({"weight": Stored("kernel", hwio, rank=4), "bias": Stored("bias", needs="bias", rank=1)},)
_ONNX_CONV = {
    "Conv": {1: Stored("kernel", hwio), 2: Stored("bias", needs="bias"), "added": Stored("bias", vector, needs="bias")}
}


def _read_conv(node, inputs) -> tuple[list, dict, tuple[int, ...]]:
    """What the three convolutions read from an ONNX `Conv`: the `zeropad` its uneven pads need
    first, the sliding-window arguments, and the weight's dims (filters, channels per group, kH, kW)."""
    onnx_attrs.channels_first(node)
    weight = onnx_attrs.weight_dims(node, 1, "weights")
    if len(weight) != 4:
        raise Untranslatable(None, f"`Conv` over {len(weight) - 2} spatial dimensions; the spec's are 2-D")
    kernel, size = (weight[2], weight[3]), onnx_attrs.spatial_size(inputs)
    stride, dilation = onnx_attrs.pair(node, "strides", 1), onnx_attrs.pair(node, "dilations", 1)
    pads = onnx_attrs.node_pads(node, size, kernel, stride, dilation)
    padded = onnx_attrs.padding(pads, size, kernel, stride, dilation)
    before = []
    if padded is None:  # uneven: zeros first, as the convolution itself pads
        before, padded = [("zeropad", {"padding": onnx_attrs.sides(pads)})], "valid"
    # `|`, not `or`: added_bias also declines any other pattern fused after the conv
    bias = onnx_attrs.learned(node, 2) | onnx_attrs.added_bias(node)
    attrs = {"kernel": kernel, "stride": stride, "padding": padded, "dilation": dilation, "bias": bias}
    return before, attrs, weight


def _flax_padding(pad):
    return pad.upper() if isinstance(pad, str) else pad


def _keras_sliding(attrs: dict) -> tuple[list, dict]:
    """(a ZeroPadding2D to run first, the keywords Keras' convolutions share): Keras pads only
    `valid` or `same`, so numeric padding is a padding layer before a `valid` convolution."""
    pad, before = attrs["padding"], []
    if not is_a(pad, str):
        if differs(pad, ((0, 0), (0, 0))):
            before = [Module(call("layers.ZeroPadding2D", pad), name="pad")]
        pad = "valid"
    if differs(attrs["stride"], (1, 1)) and differs(attrs["dilation"], (1, 1)):
        raise Untranslatable("dilation", "Keras convolutions cannot combine a stride with a dilation")
    shared = {
        "strides": size_keyword(attrs["stride"], (1, 1)),
        "padding": keyword(pad, "valid"),
        "dilation_rate": size_keyword(attrs["dilation"], (1, 1)),
    }
    return before, shared


def _size(value):
    """A size pair for `call()`: an int when square."""
    return Code(square(value))


def _flax_conv(attrs, channels_in, channels_out, groups, bias) -> str:
    pad = attrs["padding"]
    return call(
        "nnx.Conv",
        channels_in,
        channels_out,
        kernel_size=attrs["kernel"],
        strides=keyword(attrs["stride"], (1, 1)),
        padding=keyword(upper(pad) if is_a(pad, str) else pad, "SAME"),  # Flax pads `same` unless told
        kernel_dilation=keyword(attrs["dilation"], (1, 1)),
        feature_group_count=keyword(groups, 1),
        use_bias=keyword(bias, True),
        rngs=RNGS,
    )


def _torch_conv(attrs, inputs, channels_out, groups, bias, name="") -> list:
    """Padding steps and the nn.Conv2d of a spec convolution (Keras' `same`: odd pixel bottom-right)."""
    kernel, stride, dilation = attrs["kernel"], attrs["stride"], attrs["dilation"]
    before, pad = torch_padding(attrs, kernel, stride, dilation, inputs[0])
    conv = call(
        "nn.Conv2d",
        inputs[0][2],
        channels_out,
        _size(kernel),
        stride=size_keyword(stride, (1, 1)),
        padding=pad,
        dilation=size_keyword(dilation, (1, 1)),
        groups=keyword(groups, 1),
        bias=keyword(bias, True),
    )
    return [*before, Module(conv, name=name)]


def _conv(*args, **kwargs):
    """`nnx.Conv` computing with `archspec.gradients`' convolution (its gradients are written for XLA:CPU)."""
    from flax import nnx

    from archspec.gradients import conv_general_dilated

    return nnx.Conv(*args, conv_general_dilated=conv_general_dilated, **kwargs)


class _Sliding(LayerKind):
    """The shared shape and receptive-field rules of the three convolutions."""

    family = "conv"
    takes_suffix = True
    has_kernel = True
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

    # Keras config key of each spec argument the three convolutions share.
    _KERAS_KEYS: ClassVar[dict[str, str]] = {
        "filters": "filters",
        "kernel": "kernel_size",
        "stride": "strides",
        "padding": "padding",
        "dilation": "dilation_rate",
        "groups": "groups",
        "multiplier": "depth_multiplier",
        "bias": "use_bias",
    }

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, (*(self._KERAS_KEYS[a.name] for a in self.args), "data_format", "activation"))
        keras_config.channels_last(config)
        values = {name: config.get(key) for name, key in self._KERAS_KEYS.items()}
        values["padding"] = keras_config.padding(config)
        attrs = keras_config.bind(self, values, self._KERAS_KEYS)
        return [(self.name, attrs), *keras_config.activation(config)]


@layer
class Conv(_Sliding):
    name = "conv"
    onnx_ops = ("Conv",)
    full_kernel = True
    keras_name = "Conv2D"
    keras_classes = ("Conv2D", "Convolution2D")
    keras_positional = (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "groups",
        "activation",
        "use_bias",
    )
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

    def keras_code(self, attrs, inputs, output):
        before, shared = _keras_sliding(attrs)
        groups, bias = keyword(attrs["groups"], 1), keyword(attrs["bias"], True)
        conv = call("layers.Conv2D", attrs["filters"], _size(attrs["kernel"]), **shared, groups=groups, use_bias=bias)
        return [*before, Module(conv)]

    def pytorch_code(self, attrs, inputs, output):
        return _torch_conv(attrs, inputs, attrs["filters"], attrs["groups"], attrs["bias"])

    def flax_code(self, attrs, inputs, output):
        return [Module(_flax_conv(attrs, inputs[0][2], attrs["filters"], attrs["groups"], attrs["bias"]))]

    def read_onnx(self, node, inputs):
        before, attrs, (filters, _, _, _) = _read_conv(node, inputs)
        groups, channels = node.attributes.get("group", 1), inputs[0][-1]
        if groups > 1 and groups == channels and filters % channels == 0:
            raise onnx_attrs.OtherKind("a `Conv` with one group per channel is a depthwise conv")
        return [*before, ("conv", {"filters": filters, **attrs, "groups": groups})]

    variables = ("kernel", "bias")
    keras_weights: ClassVar[dict] = {"Conv2D": (Stored("kernel"), Stored("bias", needs="use_bias"))}
    pytorch_weights = _TORCH_CONV
    onnx_weights: ClassVar[dict] = _ONNX_CONV


@layer
class DepthwiseConv(_Sliding):
    name = "dwconv"
    onnx_ops = ("Conv",)  # with one group per input channel
    keras_name = "DepthwiseConv2D"
    keras_classes = ("DepthwiseConv2D",)
    keras_positional = (
        "kernel_size",
        "strides",
        "padding",
        "depth_multiplier",
        "data_format",
        "dilation_rate",
        "activation",
        "use_bias",
    )
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

    def keras_code(self, attrs, inputs, output):
        before, shared = _keras_sliding(attrs)
        conv = call(
            "layers.DepthwiseConv2D",
            _size(attrs["kernel"]),
            **shared,
            depth_multiplier=keyword(attrs["multiplier"], 1),
            use_bias=keyword(attrs["bias"], True),
        )
        return [*before, Module(conv)]

    def pytorch_code(self, attrs, inputs, output):
        return _torch_conv(attrs, inputs, output[2], inputs[0][2], attrs["bias"])

    def flax_code(self, attrs, inputs, output):
        return [Module(_flax_conv(attrs, inputs[0][2], output[2], inputs[0][2], attrs["bias"]))]

    def read_onnx(self, node, inputs):
        before, attrs, (filters, _, _, _) = _read_conv(node, inputs)
        channels = inputs[0][-1]
        if node.attributes.get("group", 1) != channels or filters % channels or channels == 1:
            raise onnx_attrs.OtherKind("a `Conv` with other than one group per channel is a plain conv")
        return [*before, ("dwconv", {**attrs, "multiplier": filters // channels})]

    variables = ("kernel", "bias")
    keras_weights: ClassVar[dict] = {
        "DepthwiseConv2D": (Stored("kernel", keras_depthwise), Stored("bias", needs="use_bias"))
    }
    pytorch_weights = _TORCH_CONV
    onnx_weights: ClassVar[dict] = _ONNX_CONV


@layer
class SeparableConv(_Sliding):
    name = "sepconv"
    refusals: ClassVar[dict[str, str]] = {
        "onnx": "ONNX has no separable convolution: a file holds one as a depthwise `Conv` and a 1x1 `Conv`, "
        "read as `dwconv` and `conv` (the same weights and MACs)"
    }
    keras_name = "SeparableConv2D"
    keras_classes = ("SeparableConv2D", "SeparableConvolution2D")
    keras_positional = (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "depth_multiplier",
        "activation",
        "use_bias",
    )
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

    def keras_code(self, attrs, inputs, output):
        before, shared = _keras_sliding(attrs)
        conv = call(
            "layers.SeparableConv2D",
            attrs["filters"],
            _size(attrs["kernel"]),
            **shared,
            depth_multiplier=keyword(attrs["multiplier"], 1),
            use_bias=keyword(attrs["bias"], True),
        )
        return [*before, Module(conv)]

    def pytorch_code(self, attrs, inputs, output):
        channels = inputs[0][2]
        middle = channels * attrs["multiplier"]
        pointwise = call("nn.Conv2d", middle, attrs["filters"], 1, bias=keyword(attrs["bias"], True))
        return [
            *_torch_conv(attrs, inputs, middle, channels, False, name="depthwise"),
            Module(pointwise, name="pointwise"),
        ]

    def flax_code(self, attrs, inputs, output):
        channels = inputs[0][2]
        middle = channels * attrs["multiplier"]
        pointwise = call(
            "nnx.Conv", middle, attrs["filters"], kernel_size=(1, 1), use_bias=keyword(attrs["bias"], True), rngs=RNGS
        )
        return [
            Module(_flax_conv(attrs, channels, middle, channels, False), name="depthwise"),
            Module(pointwise, name="pointwise"),
        ]

    variables = ("depthwise.kernel", "pointwise.kernel", "pointwise.bias")
    keras_weights: ClassVar[dict] = {
        "SeparableConv2D": (
            Stored("depthwise.kernel", keras_depthwise),
            Stored("pointwise.kernel"),
            Stored("pointwise.bias", needs="use_bias"),
        )
    }
    # PyTorch has no separable convolution: a depthwise Conv2d and a 1x1 Conv2d (as written PyTorch code has it)
    pytorch_weights = (
        {"weight": Stored("depthwise.kernel", hwio, rank=4)},
        {"weight": Stored("pointwise.kernel", hwio, rank=4), "bias": Stored("pointwise.bias", needs="bias", rank=1)},
    )
