"""Static inference over the IR graph: per layer the output shape, parameters (trainable and
non-trainable, Keras conventions), MACs, receptive field and effective stride. No JAX, no weights.

A layer that cannot take its input (a pool larger than its input, a conv after `flatten`) is
reported at its spec line before anything is built. So are absurd sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archspec.ir import Graph, Node
from archspec.layers import GLOBAL, ShapeError, Window
from archspec.text import describe_shape

MAX_PARAMS = 10**10  # per layer and per model: far beyond any model that fits in memory
MAX_VALUES_PER_EXAMPLE = 2**31  # one layer's output for one example


@dataclass(frozen=True)
class LayerInfo:
    shape: tuple[int, ...]  # output shape without the batch dimension
    trainable: int
    non_trainable: int
    macs: int
    receptive_field: tuple[int, int] | None  # None: the layer sees the whole input
    stride: tuple[int, int]  # effective stride (jump) in input pixels

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def values(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class TypedGraph:
    """The IR graph with a `LayerInfo` per node (same index as the node id)."""

    graph: Graph
    infos: tuple[LayerInfo, ...]

    @property
    def trainable(self) -> int:
        return sum(i.trainable for i in self.infos)

    @property
    def non_trainable(self) -> int:
        return sum(i.non_trainable for i in self.infos)

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def macs(self) -> int:
        return sum(i.macs for i in self.infos)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.infos[0].shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.infos[-1].shape

    def activation_values(self) -> int:
        """Values every layer outputs for one example: what training keeps for the backward pass."""
        return sum(i.values for i in self.infos)

    def info(self, node: Node) -> LayerInfo:
        return self.infos[node.id]


def infer(graph: Graph) -> TypedGraph:
    """Type every node of `graph`. Raises `SpecError` at the first layer that cannot be built."""
    infos: list[LayerInfo] = []
    total = 0
    for node in graph.nodes:
        info = _infer_node(graph, node, [infos[i] for i in node.inputs])
        total += info.params
        if total > MAX_PARAMS:
            raise graph.error(
                node,
                f"the model passes {MAX_PARAMS:.0e} parameters here ({total:,})",
                hint="a model this size cannot be trained; check the layer sizes",
            )
        infos.append(info)
    return TypedGraph(graph, tuple(infos))


def infer_partial(graph: Graph) -> tuple[tuple[LayerInfo | None, ...], list]:
    """Type what can be typed of a graph expanded with recovery (`archspec.expand.expand_recovering`):
    a node reading an unknown input has no info (None), and one that cannot be built has none either,
    its error recorded; every other node is typed as `infer` types it. Returns (infos, errors)."""
    from archspec.errors import SpecError

    infos: list[LayerInfo | None] = []
    errors = []
    total = 0
    for node in graph.nodes:
        inputs = [infos[i] if i >= 0 else None for i in node.inputs]
        info = None
        if None not in inputs:
            try:
                info = _infer_node(graph, node, inputs)
            except SpecError as error:
                errors.append(error)
            else:
                total += info.params
                if total > MAX_PARAMS and total - info.params <= MAX_PARAMS:
                    errors.append(
                        graph.error(
                            node,
                            f"the model passes {MAX_PARAMS:.0e} parameters here ({total:,})",
                            hint="a model this size cannot be trained; check the layer sizes",
                        )
                    )
        infos.append(info)
    return tuple(infos), errors


def infer_node(node: Node, inputs: list[LayerInfo], source) -> LayerInfo:
    """One node typed from its inputs' infos: how the expander learns the current stream's shape
    (`channels`) while the graph is still growing. Errors are located at `node` as `infer`'s are."""
    return _infer_node(Graph((), (), source), node, inputs)


def _infer_node(graph: Graph, node: Node, inputs: list[LayerInfo]) -> LayerInfo:
    kind = node.layer
    shapes = [i.shape for i in inputs]
    try:
        shape = kind.output_shape(node.attrs, shapes)
    except ShapeError as error:
        raise graph.error(node, error.message, error.hint) from None
    if any(d < 1 for d in shape):
        raise graph.error(node, f"`{node.kind}` would output an empty tensor ({describe_shape(shape)})")
    if math.prod(shape) > MAX_VALUES_PER_EXAMPLE:
        raise graph.error(
            node,
            f"`{node.kind}` outputs {describe_shape(shape)} = {math.prod(shape):,} values "
            f"per example, more than {MAX_VALUES_PER_EXAMPLE:,}",
        )
    trainable, non_trainable = kind.param_count(node.attrs, shapes, shape)
    if trainable + non_trainable > MAX_PARAMS:
        raise graph.error(
            node,
            f"`{node.label}` has {trainable + non_trainable:,} parameters, more than {MAX_PARAMS:.0e}",
            hint="is a `flatten` feeding a huge `dense`? global pooling (`gap`) fixes that",
        )
    rf, stride = _receptive_field(node, kind.window(node.attrs), inputs, shape)
    return LayerInfo(shape, trainable, non_trainable, kind.macs(node.attrs, shapes, shape), rf, stride)


def _receptive_field(node: Node, window, inputs: list[LayerInfo], shape):
    if not inputs:  # the input layer: one pixel sees itself
        return ((1, 1) if len(shape) == 3 else None), (1, 1)
    if any(i.receptive_field is None for i in inputs) or window == GLOBAL:
        return None, max(i.stride for i in inputs)
    rf = tuple(max(i.receptive_field[axis] for i in inputs) for axis in (0, 1))
    jump = tuple(max(i.stride[axis] for i in inputs) for axis in (0, 1))
    if isinstance(window, Window):
        rf = tuple(rf[a] + window.dilation[a] * (window.kernel[a] - 1) * jump[a] for a in (0, 1))
        jump = tuple(jump[a] * window.stride[a] for a in (0, 1))
    return rf, jump
