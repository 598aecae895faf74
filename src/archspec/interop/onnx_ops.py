"""How each ONNX operator (or pattern of operators) reads as spec layers.

Each reader takes the node and the walk (`Reader`), checks what it needs (layout, constant inputs,
attributes the spec can say) and emits layers or raises `Refusal` with the reason. Exactness: a node
is read as a spec layer only when the layer computes the same function (up to its weights); what
differs (a pooling mode, an interpolation the spec has not) is refused, not approximated.
"""

from __future__ import annotations

import math

from archspec.interop.onnx_graph import OnnxNode
from archspec.interop.onnx_reader import NCHW, VECTOR, Reader, Refusal, Stream, close, reads, scalar, spec_shape
from archspec.words import Interval

# --- sizes and padding ----------------------------------------------------------------------------


def _pairs(node: OnnxNode, name: str, default: int) -> tuple[int, int]:
    values = tuple(node.attr(name, (default, default)))
    if len(values) != 2:
        raise Refusal(f"`{node.op}` over {len(values)} spatial dimensions; the spec's layers are 2-D")
    return values  # type: ignore[return-value]


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's (and the spec's) `same` padding of one dimension: the odd pixel goes at the end."""
    effective = dilation * (kernel - 1) + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _node_pads(node: OnnxNode, size: tuple[int, int], kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    """((top, bottom), (left, right)) from `pads` or `auto_pad`."""
    auto = node.attr("auto_pad", "NOTSET")
    if auto == "VALID":
        return (0, 0), (0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = tuple(_same_pads(*dims) for dims in zip(size, kernel, stride, dilation))
        return pads if auto == "SAME_UPPER" else tuple((end, begin) for begin, end in pads)
    pads = tuple(node.attr("pads", (0, 0, 0, 0)))
    if len(pads) != 4:
        raise Refusal(f"`{node.op}` with {len(pads)} pads; the spec's layers are 2-D")
    return (pads[0], pads[2]), (pads[1], pads[3])


def _padding(pads, size, kernel, stride, dilation):
    """The spec's `padding=` for these pads: `valid`, `same` (TensorFlow's, where it gives exactly these
    pads: always for a stride of 1), numbers for symmetric pads; None when they are asymmetric."""
    if pads == ((0, 0), (0, 0)):
        return "valid"
    same = tuple(_same_pads(*dims) for dims in zip(size, kernel, stride, dilation))
    symmetric = all(begin == end for begin, end in pads)
    if pads == same and (stride == (1, 1) or not symmetric):
        return "same"
    return pads if symmetric else None


def _sides(pads) -> tuple[int, int, int, int]:
    (top, bottom), (left, right) = pads
    return top, bottom, left, right


# --- convolutions ---------------------------------------------------------------------------------


@reads("Conv")
def conv(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    reader.need_nchw(node, x)
    weight = reader.weight_shape(node, 1, "weights")
    if len(weight) != 4:
        raise Refusal(f"`Conv` over {len(weight) - 2} spatial dimensions; the spec's `conv` is 2-D")
    _, channels, height, width = reader.shape(node.inputs[0])
    filters, _, kh, kw = weight
    kernel, stride, dilation = (kh, kw), _pairs(node, "strides", 1), _pairs(node, "dilations", 1)
    pads = _node_pads(node, (height, width), kernel, stride, dilation)
    padding = _padding(pads, (height, width), kernel, stride, dilation)
    if padding is None:  # asymmetric: pad with zeros first, as the convolution itself would
        x = reader.emit(node, "zeropad", {"padding": _sides(pads)}, [x])
        padding = "valid"
    groups = node.attr("group", 1)
    bias = reader.has_input(node, 2)
    common = {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation, "bias": bias}
    if groups == 1:
        out = reader.emit(node, "conv", {"filters": filters, **common}, [x])
    elif groups == channels and filters % channels == 0:
        out = reader.emit(node, "dwconv", {**common, "multiplier": filters // channels}, [x])
    else:
        out = reader.emit(node, "conv", {"filters": filters, **common, "groups": groups}, [x])
    reader.output(node, out)


@reads("ConvTranspose")
def conv_transpose(reader: Reader, node: OnnxNode) -> None:
    """Read as the spec's `convtranspose` with `valid` padding, whose output is the full (H-1)*S + K,
    then `crop` for ONNX's pads: exact, as PyTorch's `padding` only cuts the full output."""
    x = reader.stream(node)
    reader.need_nchw(node, x)
    weight = reader.weight_shape(node, 1, "weights")
    if len(weight) != 4:
        raise Refusal(f"`ConvTranspose` over {len(weight) - 2} spatial dimensions; the spec's is 2-D")
    if node.attr("group", 1) != 1:
        raise Refusal("`ConvTranspose` with groups; the spec's `convtranspose` has none")
    if _pairs(node, "dilations", 1) != (1, 1):
        raise Refusal("`ConvTranspose` with dilation; the spec's `convtranspose` has none")
    _, _, height, width = reader.shape(node.inputs[0])
    _, _, out_height, out_width = reader.shape(node.outputs[0])
    _, filters, kh, kw = weight
    stride = _pairs(node, "strides", 1)
    if kh < stride[0] or kw < stride[1]:
        raise Refusal(
            f"`ConvTranspose` with a kernel ({kh}x{kw}) smaller than its stride "
            f"({stride[0]}x{stride[1]}) leaves gaps the spec's `convtranspose` fills"
        )
    full = ((height - 1) * stride[0] + kh, (width - 1) * stride[1] + kw)
    auto = node.attr("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = tuple(node.attr("pads", (0, 0, 0, 0)))
        begin = (pads[0], pads[1])
    else:  # SAME_*: ONNX puts the odd pixel of the cut at the start for SAME_UPPER
        totals = (full[0] - out_height, full[1] - out_width)
        begin = tuple(t - t // 2 if auto == "SAME_UPPER" else t // 2 for t in totals)
    end = (full[0] - out_height - begin[0], full[1] - out_width - begin[1])
    if min(*begin, *end) < 0:
        raise Refusal(
            "`ConvTranspose` with an output_padding beyond its pads adds rows only the bias reaches; "
            "the spec's `convtranspose` has none"
        )
    attrs = {"filters": filters, "kernel": (kh, kw), "stride": stride, "bias": reader.has_input(node, 2)}
    out = reader.emit(node, "convtranspose", attrs, [x])
    if any(begin) or any(end):
        out = reader.emit(node, "crop", {"cropping": (begin[0], end[0], begin[1], end[1])}, [out])
    reader.output(node, out)


@reads("Gemm")
def gemm(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    if node.attr("transA", 0):
        raise Refusal("`Gemm` with transA reads its input transposed; the spec's `dense` does not")
    if x.perm != VECTOR:
        raise Refusal("`Gemm` on a tensor that is not a batch of vectors")
    weight = reader.weight_shape(node, 1, "weights")
    units = weight[0] if node.attr("transB", 0) else weight[1]
    reader.output(node, reader.emit(node, "dense", {"units": units, "bias": reader.has_input(node, 2)}, [x]))


@reads("MatMul")
def matmul(reader: Reader, node: OnnxNode) -> None:
    """A product with a weight matrix on the channel axis: `dense` without bias (an Add after it gives
    the bias). PyTorch's Linear on a channels-last tensor (ConvNeXt) is this on every pixel."""
    x = reader.stream(node)
    if reader.is_stream(node, 1):
        raise Refusal("`MatMul` of two computed tensors (attention) has no spec layer")
    weight = reader.weight_shape(node, 1, "weights")
    if len(weight) != 2:
        raise Refusal(f"`MatMul` with a {len(weight)}-D weight; the spec's `dense` holds a matrix")
    if not reader.is_channels(x, x.perm[-1]):
        raise Refusal("`MatMul` over an axis that is not the channels; the spec's `dense` works on channels")
    reader.output(node, reader.emit(node, "dense", {"units": weight[1], "bias": False}, [x]))


