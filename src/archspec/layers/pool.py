"""Pooling: `maxpool K`, `avgpool K` (stride defaults to the window, Keras style) and the global
poolings `gap` / `gmp`, which give one value per channel."""

from __future__ import annotations

from archspec.layers.base import (
    GLOBAL,
    Arg,
    Code,
    LayerKind,
    Module,
    Op,
    Untranslatable,
    Window,
    boolean,
    call,
    conv_output_size,
    differs,
    is_a,
    keyword,
    layer,
    padding,
    pair,
    python,
    spatial,
    square,
    upper,
    window_fits,
)
from archspec.layers.writing import TORCH_AVG_POOL, torch_padding
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

    # --- code: Keras pools pad only valid/same; PyTorch pads symmetrically up to half the window -----

    keras_class: str
    torch_function: str
    flax_function: str

    def _keras_pool(self, attrs, pad) -> Module:
        stride = attrs["stride"]
        strides = None if stride is None else Code(square(stride))
        return Module(
            call(
                f"layers.{self.keras_class}",
                Code(square(attrs["size"])),
                strides=strides,
                padding=keyword(pad, "valid"),
            )
        )

    def _flax_pool(self, attrs, extra: dict) -> list[Op]:
        pad = attrs["padding"]
        pool = call(
            self.flax_function,
            Code("{0}"),
            window_shape=attrs["size"],
            strides=self._stride(attrs),
            padding=keyword(upper(pad) if is_a(pad, str) else pad, "VALID"),
            **extra,
        )
        return [Op(pool)]


@layer
class MaxPool(_Pool):
    name = "maxpool"
    keras_name = "MaxPool2D"
    summary = "max pooling: `maxpool K` (stride defaults to K)"

    def apply(self, module, attrs, xs, *, train):
        from flax import nnx

        # Keywords: jax2onnx's ONNX export replaces these functions with keyword-only versions.
        return nnx.max_pool(
            xs[0], window_shape=attrs["size"], strides=self._stride(attrs), padding=self._flax_padding(attrs)
        )

    keras_class, flax_function = "MaxPooling2D", "nnx.max_pool"

    def keras_code(self, attrs, inputs, output):
        pad = attrs["padding"]
        if is_a(pad, str):
            return [self._keras_pool(attrs, pad)]
        (top, bottom), (left, right) = pad
        sides = python(((0, 0), (top, bottom), (left, right), (0, 0)))
        return [Op(f"keras.ops.pad({{0}}, {sides}, constant_values=-math.inf)"), self._keras_pool(attrs, "valid")]

    def pytorch_code(self, attrs, inputs, output):
        size, stride = attrs["size"], self._stride(attrs)
        before, pad = torch_padding(attrs, size, stride, (1, 1), inputs[0], fill="-math.inf")
        pool = call("F.max_pool2d", Code("{0}"), Code(square(size)), Code(square(stride)), padding=pad)
        return [*before, Op(pool)]

    def flax_code(self, attrs, inputs, output):
        return self._flax_pool(attrs, {})


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

    keras_class, flax_function = "AveragePooling2D", "nnx.avg_pool"

    def keras_code(self, attrs, inputs, output):
        pad = attrs["padding"]
        if is_a(pad, str):
            return [self._keras_pool(attrs, pad)]
        if differs(pad, ((0, 0), (0, 0))):
            raise Untranslatable(
                "padding",
                "Keras' AveragePooling2D pads only `valid` or `same`; a padding layer before it would count "
                "the padding in the average",
                hint="`padding=same` averages the real pixels only, in Keras too",
            )
        return [self._keras_pool(attrs, "valid")]

    def pytorch_code(self, attrs, inputs, output):
        size, stride = attrs["size"], self._stride(attrs)
        before, pad = torch_padding(attrs, size, stride, (1, 1), inputs[0], fill="0.0")
        if before:  # padding PyTorch cannot leave out of the average itself
            (top, bottom), (left, right) = self._sides(attrs, inputs[0])
            pads = python((left, right, top, bottom))
            helper = f"avg_pool_padded({{0}}, {square(size)}, {square(stride)}, {pads})"
            return [Op(helper, helpers=(TORCH_AVG_POOL,))]
        keywords = {"padding": pad, "count_include_pad": False} if pad is not None else {}
        return [Op(call("F.avg_pool2d", Code("{0}"), Code(square(size)), Code(square(stride)), **keywords))]

    def _sides(self, attrs, shape):
        from archspec.layers.writing import same_pads

        pad = attrs["padding"]
        if pad != "same":
            return pad
        size, stride = attrs["size"], self._stride(attrs)
        return tuple(same_pads(n, k, s, 1) for n, k, s in zip(shape[:2], size, stride))

    def flax_code(self, attrs, inputs, output):
        return self._flax_pool(attrs, {"count_include_pad": False})


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

    keras_class: str
    reduce: str  # the array method: mean or max (PyTorch: amax)

    def keras_code(self, attrs, inputs, output):
        return [Module(call(f"layers.{self.keras_class}", keepdims=keyword(attrs["keepdims"], False)))]

    def pytorch_code(self, attrs, inputs, output):
        method = "amax" if self.reduce == "max" else "mean"
        return [Op(call(f"{{0}}.{method}", dim=(2, 3), keepdim=keyword(attrs["keepdims"], False)))]

    def flax_code(self, attrs, inputs, output):
        return [Op(call(f"{{0}}.{self.reduce}", axis=(1, 2), keepdims=keyword(attrs["keepdims"], False)))]


@layer
class GlobalAveragePool(_GlobalPool):
    name = "gap"
    keras_name = "GlobalAvgPool"
    keras_class, reduce = "GlobalAveragePooling2D", "mean"
    linear = True
    summary = "global average pooling: the mean of each channel"

    def apply(self, module, attrs, xs, *, train):
        return xs[0].mean(axis=(1, 2), keepdims=attrs["keepdims"])


@layer
class GlobalMaxPool(_GlobalPool):
    name = "gmp"
    keras_name = "GlobalMaxPool"
    keras_class, reduce = "GlobalMaxPooling2D", "max"
    summary = "global max pooling: the maximum of each channel"

    def apply(self, module, attrs, xs, *, train):
        return xs[0].max(axis=(1, 2), keepdims=attrs["keepdims"])
