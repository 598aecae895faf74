"""Growing and cutting the image, as U-Net decoders do: `convtranspose F K` (Keras Conv2DTranspose),
`upsample N` (Keras UpSampling2D, nearest or bilinear) and `crop N` (Keras Cropping2D).

Receptive fields: these layers move finer than one input pixel, which the integer jump of
archspec.infer cannot hold, so upsampling keeps the jump and later windows count as if no
upsampling happened (an upper bound of the true field).
"""

from __future__ import annotations

import math
from typing import ClassVar

from archspec.layers import keras_config, onnx_attrs
from archspec.layers.base import (
    Arg,
    ArgError,
    Code,
    LayerKind,
    Module,
    Op,
    ShapeError,
    Stored,
    Untranslatable,
    Window,
    boolean,
    call,
    hwio,
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
    vector,
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
    onnx_ops = ("ConvTranspose",)
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

    def read_onnx(self, node, inputs):
        """`convtranspose` with `valid` padding gives the full (H-1)*S + K output; ONNX's pads (PyTorch's
        `padding` and `output_padding`) cut it, which is a `crop` after it: exact."""
        onnx_attrs.channels_first(node)
        weight = onnx_attrs.weight_dims(node, 1, "weights")
        if len(weight) != 4:
            raise Untranslatable(None, f"`ConvTranspose` over {len(weight) - 2} spatial dimensions; the spec's is 2-D")
        if node.attributes.get("group", 1) != 1:
            raise Untranslatable("group", "`ConvTranspose` with groups; the spec's `convtranspose` has none")
        if onnx_attrs.pair(node, "dilations", 1) != (1, 1):
            raise Untranslatable("dilations", "`ConvTranspose` with dilation; the spec's `convtranspose` has none")
        _, filters, kh, kw = weight
        stride, (height, width) = onnx_attrs.pair(node, "strides", 1), onnx_attrs.spatial_size(inputs)
        if kh < stride[0] or kw < stride[1]:
            raise Untranslatable(
                "kernel_shape", "`ConvTranspose` with a kernel smaller than its stride leaves gaps the spec's fills"
            )
        full = ((height - 1) * stride[0] + kh, (width - 1) * stride[1] + kw)
        out = node.out_dims[0][2:] if node.out_dims and len(node.out_dims[0]) == 4 else None
        auto = node.attributes.get("auto_pad", "NOTSET")
        extra = tuple(node.attributes.get("output_padding", (0, 0)))
        if auto == "NOTSET" and "output_shape" not in node.attributes:
            pads = tuple(node.attributes.get("pads", (0, 0, 0, 0)))
            begin, end = (pads[0], pads[1]), (pads[2] - extra[0], pads[3] - extra[1])
        else:  # the output size is given: ONNX cuts the rest, the odd pixel first under SAME_UPPER
            if out is None:
                raise Untranslatable("output_shape", "`ConvTranspose` whose output size is unknown")
            totals = (full[0] - out[0], full[1] - out[1])
            begin = tuple(t - t // 2 if auto != "SAME_LOWER" else t // 2 for t in totals)
            end = (totals[0] - begin[0], totals[1] - begin[1])
        if min(*begin, *end) < 0:
            raise Untranslatable(
                "output_padding",
                "`ConvTranspose` with output_padding beyond its pads adds rows only the bias reaches",
            )
        bias = onnx_attrs.learned(node, 2) | onnx_attrs.added_bias(node)
        nodes = [
            (
                "convtranspose",
                {"filters": filters, "kernel": (kh, kw), "stride": stride, "padding": "valid", "bias": bias},
            )
        ]
        if any(begin) or any(end):
            nodes.append(("crop", {"cropping": (begin[0], end[0], begin[1], end[1])}))
        return nodes

    variables = ("kernel", "bias")
    # Keras' kernel (kh, kw, filters, in) is Flax's with transpose_kernel; PyTorch's and ONNX's (in,
    # filters, kh, kw) are that transposed, as a convolution's OIHW kernel is
    keras_weights: ClassVar[dict] = {"Conv2DTranspose": (Stored("kernel"), Stored("bias", needs="use_bias"))}
    pytorch_weights = ({"weight": Stored("kernel", hwio, rank=4), "bias": Stored("bias", needs="bias", rank=1)},)
    onnx_weights: ClassVar[dict] = {
        "ConvTranspose": {
            1: Stored("kernel", hwio),
            2: Stored("bias", needs="bias"),
            "added": Stored("bias", vector, needs="bias"),
        }
    }


def _read_repeat(node) -> list:
    """Reshape adding a 1 after an axis, Expand of it to F, Reshape merging the two: each value repeated
    F times along that axis (`jnp.repeat`). Along height or width, a nearest `upsample`."""
    if onnx_attrs.fused_ops(node) != ("Expand", "Reshape"):
        raise onnx_attrs.OtherKind("a `Reshape` that is not a repeat")
    source, opened = node.dims[0], node.out_dims[0]
    wide, out = node.fused[0].out_dims[0], node.fused[1].out_dims[0]
    for axis in range(len(source)):
        if opened != (*source[: axis + 1], 1, *source[axis + 1 :]) or len(wide) != len(opened):
            continue
        factor = wide[axis + 1]
        grown = (*source[:axis], source[axis] * factor, *source[axis + 1 :])
        if wide == (*source[: axis + 1], factor, *source[axis + 1 :]) and out == grown and node.layout[axis] in (1, 2):
            size = [1, 1]
            size[node.layout[axis] - 1] = factor
            return [("upsample", {"size": tuple(size), "method": "nearest"})]
    raise onnx_attrs.OtherKind("a `Reshape` that is not a repeat along height or width")


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
    onnx_ops = ("Resize", "Upsample", "Reshape")  # Reshape, Expand, Reshape: a repeat
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
        # antialias only filters when shrinking; off, the resize is also what jax2onnx can export
        return jax.image.resize(x, (n, h * sh, w * sw, c), method="bilinear", antialias=False)

    def read_onnx(self, node, inputs):
        """Growing height and width by whole factors: nearest (as PyTorch's `nearest` and a repeat
        along an axis, which jax2onnx writes as Reshape, Expand, Reshape) or bilinear with half-pixel
        centres (PyTorch's align_corners=False, jax.image.resize)."""
        if node.op_type == "Reshape":
            return _read_repeat(node)
        onnx_attrs.alone(node)
        source, out = node.dims[0], node.out_dims[0]
        if len(node.layout) != 4:
            raise Untranslatable(None, f"`{node.op_type}` of a tensor that is not an image")
        factors = {node.layout[axis]: (after, before) for axis, (before, after) in enumerate(zip(source, out))}
        if any(after != before for axis, (after, before) in factors.items() if axis not in (1, 2)):
            raise Untranslatable("scales", f"`{node.op_type}` of the batch or channel axis has no spec layer")
        if any(after % before or after < before for axis, (after, before) in factors.items() if axis in (1, 2)):
            raise Untranslatable(
                "scales", f"`{node.op_type}` by a factor that is not whole; `upsample` grows by whole factors"
            )
        size = (factors[1][0] // factors[1][1], factors[2][0] // factors[2][1])
        mode = node.attributes.get("mode", "nearest")
        default = "half_pixel" if node.op_type == "Resize" else "asymmetric"
        coordinates = node.attributes.get("coordinate_transformation_mode", default)
        rounding = node.attributes.get("nearest_mode", "round_prefer_floor")
        half_pixel = coordinates in ("half_pixel", "pytorch_half_pixel")
        if mode == "nearest":
            # output pixel i copies input pixel floor(i / factor) under these rules, as `upsample` does
            if not (
                (coordinates == "asymmetric" and rounding == "floor") or (half_pixel and rounding.startswith("round"))
            ):
                raise Untranslatable(
                    "nearest_mode",
                    f"`{node.op_type}` nearest with {coordinates} coordinates and {rounding} rounding picks other "
                    "pixels than the spec's `upsample`",
                )
            return [("upsample", {"size": size, "method": "nearest"})]
        if mode in ("linear", "bilinear") and half_pixel:
            return [("upsample", {"size": size, "method": "bilinear"})]
        raise Untranslatable(
            "mode",
            f"`{node.op_type}` in {mode} mode with {coordinates} coordinates; the spec's `upsample` is nearest or "
            "bilinear with half-pixel centres (align_corners=False)",
        )

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
    onnx_ops = ("Slice", "Pad")  # of height and width; a Pad that cuts
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

    def read_onnx(self, node, inputs):
        onnx_attrs.alone(node)
        if node.op_type == "Pad":
            _, sides = onnx_attrs.pad_amounts(node)
            if max(sides) > 0 or not min(sides) < 0:
                raise onnx_attrs.OtherKind("a `Pad` that does not only cut")
            return [("crop", {"cropping": tuple(-s for s in sides)})]
        kept = onnx_attrs.slice_ranges(node)
        crop = onnx_attrs.crop_of(kept)
        if crop is None or onnx_attrs.channel_axis(node) in kept:
            raise onnx_attrs.OtherKind("a `Slice` of the channels")
        return [("crop", {"cropping": crop})]
