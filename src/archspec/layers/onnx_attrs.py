"""What the layer kinds share to read ONNX nodes (`LayerKind.read_onnx`): attributes, pads, axes,
weight dims, 32-bit floats, and the two ways to decline. Nodes arrive as `base.OnnxNode` from the
ONNX reader (`archspec.interop.onnx_reader`), which handles layouts, constants and patterns; nothing
here imports onnx.

Declining: `Untranslatable` says the node is this kind's but cannot be said in the spec (`Clip` to
[0, 4]); `OtherKind` says the node is another kind's form, and the reader asks the next kind that
claims its op type (a `Conv` with one group per channel is `dwconv`'s, not `conv`'s).
"""

from __future__ import annotations

import math
import struct
from typing import Any

from archspec.layers.base import OnnxNode, Untranslatable

NCHW = (0, 3, 1, 2)  # layouts: ONNX axis i holds axis NCHW[i] of the spec's (batch, H, W, C) tensor
NHWC = (0, 1, 2, 3)


class OtherKind(Untranslatable):
    """The node is the form of another kind: the reader tries the next kind that claims its op."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


def alone(node: OnnxNode) -> None:
    """Decline a node that comes with a pattern fused after it (those are other kinds' forms)."""
    if node.fused:
        raise OtherKind(f"`{node.op_type}` followed by {', '.join(f'`{f.op_type}`' for f in node.fused)}")


def fused_ops(node: OnnxNode) -> tuple[str, ...]:
    return tuple(f.op_type for f in node.fused)


def single(value: float) -> float:
    """A 32-bit float attribute as the shortest decimal that is the same 32-bit float: 1e-05, not
    9.999999747378752e-06 (ONNX stores float32; the spec writes floats by repr)."""
    target = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 18):
        shortest = float(f"{value:.{digits}g}")
        if struct.unpack("f", struct.pack("f", shortest))[0] == target:
            return shortest
    return float(value)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


def has_input(node: OnnxNode, position: int) -> bool:
    return position < len(node.dims) and node.dims[position] is not None


def learned(node: OnnxNode, position: int) -> bool:
    """Whether input `position` is a parameter of the file (an initializer): a bias that is a constant
    written as nodes (PyTorch's unoptimized export gives a conv without bias a zero one) is none."""
    return position in node.learned


def constant(node: OnnxNode, position: int):
    """The value of input `position` when the file holds it, else None."""
    return node.constants[position] if position < len(node.constants) else None


def scalar(node: OnnxNode, position: int) -> float | None:
    """A one-value constant input as a float, else None."""
    value = constant(node, position)
    return None if value is None or value.size != 1 else float(value.reshape(-1)[0])


def weight_dims(node: OnnxNode, position: int, what: str) -> tuple[int, ...]:
    """The dims of input `position`, a weight the file holds (its values need not be loaded)."""
    dims = node.dims[position] if position < len(node.dims) else None
    if dims is None:
        raise Untranslatable(None, f"`{node.op_type}` has no {what}")
    return dims


def pair(node: OnnxNode, name: str, default: int) -> tuple[int, int]:
    """A per-spatial-dimension attribute (strides, dilations, kernel_shape) of a 2-D layer."""
    values = tuple(node.attributes.get(name, (default, default)))
    if len(values) != 2:
        raise Untranslatable(name, f"`{node.op_type}` over {len(values)} spatial dimensions; the spec's are 2-D")
    return values  # type: ignore[return-value]


def spec_axis(node: OnnxNode, axis: int) -> int:
    """The spec axis (0 the batch, then height, width, channels) an ONNX axis of the node's input is."""
    rank = len(node.layout)
    if not -rank <= axis < rank:
        raise Untranslatable("axis", f"`{node.op_type}` axis {axis} is outside a {rank}-D tensor")
    return node.layout[axis % rank]


def channel_axis(node: OnnxNode) -> int:
    """The spec's channel axis: the last one."""
    return max(node.layout)


def channels_first(node: OnnxNode) -> None:
    """ONNX's convolutions, pools and norms read axis 1 as the channels: the input must be NCHW."""
    if node.layout != NCHW:
        raise Untranslatable(
            None,
            f"`{node.op_type}` needs an NxCxHxW image; its input is "
            + ("not an image" if len(node.layout) != 4 else "in another layout (after a Transpose)"),
        )


def spatial_size(inputs: list) -> tuple[int, int]:
    height, width, _ = inputs[0]
    return height, width


