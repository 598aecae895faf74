"""Pooling: `maxpool K`, `avgpool K` (stride defaults to the window, Keras style) and the global
poolings `gap` / `gmp`, which give one value per channel."""

from __future__ import annotations

import math

from archspec.layers import keras_config, onnx_attrs
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


def _pool_output(size, kernel, stride, pads, ceil: bool) -> list[int]:
    """A pooling's output sizes, ONNX's and PyTorch's rule with ceil_mode: a last window that would
    start in the end padding is dropped."""
    floor = [(s + sum(p) - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, pads)]
    if not ceil:
        return floor
    out = []
    for s, k, st, p, f in zip(size, kernel, stride, pads, floor):
        c = math.ceil((s + sum(p) - k) / st) + 1
        out.append(max(c - 1 if (c - 1) * st >= s + p[0] else c, f))
    return out


def _read_pool(kind: str, node, inputs, before: tuple[int, int, int, int] = (0, 0, 0, 0)) -> list:
    """`maxpool` / `avgpool` of an ONNX MaxPool / AveragePool, `before` the -inf padding written ahead
    of it. ceil_mode adds windows past the end: for a max that is -inf padding at the end, which the
    spec's `same` gives when the pads are TensorFlow's; an average's overhanging window divides by the
    pixels it covers, as the spec's `same` does, when there are no explicit pads. An average counting
    pad zeros in (count_include_pad=1, PyTorch's default) is `zeropad` then `avgpool`; leaving them
    out (ONNX's default), the spec's padded `avgpool`."""
    onnx_attrs.channels_first(node)
    is_max = node.op_type == "MaxPool"
    if len(node.out_dims) > 1:
        raise Untranslatable(None, "`MaxPool` with an indices output (for unpooling) has no spec layer")
    kernel = onnx_attrs.pair(node, "kernel_shape", 1)
    stride, dilation = onnx_attrs.pair(node, "strides", 1), onnx_attrs.pair(node, "dilations", 1)
    if dilation != (1, 1):
        raise Untranslatable("dilations", f"`{node.op_type}` with dilations {dilation}; the spec's pools have none")
    height, width = onnx_attrs.spatial_size(inputs)
    top, bottom, left, right = before
    padded = (height + top + bottom, width + left + right)
    own = onnx_attrs.node_pads(node, padded, kernel, stride, dilation)
    pads = ((own[0][0] + top, own[0][1] + bottom), (own[1][0] + left, own[1][1] + right))
    size = (height, width)
    wanted = _pool_output(size, kernel, stride, pads, bool(node.attributes.get("ceil_mode", 0)))
    nodes: list = []
    if wanted != _pool_output(size, kernel, stride, pads, False):
        extra = [(o - 1) * st + k - (s + sum(p)) for o, st, k, s, p in zip(wanted, stride, kernel, size, pads)]
        grown = tuple((p[0], p[1] + e) for p, e in zip(pads, extra))
        same = tuple(onnx_attrs.same_pads(*dims) for dims in zip(size, kernel, stride))
        if grown != same or (not is_max and pads != ((0, 0), (0, 0))):
            raise Untranslatable(
                "ceil_mode",
                f"`{node.op_type}` with ceil_mode: its windows past the end need padding {onnx_attrs.sides(grown)} "
                f"(top, bottom, left, right) that the spec's `{kind}` cannot say",
                hint="TensorFlow-style `same` padding is the one uneven padding the spec's pools have",
            )
        how = "same"
    elif not is_max and node.attributes.get("count_include_pad", 0) and pads != ((0, 0), (0, 0)):
        nodes.append(("zeropad", {"padding": onnx_attrs.sides(pads)}))
        how = "valid"
    else:  # a max ignores its pads (-inf), and the spec's padded `avgpool` averages real pixels only
        how = onnx_attrs.padding(pads, size, kernel, stride)
        if how is None:
            raise Untranslatable(
                "pads",
                f"`{node.op_type}` with uneven padding {onnx_attrs.sides(pads)} (top, bottom, left, right) "
                f"the spec's `{kind}` cannot say",
                hint="TensorFlow-style `same` padding is the one uneven padding the spec's pools have",
            )
    return [*nodes, (kind, {"size": kernel, "stride": None if stride == kernel else stride, "padding": how})]


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

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("pool_size", "strides", "padding", "data_format"))
        keras_config.channels_last(config)
        size = keras_config.size(config, "pool_size", 2)
        strides = keras_config.size(config, "strides")
        values = {"size": size, "stride": None if strides == size else strides, "padding": keras_config.padding(config)}
        return [(self.name, keras_config.bind(self, values, {"size": "pool_size", "stride": "strides"}))]

    def _flax_padding(self, attrs):
        pad = attrs["padding"]
        return pad.upper() if isinstance(pad, str) else pad

    # --- code: Keras pools pad only valid/same; PyTorch pads symmetrically up to half the window -----

    torch_function: str
    flax_function: str

    def _keras_pool(self, attrs, pad) -> Module:
        stride = attrs["stride"]
        strides = None if stride is None else Code(square(stride))
        return Module(
            call(
                f"layers.{self.keras_classes[0]}",
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
    onnx_ops = ("MaxPool", "Pad")  # a Pad of -inf before it: jax2onnx writes the padding so
    keras_name = "MaxPool2D"
    keras_classes = ("MaxPooling2D", "MaxPool2D")
    keras_positional = ("pool_size", "strides", "padding", "data_format")
    summary = "max pooling: `maxpool K` (stride defaults to K)"

    def apply(self, module, attrs, xs, *, train):
        import jax.numpy as jnp

        from archspec.gradients import max_pool

        x, padding = xs[0], self._flax_padding(attrs)
        if not isinstance(padding, str):
            # Numeric padding pads with -inf first (as max_pool would inside): jax2onnx 0.17 writes a
            # max_pool's numeric padding as none at all, and a Pad it exports right.
            x = jnp.pad(x, ((0, 0), *padding, (0, 0)), constant_values=-jnp.inf)
            padding = "VALID"
        return max_pool(x, attrs["size"], self._stride(attrs), padding)

    def read_onnx(self, node, inputs):
        if node.op_type == "MaxPool":
            onnx_attrs.alone(node)
            return _read_pool(self.name, node, inputs)
        fill, before = onnx_attrs.pad_amounts(node)
        if onnx_attrs.fused_ops(node) != ("MaxPool",) or fill != -math.inf or min(before) < 0:
            raise onnx_attrs.OtherKind("a `Pad` not of -inf before a `MaxPool`")
        return _read_pool(self.name, node.fused[0], inputs, before)

    flax_function = "nnx.max_pool"

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
    onnx_ops = ("AveragePool",)
    keras_name = "AvgPool2D"
    keras_classes = ("AveragePooling2D", "AvgPool2D")
    keras_positional = ("pool_size", "strides", "padding", "data_format")
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

    flax_function = "nnx.avg_pool"

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

    def read_onnx(self, node, inputs):
        onnx_attrs.alone(node)
        return _read_pool(self.name, node, inputs)


def _read_global(node, inputs) -> bool:
    """Whether a global pooling (Global*Pool or Reduce* over height and width, perhaps with a Flatten
    after it) keeps a 1x1 map: its `keepdims`."""
    if node.op_type.startswith("Global"):
        onnx_attrs.channels_first(node)
    else:
        axes = node.attributes.get("axes")
        if axes is None and onnx_attrs.has_input(node, 1):
            value = onnx_attrs.constant(node, 1)
            if value is None:
                raise Untranslatable("axes", f"`{node.op_type}` over axes computed at run time")
            axes = value.reshape(-1).tolist()
        if not axes or len(node.layout) != 4 or {onnx_attrs.spec_axis(node, a) for a in axes} != {1, 2}:
            raise Untranslatable(
                "axes", f"`{node.op_type}` over axes {axes}; the spec's global pooling is over H and W"
            )
    last = node.fused[-1] if node.fused else node
    if (
        node.op_type != "ReduceSum"
        and node.fused
        and (
            len(node.fused) != 1 or last.op_type not in ("Flatten", "Reshape", "Squeeze") or len(last.out_dims[0]) != 2
        )
    ):
        raise onnx_attrs.OtherKind(f"`{node.op_type}` followed by {onnx_attrs.fused_ops(node)}")
    return len(last.out_dims[0]) == 4


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

    reduce: str  # the array method: mean or max (PyTorch: amax)

    def keras_code(self, attrs, inputs, output):
        return [Module(call(f"layers.{self.keras_classes[0]}", keepdims=keyword(attrs["keepdims"], False)))]

    def pytorch_code(self, attrs, inputs, output):
        method = "amax" if self.reduce == "max" else "mean"
        return [Op(call(f"{{0}}.{method}", dim=(2, 3), keepdim=keyword(attrs["keepdims"], False)))]

    def flax_code(self, attrs, inputs, output):
        return [Op(call(f"{{0}}.{self.reduce}", axis=(1, 2), keepdims=keyword(attrs["keepdims"], False)))]

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("data_format", "keepdims"))
        keras_config.channels_last(config)
        return [(self.name, keras_config.bind(self, {"keepdims": config.get("keepdims")}))]


@layer
class GlobalAveragePool(_GlobalPool):
    name = "gap"
    onnx_ops = ("GlobalAveragePool", "ReduceMean", "ReduceSum")
    keras_name = "GlobalAvgPool"
    reduce = "mean"
    keras_classes = ("GlobalAveragePooling2D", "GlobalAvgPool2D")
    keras_positional = ("data_format", "keepdims")
    linear = True
    summary = "global average pooling: the mean of each channel"

    def apply(self, module, attrs, xs, *, train):
        return xs[0].mean(axis=(1, 2), keepdims=attrs["keepdims"])

    def read_onnx(self, node, inputs):
        """GlobalAveragePool, a mean over height and width (PyTorch's AdaptiveAvgPool2d(1), `mean((2,
        3))`), or a sum over them divided by their product (jax2onnx's mean); a Flatten after it
        (read only there) makes the vector `gap` gives."""
        if node.op_type == "ReduceSum":
            scaled = [f for f in node.fused if f.op_type in ("Div", "Mul")]
            ops = onnx_attrs.fused_ops(node)
            if len(scaled) != 1 or ops[-1] != scaled[0].op_type or set(ops[:-1]) - {"Reshape", "Expand"}:
                raise onnx_attrs.OtherKind("a sum over height and width not divided by their count")
            factor = onnx_attrs.scalar(scaled[0], 1)
            height, width = onnx_attrs.spatial_size(inputs)
            factor = 1 / factor if scaled[0].op_type == "Div" and factor else factor
            if factor is None or not onnx_attrs.close(factor * height * width, 1.0):
                raise onnx_attrs.OtherKind("a sum over height and width not divided by their count")
        return [("gap", {"keepdims": _read_global(node, inputs)})]


@layer
class GlobalMaxPool(_GlobalPool):
    name = "gmp"
    onnx_ops = ("GlobalMaxPool", "ReduceMax")
    keras_name = "GlobalMaxPool"
    reduce = "max"
    keras_classes = ("GlobalMaxPooling2D", "GlobalMaxPool2D")
    keras_positional = ("data_format", "keepdims")
    summary = "global max pooling: the maximum of each channel"

    def apply(self, module, attrs, xs, *, train):
        return xs[0].max(axis=(1, 2), keepdims=attrs["keepdims"])

    def read_onnx(self, node, inputs):
        return [("gmp", {"keepdims": _read_global(node, inputs)})]