def _biased(reader: Reader, node: OnnxNode, x: Stream, bias_position: int) -> Stream | None:
    """`x` plus a per-channel bias, when `x` is a conv or dense without bias read only here: the same
    layer with `bias=true` (PyTorch's Linear on a channels-last tensor is MatMul, then Add)."""
    layer = reader.layer(x)
    made = node.inputs[1 - bias_position]
    if layer is None or layer[1].get("bias") is not False or not reader.only_reader(made, node):
        return None
    if not _per_channel(reader, x, made, reader.graph.weight_shape(node.inputs[bias_position]) or ()):
        return None
    kind, attrs = layer
    inputs = [Stream(i, x.perm) for i in reader.items[x.item].inputs]
    return reader.emit([reader.graph.maker(made), node], kind, {**attrs, "bias": True}, inputs)


# --- normalization --------------------------------------------------------------------------------


@reads("BatchNormalization")
def batch_norm(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    if len(x.perm) > 1 and x.perm[1] != len(x.perm) - 1:
        raise Refusal("`BatchNormalization` of a tensor whose axis 1 is not its channels")
    attrs = {"epsilon": node.attr("epsilon", 1e-5), "momentum": node.attr("momentum", 0.9)}
    reader.output(node, reader.emit(node, "bn", attrs, [x]))


@reads("LayerNormalization")
def layer_norm(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    axis = node.attr("axis", -1)
    rank = len(x.perm)
    if axis % rank != rank - 1 or not reader.is_channels(x, x.perm[-1]):
        raise Refusal(
            "`LayerNormalization` over more than the channels of each pixel; the spec's `layernorm` "
            "normalizes the channels (PyTorch's LayerNorm after a permute to channels-last)"
        )
    attrs = {"epsilon": node.attr("epsilon", 1e-5), "center": reader.has_input(node, 2)}
    reader.output(node, reader.emit(node, "layernorm", attrs, [x]))


@reads("InstanceNormalization")
def instance_norm(reader: Reader, node: OnnxNode) -> None:
    """Instance normalization is group normalization with one channel per group."""
    x = reader.stream(node)
    reader.need_nchw(node, x)
    channels = reader.shape(node.inputs[0])[1]
    attrs = {"groups": channels, "epsilon": node.attr("epsilon", 1e-5)}
    reader.output(node, reader.emit(node, "groupnorm", attrs, [x]))


@reads("GroupNormalization")
def group_norm(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    reader.need_nchw(node, x)
    channels = reader.shape(node.inputs[0])[1]
    groups = node.attr("num_groups")
    scale = reader.weight_shape(node, 1, "scale")
    if scale != (channels,):
        raise Refusal("`GroupNormalization` with a scale per group (opset 18); the spec's has one per channel")
    attrs = {"groups": groups, "epsilon": node.attr("epsilon", 1e-5)}
    reader.output(node, reader.emit(node, "groupnorm", attrs, [x]))


@reads("LRN")
def local_response_norm(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    reader.need_nchw(node, x)
    attrs = {
        "size": node.attr("size"),
        "alpha": node.attr("alpha", 1e-4),
        "beta": node.attr("beta", 0.75),
        "k": node.attr("bias", 1.0),
    }
    reader.output(node, reader.emit(node, "lrn", attrs, [x]))


# --- pooling --------------------------------------------------------------------------------------


def _pool_output(size, kernel, stride, pads, ceil):
    floor = [(s + sum(p) - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, pads)]
    if not ceil:
        return floor
    out = []
    for s, k, st, p, f in zip(size, kernel, stride, pads, floor):
        c = math.ceil((s + sum(p) - k) / st) + 1
        if (c - 1) * st >= s + p[0]:  # the last window would start in the end padding: dropped
            c -= 1
        out.append(max(c, f))
    return out


@reads("MaxPool", "AveragePool")
def pool(reader: Reader, node: OnnxNode) -> None:
    """`maxpool`/`avgpool`. ceil_mode grows the output by windows that hang over the end: for a max
    that is -inf padding at the end, which the spec's `same` gives when the pads equal TensorFlow's.
    An average counts pad zeros (count_include_pad=1, PyTorch's default) as `zeropad` then `avgpool`,
    or leaves them out (ONNX's default) as the spec's padded `avgpool` does."""
    x = reader.stream(node)
    reader.need_nchw(node, x)
    is_max = node.op == "MaxPool"
    kind = "maxpool" if is_max else "avgpool"
    if len(node.outputs) > 1 and node.outputs[1]:
        raise Refusal("`MaxPool` with an indices output (for unpooling) has no spec layer")
    kernel = _pairs(node, "kernel_shape", 1)
    stride, dilation = _pairs(node, "strides", 1), _pairs(node, "dilations", 1)
    if dilation != (1, 1):
        raise Refusal(f"`{node.op}` with dilations {dilation[0]}x{dilation[1]}; the spec's pools have none")
    _, _, height, width = reader.shape(node.inputs[0])
    size = (height, width)
    pads = _node_pads(node, size, kernel, stride, dilation)
    wanted = _pool_output(size, kernel, stride, pads, bool(node.attr("ceil_mode", 0)))
    if wanted != _pool_output(size, kernel, stride, pads, False):  # ceil_mode adds windows past the end
        extra = [(o - 1) * st + k - (s + sum(p)) for o, st, k, s, p in zip(wanted, stride, kernel, size, pads)]
        grown = tuple((p[0], p[1] + e) for p, e in zip(pads, extra))
        same = tuple(_same_pads(*dims) for dims in zip(size, kernel, stride, dilation))
        # An average's overhanging window divides by the pixels it covers (count_include_pad only
        # counts the explicit pads), as the spec's `same` does when there are no explicit pads.
        if grown != same or (not is_max and pads != ((0, 0), (0, 0))):
            raise Refusal(
                f"`{node.op}` with ceil_mode: its windows past the end need padding "
                f"{_sides(grown)} (top, bottom, left, right) that the spec's `{kind}` cannot say",
                hint="TensorFlow-style `same` padding is the one uneven padding the spec's pools have",
            )
        padding = "same"
    elif not is_max and node.attr("count_include_pad", 0) and pads != ((0, 0), (0, 0)):
        # the pad zeros are averaged in (PyTorch's default): pad first, then pool without padding
        x = reader.emit(node, "zeropad", {"padding": _sides(pads)}, [x])
        padding = "valid"
    else:  # a max ignores its pads (-inf), and the spec's padded `avgpool` averages real pixels only
        padding = _padding(pads, size, kernel, stride, dilation)
        if padding is None:
            raise Refusal(
                f"`{node.op}` with uneven padding {_sides(pads)} (top, bottom, left, right) the spec's `{kind}` "
                "cannot say",
                hint="TensorFlow-style `same` padding is the one uneven padding the spec's pools have",
            )
    stride_attr = None if stride == kernel else stride
    attrs = {"size": kernel, "stride": stride_attr, "padding": padding}
    reader.output(node, reader.emit(node, kind, attrs, [x]))


@reads("GlobalAveragePool", "GlobalMaxPool")
def global_pool(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    reader.need_nchw(node, x)
    kind = "gap" if node.op == "GlobalAveragePool" else "gmp"
    reader.output(node, reader.emit(node, kind, {"keepdims": True}, [x]))


def _reduce_axes(reader: Reader, node: OnnxNode, x: Stream) -> set[int]:
    """The spec axes a Reduce* node reduces: {1, 2} is height and width."""
    axes = node.attr("axes")
    if axes is None and reader.has_input(node, 1):
        value = reader.constant(node, 1)
        if value is None:
            raise Refusal(f"`{node.op}` over axes computed at run time")
        axes = tuple(int(a) for a in value.reshape(-1))
    if not axes:
        raise Refusal(f"`{node.op}` over every axis has no spec layer")
    spec_axes = {reader.spec_axis(node, x, a) for a in axes}
    if len(x.perm) != 4 or spec_axes != {1, 2}:
        raise Refusal(f"`{node.op}` over axes {tuple(axes)}; the spec's global pooling is over height and width")
    return spec_axes


@reads("ReduceMean", "ReduceMax")
def reduce(reader: Reader, node: OnnxNode) -> None:
    """A mean or max over H and W: global pooling (PyTorch's `mean((2, 3))`, AdaptiveAvgPool2d(1))."""
    x = reader.stream(node)
    _reduce_axes(reader, node, x)
    kind = "gap" if node.op == "ReduceMean" else "gmp"
    keepdims = bool(node.attr("keepdims", 1))
    reader.output(node, reader.emit(node, kind, {"keepdims": keepdims}, [x], perm=x.perm if keepdims else VECTOR))


def _mean_of_sum(reader: Reader, node: OnnxNode) -> bool:
    """A ReduceSum over height and width divided by their product (jax2onnx writes a mean so): `gap`."""
    for position in (0, 1):
        summed = reader.graph.maker(node.inputs[position])
        divisor = reader.graph.constant(node.inputs[1 - position])
        if summed is None or summed.op != "ReduceSum" or divisor is None or divisor.size != 1:
            continue
        if (node.op == "Div") == bool(position) or not reader.only_reader(node.inputs[position], node):
            continue
        x = reader.stream(summed)
        _reduce_axes(reader, summed, x)
        height, width, _ = spec_shape(reader.shape(summed.inputs[0]), x.perm)
        factor = 1 / scalar(divisor) if node.op == "Div" else scalar(divisor)
        if not close(factor * height * width, 1.0):
            return False
        keepdims = bool(summed.attr("keepdims", 1))
        out = reader.emit([summed, node], "gap", {"keepdims": keepdims}, [x], perm=x.perm if keepdims else VECTOR)
        reader.output(node, out)
        return True
    return False


# --- shapes ---------------------------------------------------------------------------------------


def _to_vector(reader: Reader, node: OnnxNode, x: Stream) -> None:
    """A 4-D tensor made a vector per example (Flatten, Reshape to (N, -1), Squeeze of a 1x1 map).
    After a global pooling that keeps 1x1 (and is read only here), the pooling without keepdims."""
    if len(x.perm) == 2:
        reader.output(node, x)
        return
    layer = reader.layer(x)
    pooled = node.inputs[0]
    if layer is not None and layer[1].get("keepdims") and reader.only_reader(pooled, node):
        source = reader.graph.maker(pooled)
        (inner,) = reader.items[x.item].inputs
        out = reader.emit([source, node], layer[0], {"keepdims": False}, [Stream(inner, x.perm)], perm=VECTOR)
    else:
        # An NCHW flatten orders the values channel-major and the spec's flatten of HxWxC
        # height-major: the same values and counts in another order (a dense after it sees its
        # weights' rows permuted). Over a 1x1 map the orders agree.
        out = reader.emit(node, "flatten", {}, [x], perm=VECTOR)
    reader.output(node, out)


@reads("Flatten")
def flatten(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    if node.attr("axis", 1) != 1:
        raise Refusal(f"`Flatten` from axis {node.attr('axis')}; the spec's `flatten` keeps the batch axis only")
    _to_vector(reader, node, x)


@reads("Squeeze")
def squeeze(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    out = reader.shape(node.outputs[0])
    if len(x.perm) == 4 and len(out) == 2 and out[0] == reader.shape(node.inputs[0])[0]:
        _to_vector(reader, node, x)
        return
    raise Refusal("`Squeeze` that does not make a batch of vectors from a 1x1 map")


@reads("Reshape")
def reshape(reader: Reader, node: OnnxNode) -> None:
    """To (batch, -1): `flatten`. Reshape to groups, Transpose and Reshape back: ShuffleNet's channel
    shuffle, `shuffle G`. Other reshapes have no spec layer."""
    out = reader.shape(node.outputs[0])
    if _channel_shuffle(reader, node):
        return
    x = reader.stream(node)
    shape = reader.shape(node.inputs[0])
    if len(out) == 2 and out[0] == shape[0]:
        _to_vector(reader, node, x)
        return
    if out == shape:
        reader.output(node, x)
        return
    raise Refusal(
        f"`Reshape` from {'x'.join(map(str, shape))} to {'x'.join(map(str, out))} (batch first) has no spec layer",
        hint="the spec reshapes only to a vector (`flatten`) and shuffles channels (`shuffle G`)",
    )


def _channel_shuffle(reader: Reader, node: OnnxNode) -> bool:
    """Reshape(N, G, C/G, H, W) -> Transpose(0, 2, 1, 3, 4) -> Reshape(N, C, H, W), ending at `node`."""
    transpose = reader.graph.maker(node.inputs[0])
    if transpose is None or transpose.op != "Transpose" or tuple(transpose.attr("perm", ())) != (0, 2, 1, 3, 4):
        return False
    split = reader.graph.maker(transpose.inputs[0])
    if split is None or split.op != "Reshape":
        return False
    source = split.inputs[0]
    value = reader.values.get(source)
    if not isinstance(value, Stream) or value.perm != NCHW:
        return False
    shape, grouped, out = reader.shape(source), reader.shape(split.outputs[0]), reader.shape(node.outputs[0])
    n, c, h, w = shape
    if len(grouped) != 5 or out != shape or grouped[0] != n or grouped[3:] != (h, w) or grouped[1] * grouped[2] != c:
        return False
    shuffled = reader.emit([node, transpose, split], "shuffle", {"groups": grouped[1]}, [value])
    reader.output(node, shuffled)
    return True


@reads("Transpose")
def transpose(reader: Reader, node: OnnxNode) -> None:
    """Moves axes without computing: the tensor's layout record changes, no spec line."""
    x = reader.stream(node)
    order = tuple(node.attr("perm", tuple(reversed(range(len(x.perm))))))
    if len(order) != len(x.perm):
        raise Refusal(f"`Transpose` of {len(order)} axes of a {len(x.perm)}-D tensor")
    perm = tuple(x.perm[axis] for axis in order)
    if perm[0] != 0:
        raise Refusal("`Transpose` that moves the batch axis has no spec layer")
    reader.output(node, Stream(x.item, perm))


@reads("Identity", "Cast")
def identity(reader: Reader, node: OnnxNode) -> None:
    reader.output(node, reader.stream(node))


@reads("Gather")
def gather(reader: Reader, node: OnnxNode) -> None:
    """Only the identity: a tensor flattened and gathered back in its own order (PyTorch's as_strided
    in ConvNeXt's head). Other gathers pick values by index and have no spec layer."""
    indices = reader.constant(node, 1)
    flat = reader.graph.maker(node.inputs[0])
    if indices is not None and flat is not None and flat.op == "Reshape":
        source = reader.values.get(flat.inputs[0])
        shape = reader.graph.shape(flat.inputs[0])
        if isinstance(source, Stream) and shape is not None and tuple(indices.shape) == tuple(shape):
            import numpy as np

            if np.array_equal(indices.reshape(-1), np.arange(indices.size)):
                reader.output(node, source)
                return
    raise Refusal("`Gather` picks values by index; the spec has no such layer")


@reads("Concat")
def concat(reader: Reader, node: OnnxNode) -> None:
    xs = reader.streams(node)
    axis = reader.spec_axis(node, xs[0], node.attr("axis"))
    if not reader.is_channels(xs[0], axis) or any(x.perm != xs[0].perm for x in xs):
        raise Refusal("`Concat` along an axis that is not the channels; the spec's `concat` joins channels")
    if len(xs) == 1:
        reader.output(node, xs[0])
        return
    reader.output(node, reader.emit(node, "concat", {}, xs))


def _channel_range(reader: Reader, node: OnnxNode, x: Stream, start: int, stop: int, position: int) -> None:
    reader.output(node, reader.emit(node, "channels", {"range": Interval(start, stop)}, [x]), position)


@reads("Split")
def split(reader: Reader, node: OnnxNode) -> None:
    """A split of the channels: each output is `channels A:B` of the input (ShuffleNet's chunk)."""
    x = reader.stream(node)
    axis = reader.spec_axis(node, x, node.attr("axis", 0))
    if not reader.is_channels(x, axis):
        raise Refusal("`Split` along an axis that is not the channels; the spec splits channels only")
    channels = reader.shape(node.inputs[0])[node.attr("axis", 0)]
    sizes = node.attr("split")
    if sizes is None and reader.has_input(node, 1):
        value = reader.constant(node, 1)
        if value is None:
            raise Refusal("`Split` sizes computed at run time")
        sizes = tuple(int(v) for v in value.reshape(-1))
    if sizes is None:
        parts = len(node.outputs)
        chunk = math.ceil(channels / parts)
        sizes = tuple(min(chunk, channels - i * chunk) for i in range(parts))
    start = 0
    for position, size in enumerate(sizes):
        _channel_range(reader, node, x, start, start + size, position)
        start += size


@reads("Slice")
def slice_(reader: Reader, node: OnnxNode) -> None:
    """A slice of the channels is `channels A:B`; of the height and width, `crop`."""
    x = reader.stream(node)
    shape = reader.shape(node.inputs[0])
    if reader.graph.opset < 10 or not reader.has_input(node, 1):
        starts, ends = node.attr("starts"), node.attr("ends")
        axes = node.attr("axes", tuple(range(len(starts))))
        steps = (1,) * len(starts)
    else:
        values = [reader.constant(node, i) for i in range(1, 5)]
        if values[0] is None or values[1] is None or (reader.has_input(node, 3) and values[2] is None):
            raise Refusal("`Slice` bounds computed at run time")
        starts, ends = values[0].reshape(-1).tolist(), values[1].reshape(-1).tolist()
        axes = values[2].reshape(-1).tolist() if values[2] is not None else list(range(len(starts)))
        steps = values[3].reshape(-1).tolist() if values[3] is not None else [1] * len(starts)
    cut = {}
    for start, end, axis, step in zip(starts, ends, axes, steps):
        size = shape[axis]
        if step != 1:
            raise Refusal(f"`Slice` with step {step}; the spec keeps contiguous ranges only")
        start = min(max(start + size if start < 0 else start, 0), size)
        end = min(max(end + size if end < 0 else end, 0), size)
        cut[reader.spec_axis(node, x, axis)] = (start, end, size)
    out = x
    channel_axis = len(x.perm) - 1
    if channel_axis in cut and cut[channel_axis][:2] != (0, cut[channel_axis][2]):
        start, end, _ = cut[channel_axis]
        out = reader.emit(node, "channels", {"range": Interval(start, end)}, [out])
    spatial = {a: c for a, c in cut.items() if a in (1, 2) and len(x.perm) == 4}
    if any(c[:2] != (0, c[2]) for c in spatial.values()):
        (top, bottom_end, height), (left, right_end, width) = (spatial.get(a, (0, 0, 0)) for a in (1, 2))
        sides = (top, height - bottom_end, left, width - right_end) if spatial else (0, 0, 0, 0)
        if 1 not in spatial:
            sides = (0, 0, sides[2], sides[3])
        if 2 not in spatial:
            sides = (sides[0], sides[1], 0, 0)
        out = reader.emit(node, "crop", {"cropping": sides}, [out])
    if 0 in cut and cut[0][:2] != (0, cut[0][2]):
        raise Refusal("`Slice` of the batch axis has no spec layer")
    reader.output(node, out)


@reads("Pad")
def pad(reader: Reader, node: OnnxNode) -> None:
    """Zeros around the height and width: `zeropad`; negative pads cut: `crop`."""
    x = reader.stream(node)
    mode = node.attr("mode", "constant")
    if mode != "constant":
        raise Refusal(f"`Pad` in {mode} mode; the spec pads with zeros only (`zeropad`)")
    if reader.has_input(node, 1):
        value = reader.constant(node, 1)
        if value is None:
            raise Refusal("`Pad` amounts computed at run time")
        pads = [int(v) for v in value.reshape(-1)]
    else:
        pads = list(node.attr("pads", ()))
    fill = reader.constant(node, 2) if reader.has_input(node, 2) else node.attr("value", 0.0)
    if fill is not None and scalar(fill) != 0:
        raise Refusal(f"`Pad` with the value {scalar(fill):g}; the spec pads with zeros")
    rank = len(x.perm)
    axes = list(range(rank))
    if reader.has_input(node, 3):
        value = reader.constant(node, 3)
        if value is None:
            raise Refusal("`Pad` axes computed at run time")
        axes = [int(a) % rank for a in value.reshape(-1)]
    half = len(pads) // 2
    by_axis = {reader.spec_axis(node, x, a): (pads[i], pads[i + half]) for i, a in enumerate(axes)}
    if rank != 4 or any(amount != (0, 0) for axis, amount in by_axis.items() if axis not in (1, 2)):
        raise Refusal("`Pad` of an axis other than height and width has no spec layer")
    (top, bottom), (left, right) = by_axis.get(1, (0, 0)), by_axis.get(2, (0, 0))
    sides = (top, bottom, left, right)
    if all(s >= 0 for s in sides):
        out = reader.emit(node, "zeropad", {"padding": sides}, [x]) if any(sides) else x
    elif all(s <= 0 for s in sides):
        out = reader.emit(node, "crop", {"cropping": tuple(-s for s in sides)}, [x])
    else:
        raise Refusal("`Pad` that pads one side and cuts another; write it as `zeropad` and `crop`")
    reader.output(node, out)


@reads("Resize", "Upsample")
def resize(reader: Reader, node: OnnxNode) -> None:
    """Growing height and width by whole factors: `upsample N` (nearest) or `upsample N method=bilinear`
    (half-pixel centres, as PyTorch's align_corners=False and jax.image.resize)."""
    x = reader.stream(node)
    reader.need_nchw(node, x)
    _, _, height, width = reader.shape(node.inputs[0])
    _, _, out_height, out_width = reader.shape(node.outputs[0])
    if out_height % height or out_width % width or out_height < height or out_width < width:
        raise Refusal(
            f"`{node.op}` from {height}x{width} to {out_height}x{out_width}; the spec's `upsample` grows "
            "by whole factors"
        )
    mode = node.attr("mode", "nearest")
    coordinates = node.attr("coordinate_transformation_mode", "half_pixel" if node.op == "Resize" else "asymmetric")
    rounding = node.attr("nearest_mode", "round_prefer_floor")
    size = (out_height // height, out_width // width)
    if mode == "nearest":
        # each output pixel copies input pixel floor(i / factor) under these rules, as `upsample` does
        exact = (coordinates == "asymmetric" and rounding == "floor") or (
            coordinates in ("half_pixel", "pytorch_half_pixel") and rounding.startswith("round_prefer")
        )
        if not exact:
            raise Refusal(
                f"`{node.op}` nearest with {coordinates} coordinates and {rounding} rounding picks other pixels "
                "than the spec's `upsample`"
            )
        attrs = {"size": size}
    elif mode in ("linear", "bilinear") and coordinates in ("half_pixel", "pytorch_half_pixel"):
        attrs = {"size": size, "method": "bilinear"}
    else:
        raise Refusal(
            f"`{node.op}` in {mode} mode with {coordinates} coordinates; the spec's `upsample` is nearest or "
            "bilinear with half-pixel centres (align_corners=False)"
        )
    reader.output(node, reader.emit(node, "upsample", attrs, [x]))


@reads("Dropout")
def dropout(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    ratio = node.attr("ratio", 0.5)
    if reader.has_input(node, 1):
        value = reader.constant(node, 1)
        if value is None:
            raise Refusal("`Dropout` ratio computed at run time")
        ratio = scalar(value)
    reader.output(node, reader.emit(node, "dropout", {"rate": ratio}, [x]))


# --- element-wise -------------------------------------------------------------------------------

ACTIVATIONS = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softplus": "softplus",
    "HardSwish": "hard_swish",
    "Mish": "mish",
    "Swish": "silu",
}


@reads(*ACTIVATIONS)
def activation(reader: Reader, node: OnnxNode) -> None:
    if node.op == "Swish" and not close(node.attr("alpha", 1.0), 1.0):
        raise Refusal(f"`Swish` with alpha {node.attr('alpha'):g}; the spec's `silu` is x * sigmoid(x)")
    reader.output(node, reader.emit(node, ACTIVATIONS[node.op], {}, [reader.stream(node)]))


@reads("LeakyRelu")
def leaky_relu(reader: Reader, node: OnnxNode) -> None:
    reader.output(node, reader.emit(node, "leaky_relu", {"slope": node.attr("alpha", 0.01)}, [reader.stream(node)]))


@reads("Elu", "Selu", "HardSigmoid", "Gelu")
def parametrized(reader: Reader, node: OnnxNode) -> None:
    """Activations whose ONNX parameters must be the spec's fixed ones."""
    expected = {
        "Elu": {"alpha": (1.0, 1.0)},
        "Selu": {"alpha": (1.67326319217681884765625, 1.6732632), "gamma": (1.05070102214813232421875, 1.0507010)},
        "HardSigmoid": {"alpha": (0.2, 1 / 6), "beta": (0.5, 0.5)},  # (ONNX default, the spec's value)
    }
    if node.op == "Gelu":
        if node.attr("approximate", "none") != "none":
            raise Refusal("`Gelu` with the tanh approximation; the spec's `gelu` is the exact erf form")
    else:
        for name, (default, wanted) in expected[node.op].items():
            value = node.attr(name, default)
            if not close(value, wanted):
                raise Refusal(
                    f"`{node.op}` with {name}={value:g}; the spec's `{node.op.lower()}` has {name}={wanted:.6g}"
                )
    kind = {"Elu": "elu", "Selu": "selu", "HardSigmoid": "hard_sigmoid", "Gelu": "gelu"}[node.op]
    reader.output(node, reader.emit(node, kind, {}, [reader.stream(node)]))


@reads("Clip")
def clip(reader: Reader, node: OnnxNode) -> None:
    """Clip(0, 6) is `relu6` (PyTorch's ReLU6), Clip(0, none) `relu`."""
    x = reader.stream(node)
    if reader.graph.opset < 11:
        low, high = node.attr("min", -math.inf), node.attr("max", math.inf)
    else:
        bounds = []
        for position, default in ((1, -math.inf), (2, math.inf)):
            if not reader.has_input(node, position):
                bounds.append(default)
                continue
            value = reader.constant(node, position)
            if value is None:
                raise Refusal("`Clip` bounds computed at run time")
            bounds.append(scalar(value))
        low, high = bounds
    if low == 0 and high == 6:
        kind = "relu6"
    elif low == 0 and high == math.inf:
        kind = "relu"
    else:
        raise Refusal(f"`Clip` to [{low:g}, {high:g}]; the spec has relu (0, inf) and relu6 (0, 6)")
    reader.output(node, reader.emit(node, kind, {}, [x]))


@reads("Softmax")
def softmax(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    rank = len(x.perm)
    axis = node.attr("axis", -1 if reader.graph.opset >= 13 else 1)
    if reader.graph.opset < 13 and axis % rank != rank - 1:
        raise Refusal("`Softmax` (before opset 13) over several flattened axes; the spec's is over channels")
    if not reader.is_channels(x, reader.spec_axis(node, x, axis)):
        raise Refusal("`Softmax` over an axis that is not the channels; the spec's `softmax` is over channels")
    reader.output(node, reader.emit(node, "softmax", {}, [x]))


def _gate(reader: Reader, node: OnnxNode) -> bool:
    """x * sigmoid(x) is `silu`, x * hard_sigmoid(x) `hard_swish`, x * tanh(softplus(x)) `mish`."""
    for position in (0, 1):
        x, gate = node.inputs[position], node.inputs[1 - position]
        maker = reader.graph.maker(gate)
        value = reader.values.get(x)
        if maker is None or not isinstance(value, Stream) or not maker.inputs or not reader.only_reader(gate, node):
            continue
        if maker.op == "Sigmoid" and maker.inputs[0] == x:
            kind = "silu"
        elif maker.op == "HardSigmoid" and maker.inputs[0] == x and close(maker.attr("alpha", 0.2), 1 / 6):
            kind = "hard_swish" if close(maker.attr("beta", 0.5), 0.5) else ""
        elif maker.op == "Tanh" and (inner := reader.graph.maker(maker.inputs[0])) is not None:
            kind = "mish" if inner.op == "Softplus" and inner.inputs[0] == x else ""
        else:
            kind = ""
        if kind:
            reader.output(node, reader.emit([node, maker], kind, {}, [value]))
            return True
    return False


def _factors(reader: Reader, tensor: str, root: OnnxNode, depth: int = 0) -> list[str]:
    """The tensors a product of Muls multiplies, through Muls read only within the product."""
    maker = reader.graph.maker(tensor)
    single = len(reader.graph.readers.get(tensor, ())) == 1
    if maker is not None and maker.op == "Mul" and (maker is root or single) and depth < 4:
        return [f for name in maker.inputs for f in _factors(reader, name, root, depth + 1)]
    return [tensor]


def _erf_gelu(reader: Reader, node: OnnxNode) -> bool:
    """PyTorch's exact GELU before opset 20: x * 0.5 * (1 + erf(x / sqrt(2))), in any order of the Muls."""
    factors = _factors(reader, node.outputs[0], node)
    constants = [reader.graph.constant(f) for f in factors]
    half = math.prod(scalar(c) for c in constants if c is not None and c.size == 1)
    tensors = [f for f, c in zip(factors, constants) if c is None]
    if len(tensors) != 2 or not close(half, 0.5) or len(factors) - len(tensors) < 1:
        return False
    for x, term in (tensors, tensors[::-1]):
        add = reader.graph.maker(term)
        if add is None or add.op != "Add" or not isinstance(reader.values.get(x), Stream):
            continue
        ones = [reader.graph.constant(i) for i in add.inputs]
        erf_input = next((i for i, c in zip(add.inputs, ones) if c is None), None)
        if sum(1 for c in ones if c is not None and c.size == 1 and close(scalar(c), 1.0)) != 1:
            continue
        erf = reader.graph.maker(erf_input) if erf_input else None
        if erf is None or erf.op != "Erf":
            continue
        scale = reader.graph.maker(erf.inputs[0])
        if scale is None or x not in scale.inputs or scale.op not in ("Div", "Mul"):
            continue
        other = reader.graph.constant(scale.inputs[1] if scale.inputs[0] == x else scale.inputs[0])
        if other is None or other.size != 1:
            continue
        factor = scalar(other) if scale.op == "Mul" else 1 / scalar(other)
        if close(factor, 1 / math.sqrt(2)):
            reader.output(node, reader.emit([node, erf], "gelu", {}, [reader.values[x]]))
            return True
    return False


@reads("Mul")
def mul(reader: Reader, node: OnnxNode) -> None:
    """Two tensors: a gate pattern, or `multiply` (squeeze-excite's scaling). A tensor and a constant:
    GELU's 0.5, `rescale` by a scalar, `layerscale` by one weight per channel (ConvNeXt)."""
    if _gate(reader, node) or _erf_gelu(reader, node) or _mean_of_sum(reader, node):
        return
    if reader.is_stream(node, 0) and reader.is_stream(node, 1):
        xs = reader.streams(node)
        if xs[0].perm != xs[1].perm:
            raise Refusal("`Mul` of tensors in different layouts")
        reader.output(node, reader.emit(node, "multiply", {}, xs))
        return
    _by_constant(reader, node, "Mul")


def _by_constant(reader: Reader, node: OnnxNode, op: str) -> None:
    position = 0 if reader.is_stream(node, 0) else 1
    x = reader.stream(node, position)
    other = node.inputs[1 - position]
    value = reader.graph.constant(other)
    shape = reader.graph.weight_shape(other) or ()
    if math.prod(shape) == 1 and value is not None:
        number = scalar(value)
        if op == "Mul":
            attrs = {"scale": number}
        elif op == "Div" and position == 0:
            attrs = {"scale": 1 / number}
        elif op == "Add":
            attrs = {"scale": 1.0, "offset": number}
        elif op == "Sub":
            attrs = {"scale": 1.0, "offset": -number} if position == 0 else {"scale": -1.0, "offset": number}
        else:
            raise Refusal(f"`{op}` of a constant by a tensor has no spec layer")
        reader.output(node, reader.emit(node, "rescale", attrs, [x]))
        return
    if op == "Mul" and _per_channel(reader, x, node.inputs[position], shape):
        attrs = {}
        if value is not None and value.size and (value == value.reshape(-1)[0]).all():
            attrs["init"] = scalar(value)
        reader.output(node, reader.emit(node, "layerscale", attrs, [x]))
        return
    if op == "Add":
        biased = _biased(reader, node, x, 1 - position)
        if biased is not None:
            reader.output(node, biased)
            return
    raise Refusal(
        f"`{op}` by a constant of shape {'x'.join(map(str, shape)) or 'unknown'}: the spec has scaling by one number "
        "(`rescale`), by one weight per channel (`layerscale`) and biases inside `conv`/`dense`"
    )


def _per_channel(reader: Reader, x: Stream, tensor: str, shape: tuple[int, ...]) -> bool:
    """Whether a constant of `shape` broadcast against `x` holds one value per channel."""
    dims = reader.shape(tensor)
    channel = x.perm.index(len(x.perm) - 1)
    aligned = (1,) * (len(dims) - len(shape)) + tuple(shape)
    return all(size == 1 for i, size in enumerate(aligned) if i != channel) and aligned[channel] == dims[channel]


@reads("Add")
def add(reader: Reader, node: OnnxNode) -> None:
    """Two tensors of one shape: `add` (residual connections). A tensor and a constant: the bias of
    the conv or dense before it (PyTorch's Linear as MatMul + Add), or `rescale` by an offset."""
    if reader.is_stream(node, 0) and reader.is_stream(node, 1):
        xs = reader.streams(node)
        shapes = [reader.shape(name) for name in node.inputs]
        if shapes[0] != shapes[1] or xs[0].perm != xs[1].perm:
            raise Refusal(
                f"`Add` of tensors of shapes {' and '.join('x'.join(map(str, s)) for s in shapes)} (broadcasting); "
                "the spec's `add` joins equal shapes"
            )
        reader.output(node, reader.emit(node, "add", {}, xs))
        return
    position = 0 if reader.is_stream(node, 0) else 1
    x = reader.stream(node, position)
    biased = _biased(reader, node, x, 1 - position)
    if biased is not None:
        reader.output(node, biased)
        return
    _by_constant(reader, node, "Add")


@reads("Sub", "Div")
def sub_div(reader: Reader, node: OnnxNode) -> None:
    if node.op == "Div" and _mean_of_sum(reader, node):
        return
    if reader.is_stream(node, 0) and reader.is_stream(node, 1):
        raise Refusal(f"`{node.op}` of two computed tensors has no spec layer")
    _by_constant(reader, node, node.op)