# --- padding ------------------------------------------------------------------------------------


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's (and the spec's) `same` padding of one dimension: the odd pixel goes at the end."""
    effective = dilation * (kernel - 1) + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def node_pads(node: OnnxNode, size, kernel, stride, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) from `pads` or `auto_pad`."""
    auto = node.attributes.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return (0, 0), (0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = tuple(same_pads(*dims) for dims in zip(size, kernel, stride, dilation))
        return pads if auto == "SAME_UPPER" else tuple((end, begin) for begin, end in pads)  # type: ignore[return-value]
    pads = tuple(node.attributes.get("pads", (0, 0, 0, 0)))
    if len(pads) != 4:
        raise Untranslatable("pads", f"`{node.op_type}` with {len(pads)} pads; the spec's layers are 2-D")
    return (pads[0], pads[2]), (pads[1], pads[3])


def padding(pads, size, kernel, stride, dilation=(1, 1)) -> Any:
    """The spec's `padding=` for these pads: `valid`; `same` (TensorFlow's) where it gives exactly these
    pads and the stride is 1 or the pads are uneven; the pads themselves when even; None when uneven."""
    if pads == ((0, 0), (0, 0)):
        return "valid"
    same = tuple(same_pads(*dims) for dims in zip(size, kernel, stride, dilation))
    even = all(begin == end for begin, end in pads)
    if pads == same and (tuple(stride) == (1, 1) or not even):
        return "same"
    return pads if even else None


def sides(pads) -> tuple[int, int, int, int]:
    """((top, bottom), (left, right)) as `zeropad`'s (top, bottom, left, right)."""
    (top, bottom), (left, right) = pads
    return top, bottom, left, right


def per_channel(node: OnnxNode, position: int) -> bool:
    """Whether constant input `position` holds one value per channel of the computed input (it
    broadcasts along every other axis): a bias or a layer scale."""
    dims, data = node.dims[position], node.dims[1 - position] if len(node.dims) == 2 else None
    if dims is None or data is None:
        return False
    channel = node.layout.index(channel_axis(node))
    aligned = (1,) * (len(data) - len(dims)) + tuple(dims)
    if len(aligned) != len(data):
        return False
    return all(size == 1 for i, size in enumerate(aligned) if i != channel) and aligned[channel] == data[channel]


def added_bias(node: OnnxNode) -> bool:
    """Whether a conv or dense node comes with its bias as a separate Add of one value per channel
    (PyTorch's Linear on a channels-last tensor is MatMul then Add; jax2onnx adds a transposed
    conv's bias apart). Any other pattern after it is another kind's."""
    if not node.fused:
        return False
    (add, *rest) = node.fused
    if rest or add.op_type != "Add" or len(add.streams) != 1 or not per_channel(add, 1 - add.streams[0]):
        raise OtherKind(f"`{node.op_type}` followed by {', '.join(f'`{f.op_type}`' for f in node.fused)}")
    return True


def spatial_axes(node: OnnxNode, amounts: dict[int, tuple[int, int]], what: str) -> tuple[int, int, int, int]:
    """Per-spec-axis (before, after) amounts as (top, bottom, left, right); refused on other axes."""
    if any(amount != (0, 0) for axis, amount in amounts.items() if axis not in (1, 2)):
        raise Untranslatable(None, f"`{node.op_type}` of an axis other than height and width: {what}")
    (top, bottom), (left, right) = amounts.get(1, (0, 0)), amounts.get(2, (0, 0))
    return top, bottom, left, right


def pad_amounts(node: OnnxNode) -> tuple[float, tuple[int, int, int, int]]:
    """A Pad node's fill value and its (top, bottom, left, right), negative where it cuts."""
    mode = node.attributes.get("mode", "constant")
    if mode != "constant":
        raise Untranslatable("mode", f"`Pad` in {mode} mode; the spec pads with zeros only (`zeropad`)")
    if has_input(node, 1):
        value = constant(node, 1)
        if value is None:
            raise Untranslatable("pads", "`Pad` amounts computed at run time")
        pads = [int(v) for v in value.reshape(-1)]
    else:
        pads = list(node.attributes.get("pads", ()))
    fill = scalar(node, 2) if has_input(node, 2) else node.attributes.get("value", 0.0)
    if fill is None:
        raise Untranslatable(None, "`Pad` with a value computed at run time")
    rank = len(node.layout)
    axes = list(range(rank))
    if has_input(node, 3):
        value = constant(node, 3)
        if value is None:
            raise Untranslatable("axes", "`Pad` axes computed at run time")
        axes = [int(a) % rank for a in value.reshape(-1)]
    half = len(pads) // 2
    amounts = {spec_axis(node, a): (pads[i], pads[i + half]) for i, a in enumerate(axes)}
    return float(fill), spatial_axes(node, amounts, "the spec pads height and width")


def slice_ranges(node: OnnxNode) -> dict[int, tuple[int, int, int]]:
    """A Slice's kept range on each spec axis it cuts: {axis: (start, stop, size)}."""
    size_of = node.dims[0]
    if has_input(node, 1):
        values = [constant(node, i) for i in range(1, 5)]
        if values[0] is None or values[1] is None or (has_input(node, 3) and values[2] is None):
            raise Untranslatable(None, "`Slice` bounds computed at run time")
        starts, ends = values[0].reshape(-1).tolist(), values[1].reshape(-1).tolist()
        axes = values[2].reshape(-1).tolist() if values[2] is not None else list(range(len(starts)))
        steps = values[3].reshape(-1).tolist() if values[3] is not None else [1] * len(starts)
    else:  # before opset 10: attributes
        starts, ends = node.attributes["starts"], node.attributes["ends"]
        axes = node.attributes.get("axes", tuple(range(len(starts))))
        steps = (1,) * len(starts)
    kept = {}
    for start, end, axis, step in zip(starts, ends, axes, steps):
        size = size_of[axis]
        if step != 1:
            raise Untranslatable("steps", f"`Slice` with step {step}; the spec keeps contiguous ranges only")
        start = min(max(start + size if start < 0 else start, 0), size)
        end = min(max(end + size if end < 0 else end, 0), size)
        if (start, end) != (0, size):
            kept[spec_axis(node, axis)] = (start, end, size)
    if 0 in kept:
        raise Untranslatable(None, "`Slice` of the batch axis has no spec layer")
    return kept


def crop_of(kept: dict[int, tuple[int, int, int]]) -> tuple[int, int, int, int] | None:
    """The `crop` (top, bottom, left, right) of a slice's height and width ranges, or None."""
    (top, end_h, height), (left, end_w, width) = kept.get(1, (0, 0, 0)), kept.get(2, (0, 0, 0))
    if 1 not in kept and 2 not in kept:
        return None
    return top, height - end_h, left, width - end_w
