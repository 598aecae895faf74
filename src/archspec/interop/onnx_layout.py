"""Which layout an ONNX model's image input has: NCHW (PyTorch, most exporters) or NHWC (Keras,
TensorFlow and Flax exports, jax2onnx). The file does not say; the operators reading the input do.
The first node that fixes the channel axis, following the input through nodes that keep its
layout, decides (a Conv is NCHW by definition, a Transpose to (0, 3, 1, 2) means the input was
NHWC, a Concat on axis 3 joins NHWC channels). A graph with no such node (element-wise only) is
read with its two equal dimensions as height and width."""

from __future__ import annotations

from archspec.interop.onnx_graph import GraphNode, OnnxGraph

NCHW = (0, 3, 1, 2)  # ONNX axis i holds axis NCHW[i] of the spec's (batch, H, W, C) tensor
NHWC = (0, 1, 2, 3)

# Operators defined on NCHW tensors: axis 1 is their channel axis.
CHANNELS_FIRST = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "MaxPool",
        "AveragePool",
        "LpPool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "BatchNormalization",
        "InstanceNormalization",
        "GroupNormalization",
        "LRN",
        "DepthToSpace",
        "SpaceToDepth",
    }
)
# Nodes after which the input's layout is no longer known from its own (they move axes).
MOVES_AXES = frozenset({"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Gather", "Shape", "Expand"})


def input_layout(graph: OnnxGraph) -> tuple[int, ...]:
    """NCHW or NHWC, for a 4-D input."""
    reached = {graph.input}
    for node in graph.nodes:
        inputs = [i for i in node.inputs if i in reached]
        if not inputs:
            continue
        vote = _vote(graph, node)
        if vote is not None:
            return vote
        if node.op not in MOVES_AXES:
            reached.update(node.outputs)
    _, a, b, c = graph.shape(graph.input)
    return NHWC if a == b != c else NCHW


def _axes(graph: OnnxGraph, node: GraphNode, position: int) -> set[int] | None:
    values = node.attr("axes")
    if values is None and len(node.inputs) > position and node.inputs[position]:
        constant = graph.constant(node.inputs[position])
        values = None if constant is None else constant.reshape(-1).tolist()
    return None if values is None else {int(v) % 4 for v in values}


def _vote(graph: OnnxGraph, node: GraphNode) -> tuple[int, ...] | None:
    """What a node reading the input (or a tensor in its layout) says of that layout, if anything."""
    if node.op in CHANNELS_FIRST:
        return NCHW
    if node.op == "Transpose":
        perm = tuple(node.attr("perm", ()))
        return {NCHW: NHWC, (0, 2, 3, 1): NCHW}.get(perm)
    if node.op in ("LayerNormalization", "MatMul"):  # both work on the last axis: the channels
        return NHWC if node.op == "MatMul" or node.attr("axis", -1) % 4 == 3 else None
    if node.op in ("Concat", "Split", "Softmax", "LogSoftmax"):
        axis = node.attr("axis")
        return {1: NCHW, 3: NHWC}.get(axis % 4) if axis is not None else None
    if node.op.startswith("Reduce"):
        axes = _axes(graph, node, 1)
        return {frozenset({2, 3}): NCHW, frozenset({1}): NCHW, frozenset({1, 2}): NHWC, frozenset({3}): NHWC}.get(
            frozenset(axes or ())
        )
    if node.op == "Slice":
        axes = _axes(graph, node, 3)
        return {frozenset({1}): NCHW, frozenset({3}): NHWC}.get(frozenset(axes or ()))
    if node.op in ("Resize", "Upsample"):  # the axes it grows are height and width
        before, after = graph.shape(node.inputs[0]), graph.shape(node.outputs[0])
        grown = frozenset(i for i, (b, a) in enumerate(zip(before or (), after or ())) if a != b)
        return {frozenset({2, 3}): NCHW, frozenset({1, 2}): NHWC}.get(grown)
    return None
