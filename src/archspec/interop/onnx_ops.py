"""How each ONNX operator (or pattern of operators) reads as spec layers.

Each reader takes the node and the walk (`Reader`), checks what it needs (layout, constant inputs,
attributes the spec can say) and emits layers or raises `Refusal` with the reason. Exactness: a node
is read as a spec layer only when the layer computes the same function (up to its weights); what
differs (a pooling mode, an interpolation the spec has not) is refused, not approximated.
"""

from __future__ import annotations

import math

from archspec.interop.onnx_graph import OnnxNode
from archspec.interop.onnx_layout import NCHW, NHWC
from archspec.interop.onnx_reader import PIXELS, VECTOR, Reader, Refusal, Stream, close, reads, scalar, spec_shape
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
    if groups == 1 and _separable(reader, node, x, filters, common):
        return
    if groups == 1:
        out = reader.emit(node, "conv", {"filters": filters, **common}, [x])
    elif groups == channels and filters % channels == 0:
        out = reader.emit(node, "dwconv", {**common, "multiplier": filters // channels}, [x])
    else:
        out = reader.emit(node, "conv", {"filters": filters, **common, "groups": groups}, [x])
    reader.output(node, out)


def _separable(reader: Reader, node: OnnxNode, x: Stream, filters: int, pointwise: dict) -> bool:
    """A 1x1 conv straight after a depthwise conv without bias (read only by it): `sepconv`."""
    depthwise = reader.layer(x)
    plain = {"kernel": (1, 1), "stride": (1, 1), "padding": "valid", "dilation": (1, 1)}
    if (
        depthwise is None
        or depthwise[0] != "dwconv"
        or depthwise[1]["bias"]
        or not reader.only_reader(node.inputs[0], node)
    ):
        return False
    if any(pointwise[k] != v for k, v in plain.items()):
        return False
    attrs = {**depthwise[1], "filters": filters, "bias": pointwise["bias"]}
    (source,) = reader.items[x.item].inputs
    maker = reader.graph.maker(node.inputs[0])
    reader.output(node, reader.emit([maker, node], "sepconv", attrs, [Stream(source, x.perm)]))
    return True


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
    if x.perm not in (VECTOR, PIXELS):
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
    made = node.inputs[1 - bias_position]
    if not reader.only_reader(made, node):
        return None
    if not _per_channel(reader, x, made, reader.graph.weight_shape(node.inputs[bias_position]) or ()):
        return None
    layer, cropped = reader.layer(x), None
    if layer is not None and layer[0] == "crop":  # a transposed conv's crop: the bias goes before it
        cropped = layer
        (inner,) = reader.items[x.item].inputs
        x, layer = Stream(inner, x.perm), reader.layers[inner]
    if layer is None or layer[1].get("bias") is not False:
        return None
    kind, attrs = layer
    makers = [reader.graph.maker(made), node]
    out = reader.emit(makers, kind, {**attrs, "bias": True}, [Stream(i, x.perm) for i in reader.items[x.item].inputs])
    return reader.emit(makers, *cropped, [out]) if cropped else out


# --- normalization --------------------------------------------------------------------------------


@reads("BatchNormalization")
def batch_norm(reader: Reader, node: OnnxNode) -> None:
    x = reader.stream(node)
    if len(x.perm) > 1 and x.perm[1] != x.rank - 1:
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
    is_max = node.op == "MaxPool"
    x = reader.stream(node, pending=is_max)
    reader.need_nchw(node, x)
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
    if x.pending:  # -inf padding written before the pooling: the pooling's own
        top, bottom, left, right = x.pending
        size = (height - top - bottom, width - left - right)
        pads = ((pads[0][0] + top, pads[0][1] + bottom), (pads[1][0] + left, pads[1][1] + right))
        x = Stream(x.item, x.perm, x.grid)
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


def _before_reshapes(reader: Reader, tensor: str, node: OnnxNode) -> tuple[str, list[OnnxNode]]:
    """The tensor that Reshape and Expand nodes, each read only by the next, turned into `tensor`."""
    chain: list[OnnxNode] = []
    maker = reader.graph.maker(tensor)
    while maker is not None and maker.op in ("Reshape", "Expand") and reader.only_reader(tensor, node):
        chain.append(maker)
        node, tensor = maker, maker.inputs[0]
        maker = reader.graph.maker(tensor)
    return tensor, chain


def _mean_of_sum(reader: Reader, node: OnnxNode) -> bool:
    """A ReduceSum over height and width divided by their product (jax2onnx writes a mean so, with a
    Reshape and an Expand to 1x1 between when the dims are kept): `gap`."""
    for position in (0, 1):
        if (node.op == "Div") == bool(position):
            continue
        divisor = reader.graph.constant(node.inputs[1 - position])
        tensor, chain = _before_reshapes(reader, node.inputs[position], node)
        summed = reader.graph.maker(tensor)
        if summed is None or summed.op != "ReduceSum" or divisor is None or divisor.size != 1:
            continue
        if not reader.only_reader(tensor, chain[-1] if chain else node):
            continue
        x = reader.stream(summed)
        _reduce_axes(reader, summed, x)
        height, width, channels = spec_shape(reader.shape(summed.inputs[0]), x.perm)
        factor = 1 / scalar(divisor) if node.op == "Div" else scalar(divisor)
        if not close(factor * height * width, 1.0):
            return False
        out = reader.shape(node.outputs[0])
        if len(out) == 2:
            perm = VECTOR
        elif len(out) == 4 and out[1:] in ((1, 1, channels), (channels, 1, 1)):
            perm = x.perm if not chain else (NHWC if out[3] == channels else NCHW)
        else:
            return False
        gap = reader.emit([summed, *chain, node], "gap", {"keepdims": len(out) == 4}, [x], perm=perm)
        reader.output(node, gap)
        return True
    return False


def _standardize(reader: Reader, node: OnnxNode) -> bool:
    """(x - mean) / std with a fixed value per channel (Keras' Normalization, torchvision-style input
    normalization in the graph): `normalize`."""
    centered = reader.graph.maker(node.inputs[0])
    scale = node.inputs[1]
    if centered is None or centered.op != "Sub" or not reader.graph.is_weight(scale):
        return False
    x = reader.values.get(centered.inputs[0])
    mean = centered.inputs[1]
    if not isinstance(x, Stream) or not reader.graph.is_weight(mean) or not reader.only_reader(node.inputs[0], node):
        return False
    if not all(_per_channel(reader, x, centered.inputs[0], reader.graph.weight_shape(t) or ()) for t in (mean, scale)):
        return False
    reader.output(node, reader.emit([node, centered], "normalize", {}, [x]))
    return True


# --- shapes ---------------------------------------------------------------------------------------


def _to_vector(reader: Reader, node: OnnxNode, x: Stream) -> None:
    """A 4-D tensor made a vector per example (Flatten, Reshape to (N, -1), Squeeze of a 1x1 map).
    After a global pooling that keeps 1x1 (and is read only here), the pooling without keepdims."""
    if x.perm == VECTOR:
        reader.output(node, x)
        return
    if x.perm == PIXELS:
        raise Refusal(f"`{node.op}` of an image's pixels moved into the batch axis")
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
    shuffle, `shuffle G`. Reshape, Expand and Reshape of each axis: a nearest `upsample`. An image's
    pixels into the batch axis and back, around a Dense (jax2onnx). A pooled vector back to 1x1 (the
    pooling kept its dims). Other reshapes have no spec layer."""
    out = reader.shape(node.outputs[0])
    if _channel_shuffle(reader, node) or _repeat(reader, node):
        return
    x = reader.stream(node)
    shape = reader.shape(node.inputs[0])
    target = reader.constant(node, 1)
    merges_batch = target is not None and target.size == 2 and int(target.reshape(-1)[0]) == -1
    if out == shape:
        reader.output(node, x)
    elif (
        x.perm == NHWC
        and out == (math.prod(shape[:3]), shape[3])
        and (shape[1] * shape[2] > 1 or merges_batch)  # a 1x1 image flattens the same either way
    ):
        reader.output(node, Stream(x.item, PIXELS, shape[1:3]))  # pixels into the batch axis: no spec line
    elif x.perm == PIXELS and out[1:3] == x.grid and len(out) == 4 and out[3] == shape[1]:
        reader.output(node, Stream(x.item, NHWC))
    elif len(out) == 2 and out[0] == shape[0]:
        _to_vector(reader, node, x)
    elif x.perm == VECTOR and len(out) == 4 and sorted(out[1:]) == [1, 1, shape[1]]:
        _unflatten(reader, node, x, out)
    else:
        raise Refusal(
            f"`Reshape` from {'x'.join(map(str, shape))} to {'x'.join(map(str, out))} (batch first) has no spec layer",
            hint="the spec reshapes only to a vector (`flatten`) and shuffles channels (`shuffle G`)",
        )


def _unflatten(reader: Reader, node: OnnxNode, x: Stream, out: tuple[int, ...]) -> None:
    """A vector of channels made 1x1xC again: the global pooling that made it, keeping its dims."""
    layer = reader.layer(x)
    if layer is None or "keepdims" not in layer[1] or not reader.only_reader(node.inputs[0], node):
        raise Refusal("`Reshape` of a vector into a 1x1 image; the spec keeps 1x1 only from `gap keepdims=true`")
    (source,) = reader.items[x.item].inputs
    perm = NCHW if out[1] != 1 else NHWC
    makers = [node] + [m for m in [reader.graph.maker(node.inputs[0])] if m is not None]
    reader.output(node, reader.emit(makers, layer[0], {"keepdims": True}, [Stream(source, perm)], perm=perm))


def _repeat(reader: Reader, node: OnnxNode) -> bool:
    """Reshape adding a 1 after an axis, Expand of it to F, Reshape merging the two: every value
    repeated F times along that axis (`jnp.repeat`). Along height or width it is a nearest `upsample`,
    and an upsample of an upsample (height, then width) is one."""
    expand = reader.graph.maker(node.inputs[0])
    if expand is None or expand.op != "Expand":
        return False
    opened = reader.graph.maker(expand.inputs[0])
    if opened is None or opened.op != "Reshape" or not isinstance(reader.values.get(opened.inputs[0]), Stream):
        return False
    x = reader.values[opened.inputs[0]]
    shape, opened_shape = reader.shape(opened.inputs[0]), reader.shape(opened.outputs[0])
    wide, out = reader.shape(expand.outputs[0]), reader.shape(node.outputs[0])
    axis = next((a for a in range(len(shape)) if opened_shape == (*shape[: a + 1], 1, *shape[a + 1 :])), None)
    if axis is None or len(x.perm) != 4 or x.perm[axis] not in (1, 2) or len(wide) != len(opened_shape):
        return False
    factor = wide[axis + 1]
    if wide != (*shape[: axis + 1], factor, *shape[axis + 1 :]) or out != (
        *shape[:axis],
        shape[axis] * factor,
        *shape[axis + 1 :],
    ):
        return False
    size = [1, 1]
    size[x.perm[axis] - 1] = factor
    layer = reader.layer(x)
    makers = [node, expand, opened]
    nearest = layer is not None and layer[0] == "upsample" and layer[1].get("method", "nearest") == "nearest"
    if nearest and reader.only_reader(opened.inputs[0], opened):  # fold into the upsample before it
        earlier = layer[1]["size"]
        size = [size[0] * earlier[0], size[1] * earlier[1]]
        (source,) = reader.items[x.item].inputs
        x = Stream(source, x.perm)
    reader.output(node, reader.emit(makers, "upsample", {"size": tuple(size)}, [x]))
    return True


@reads("Expand")
def expand(reader: Reader, node: OnnxNode) -> None:
    """A broadcast the spec does by itself: to the same shape (a no-op), or of a gate into the Mul it
    scales by (the spec's `multiply` broadcasts 1x1xC)."""
    x = reader.stream(node)
    same = reader.shape(node.outputs[0]) == reader.shape(node.inputs[0])
    if same or all(n.op == "Mul" for n in reader.graph.readers_of(node.outputs[0])):
        reader.output(node, x)
        return
    raise Refusal("`Expand` copies values to a larger shape; the spec has no such layer")


@reads("Max", "Min")
def max_min(reader: Reader, node: OnnxNode) -> None:
    """max(x, 0) is `relu`, min(relu(x), 6) `relu6` (jax.nn.relu6 as jax2onnx writes it)."""
    position = 0 if reader.is_stream(node, 0) else 1
    x = reader.stream(node, position)
    bound = reader.constant(node, 1 - position) if len(node.inputs) == 2 else None
    if bound is None or bound.size != 1:
        raise Refusal(f"`{node.op}` of two computed tensors has no spec layer")
    limit = scalar(bound)
    layer = reader.layer(x)
    if node.op == "Max" and limit == 0:
        reader.output(node, reader.emit(node, "relu", {}, [x]))
        return
    relu = layer is not None and layer[0] == "relu" and reader.only_reader(node.inputs[position], node)
    if node.op == "Min" and limit == 6 and relu:
        (source,) = reader.items[x.item].inputs
        maker = reader.graph.maker(node.inputs[position])
        reader.output(node, reader.emit([maker, node], "relu6", {}, [Stream(source, x.perm, x.grid)]))
        return
    raise Refusal(f"`{node.op}` with {limit:g}; the spec has relu (max with 0) and relu6 (then min with 6)")


def _channel_shuffle(reader: Reader, node: OnnxNode) -> bool:
    """Reshape splitting the channels into (G, C/G), Transpose swapping the two, Reshape back, ending
    at `node`: PyTorch's (N, G, C/G, H, W) with perm (0, 2, 1, 3, 4), or the channels-last
    (N, H, W, G, C/G) with perm (0, 1, 2, 4, 3)."""
    transpose = reader.graph.maker(node.inputs[0])
    if transpose is None or transpose.op != "Transpose":
        return False
    split = reader.graph.maker(transpose.inputs[0])
    if split is None or split.op != "Reshape":
        return False
    value = reader.values.get(split.inputs[0])
    if not isinstance(value, Stream) or len(value.perm) != 4:
        return False
    shape, grouped, out = reader.shape(split.inputs[0]), reader.shape(split.outputs[0]), reader.shape(node.outputs[0])
    axis = value.perm.index(3)  # the ONNX axis holding the channels
    groups = grouped[axis] if len(grouped) == 5 else 0
    swapped = list(range(5))
    swapped[axis], swapped[axis + 1] = axis + 1, axis
    if (
        out != shape
        or not groups
        or grouped != (*shape[:axis], groups, shape[axis] // groups, *shape[axis + 1 :])
        or tuple(transpose.attr("perm", ())) != tuple(swapped)
    ):
        return False
    reader.output(node, reader.emit([node, transpose, split], "shuffle", {"groups": groups}, [value]))
    return True


@reads("Transpose")
def transpose(reader: Reader, node: OnnxNode) -> None:
    """Moves axes without computing: the tensor's layout record changes, no spec line."""
    x = reader.stream(node, pending=True)
    order = tuple(node.attr("perm", tuple(reversed(range(len(x.perm))))))
    if len(order) != len(x.perm):
        raise Refusal(f"`Transpose` of {len(order)} axes of a {len(x.perm)}-D tensor")
    perm = tuple(x.perm[axis] for axis in order)
    if perm[0] != 0:
        raise Refusal("`Transpose` that moves the batch axis has no spec layer")
    reader.output(node, Stream(x.item, perm, pending=x.pending))


@reads("Identity", "Cast")
def identity(reader: Reader, node: OnnxNode) -> None:
    reader.output(node, reader.stream(node, pending=True))


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
    channel_axis = x.rank - 1
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
    """Zeros around the height and width: `zeropad`; negative pads cut: `crop`. Padding with -inf is
    taken in by the max pooling after it."""
    x = reader.stream(node, pending=True)
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
    fill = 0.0 if fill is None else scalar(fill)
    if fill not in (0.0, -math.inf):
        raise Refusal(f"`Pad` with the value {fill:g}; the spec pads with zeros")
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
    if fill == -math.inf and min(sides) >= 0:  # for the max pooling after it
        pending = tuple(a + b for a, b in zip(sides, x.pending or (0, 0, 0, 0)))
        reader.output(node, Stream(x.item, x.perm, x.grid, pending))
        return
    if fill == -math.inf:
        raise Refusal("`Pad` with -inf that cuts; the spec pads with -inf only inside `maxpool`")
    if x.pending:
        raise Refusal("`Pad` with zeros after a Pad with -inf; the spec pads with -inf only inside `maxpool`")
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
    shape, out = reader.shape(node.inputs[0]), reader.shape(node.outputs[0])
    if len(x.perm) != 4:
        raise Refusal(f"`{node.op}` of a {len(shape)}-D tensor; the spec's `upsample` grows images")
    factors = {x.perm[axis]: (after, before) for axis, (before, after) in enumerate(zip(shape, out))}
    if any(after != before for axis, (after, before) in factors.items() if axis not in (1, 2)):
        raise Refusal(f"`{node.op}` of the batch or channel axis has no spec layer")
    if any(after % before or after < before for axis, (after, before) in factors.items() if axis in (1, 2)):
        shown = " and ".join(f"{before} to {after}" for axis, (after, before) in sorted(factors.items()) if axis)
        raise Refusal(f"`{node.op}` from {shown}; the spec's `upsample` grows by whole factors")
    size = (factors[1][0] // factors[1][1], factors[2][0] // factors[2][1])
    mode = node.attr("mode", "nearest")
    coordinates = node.attr("coordinate_transformation_mode", "half_pixel" if node.op == "Resize" else "asymmetric")
    rounding = node.attr("nearest_mode", "round_prefer_floor")
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
    if _gate(reader, node) or _erf_gelu(reader, node) or _mean_of_sum(reader, node) or _standardize(reader, node):
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
    channel = x.perm.index(x.rank - 1)
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
    if node.op == "Div" and (_mean_of_sum(reader, node) or _standardize(reader, node)):
        return
    if reader.is_stream(node, 0) and reader.is_stream(node, 1):
        raise Refusal(f"`{node.op}` of two computed tensors has no spec layer")
    _by_constant(reader, node, node.op)
