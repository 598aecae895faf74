"""The walk over an ONNX graph that turns its nodes into spec layers, and what the per-operator
readers (`archspec.interop.onnx_ops`) use: the layout of every tensor, its constants, refusals.

Layouts: the reader tracks, for every tensor, which axis of the spec's (batch, H, W, C) tensor each
ONNX axis holds. A Transpose only changes that record (ConvNeXt's permutes to channels-last and
back write no line), and each operator checks that the axes it works on are the ones the spec layer
works on (a Concat on axis 1 of an NCHW tensor is a concat of channels).

Refusals are lazy: a node the spec cannot say is an error only if the output depends on it (a
Reshape to 5-D alone is refused, but inside a channel shuffle it is read as `shuffle G`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archspec.errors import Span, SpecError
from archspec.interop.graph_text import Item
from archspec.interop.onnx_graph import OnnxGraph, OnnxNode
from archspec.interop.onnx_layout import NCHW, input_layout
from archspec.interop.spec_lines import spec_line

VECTOR = (0, 1)
# A (batch * H * W, C) matrix: an image with its pixels moved into the batch axis (jax2onnx writes a
# Dense on an image so, between two Reshapes). Its `grid` records the image's (H, W).
PIXELS = (0, 3)


def node_span(graph: OnnxGraph, index: int | None) -> Span:
    """A node's place in the listing: its line, op and name underlined."""
    node = graph.nodes[index or 0]
    return Span(node.number, 1, len(node.op_name) + len(node.name) + 2)


# --- values -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """A tensor the spec computes: the item (spec layer) that makes it, and its layout."""

    item: int
    perm: tuple[int, ...]  # ONNX axis i of this tensor is axis perm[i] of the spec's tensor, batch first
    grid: tuple[int, ...] = ()  # the (H, W) of a PIXELS matrix
    # (top, bottom, left, right) of -inf padding not yet applied: a max pooling after it takes it in
    # (jax2onnx writes a max pooling's padding as a Pad of -inf)
    pending: tuple[int, ...] = ()

    @property
    def rank(self) -> int:
        """The rank of the spec's tensor, batch included."""
        return 4 if self.perm == PIXELS else len(self.perm)


class Refusal(Exception):
    """A node the spec cannot say, with why."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Refused:
    """The value of every tensor that depends on a refused node: the first refusal on its way."""

    node: OnnxNode
    refusal: Refusal


class _Propagated(Exception):
    def __init__(self, refused: Refused) -> None:
        super().__init__(refused.refusal.message)
        self.refused = refused


Handler = Callable[["Reader", OnnxNode], None]
HANDLERS: dict[str, Handler] = {}


def reads(*ops: str):
    def register(function: Handler) -> Handler:
        for op in ops:
            HANDLERS[op] = function
        return function

    return register


# --- the walk -----------------------------------------------------------------------------------


class Reader:
    def __init__(self, graph: OnnxGraph) -> None:
        self.graph = graph
        self.items: list[Item] = []
        self.layers: list[tuple[str, dict] | None] = []  # each item's kind and attrs (None: a merge or the input)
        self.values: dict[str, Stream | Refused] = {}

    def run(self) -> int:
        graph = self.graph
        shape = graph.shape(graph.input)
        perm = VECTOR if len(shape) == 2 else input_layout(graph)
        input_shape = spec_shape(shape, perm)
        item = self._add(Item(spec_line("input", {"shape": input_shape}), (), None, "", tensor=graph.input), None)
        self.values[graph.input] = Stream(item, perm)
        for node in graph.nodes:
            if all(name in graph.constants or name in graph.weights for name in node.outputs):
                continue  # computed from constants alone: already folded
            if not any(self._is_stream(name) for name in node.inputs if name):
                self._weight_from(node)
                continue
            try:
                handler = HANDLERS.get(node.op if node.domain in ("", "ai.onnx") else node.op_name)
                if handler is None:
                    raise Refusal(
                        f"`{node.op_name}` is not a layer the spec language has",
                        hint="docs/interop.md lists the ONNX operators cnn-arch reads",
                    )
                handler(self, node)
            except _Propagated as propagated:
                self._set_all(node, propagated.refused)
            except Refusal as refusal:
                self._set_all(node, Refused(node, refusal))
        value = self.values.get(graph.output)
        if isinstance(value, Refused):
            raise self._error(value)
        if value is None:
            raise SpecError("the model's output does not depend on its input", node_span(graph, None))
        return value.item

    def _is_stream(self, name: str) -> bool:
        return name in self.values

    def _weight_from(self, node: OnnxNode) -> None:
        """A node computing from weights only (a Transpose of a weight): its outputs are weights too."""
        for name in node.outputs:
            shape = self.graph.shape(name)
            if shape is not None and None not in shape:
                self.graph.weights[name] = shape  # type: ignore[assignment]

    def _error(self, refused: Refused) -> SpecError:
        node = refused.node
        where = f"node {node.number}" + (f", `{node.label}`" if node.label else "")
        return SpecError(
            f"{refused.refusal.message} ({where})",
            node_span(self.graph, node.index),
            hint=refused.refusal.hint,
            source=self.graph.listing(),
        )

    # --- what handlers use -----------------------------------------------------------------------

    def _add(self, item: Item, layer: tuple[str, dict] | None) -> int:
        self.items.append(item)
        self.layers.append(layer)
        return len(self.items) - 1

    def _set_all(self, node: OnnxNode, value: Stream | Refused) -> None:
        for name in node.outputs:
            if name:
                self.values[name] = value

    def stream(self, node: OnnxNode, position: int = 0, pending: bool = False) -> Stream:
        """Input `position` of `node`, a tensor computed from the image. A tensor padded with -inf is
        for a max pooling (`pending`) only."""
        name = node.inputs[position] if position < len(node.inputs) else ""
        value = self.values.get(name)
        if isinstance(value, Refused):
            raise _Propagated(value)
        if value is None:
            raise Refusal(f"`{node.op}` reads a fixed tensor `{name}` where the spec layer reads the image's data")
        if value.pending and not pending:
            raise Refusal(f"`{node.op}` reads a tensor padded with -inf; the spec pads so only inside `maxpool`")
        return value

    def streams(self, node: OnnxNode) -> list[Stream]:
        return [self.stream(node, i) for i in range(len(node.inputs))]

    def is_stream(self, node: OnnxNode, position: int) -> bool:
        return position < len(node.inputs) and node.inputs[position] in self.values

    def constant(self, node: OnnxNode, position: int):
        """The value of input `position` when the file holds it (shape vectors, scalars), else None."""
        if position >= len(node.inputs):
            return None
        return self.graph.constant(node.inputs[position])

    def weight_shape(self, node: OnnxNode, position: int, what: str) -> tuple[int, ...]:
        """The dims of input `position`, a weight of the file; refused when it is computed."""
        name = node.inputs[position] if position < len(node.inputs) else ""
        shape = self.graph.weight_shape(name) if name else None
        if shape is None:
            raise Refusal(f"`{node.op}` takes its {what} from a computed tensor; the spec's layers hold their own")
        return shape

    def has_input(self, node: OnnxNode, position: int) -> bool:
        return position < len(node.inputs) and bool(node.inputs[position])

    def shape(self, name: str) -> tuple[int, ...]:
        shape = self.graph.shape(name)
        if shape is None or None in shape:
            raise Refusal(f"the size of tensor `{name}` is unknown (ONNX shape inference could not work it out)")
        return shape  # type: ignore[return-value]

    def spec_axis(self, node: OnnxNode, stream: Stream, axis: int) -> int:
        """The spec axis an ONNX `axis` (negative counts from the end) of a tensor is."""
        rank = len(stream.perm)
        if not -rank <= axis < rank:
            raise Refusal(f"`{node.op}` axis {axis} is outside a {rank}-D tensor")
        return stream.perm[axis % rank]

    def is_channels(self, stream: Stream, spec_axis: int) -> bool:
        return spec_axis == stream.rank - 1

    def need_nchw(self, node: OnnxNode, stream: Stream) -> None:
        if stream.perm != NCHW:
            shape = "x".join(map(str, self.shape(node.inputs[0])))
            raise Refusal(
                f"`{node.op}` needs an NxCxHxW image tensor; its input is {shape}"
                + (" in another layout (after a Transpose)" if len(stream.perm) == 4 else "")
            )

    def emit(
        self,
        node: OnnxNode | list[OnnxNode],
        kind: str,
        attrs: dict,
        inputs: list[Stream],
        perm: tuple[int, ...] | None = None,
    ) -> Stream:
        """A spec layer made by `node` (or a pattern of nodes, the last one first), reading `inputs`."""
        nodes = node if isinstance(node, list) else [node]
        first = nodes[0]
        merge = kind in MERGE_KINDS
        text = kind if merge else spec_line(kind, attrs)
        comment = f"node {first.number}: {first.op}" + (f" {first.label}" if first.label else "")
        if len(nodes) > 1:
            comment += " (with " + ", ".join(f"{n.op} node {n.number}" for n in nodes[1:]) + ")"
        tensor = first.outputs[0] if first.outputs else ""
        item = Item(text, tuple(s.item for s in inputs), first.index, comment, merge=merge, tensor=tensor)
        index = self._add(item, None if merge else (kind, attrs))
        return Stream(index, inputs[0].perm, inputs[0].grid) if perm is None else Stream(index, perm)

    def output(self, node: OnnxNode, value: Stream, position: int = 0) -> None:
        self.values[node.outputs[position]] = value

    def layer(self, stream: Stream) -> tuple[str, dict] | None:
        return self.layers[stream.item]

    def only_reader(self, tensor: str, node: OnnxNode) -> bool:
        """Whether `node` is the one node reading `tensor` (so a pattern may absorb what makes it)."""
        return [n.index for n in self.graph.readers_of(tensor)] == [node.index] and tensor != self.graph.output


MERGE_KINDS = frozenset({"add", "concat", "multiply"})


def spec_shape(onnx_shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[int, ...]:
    """The spec's shape (batch left out) of an ONNX tensor of layout `perm`."""
    spec = [0] * len(perm)
    for axis, size in enumerate(onnx_shape):
        spec[perm[axis]] = size
    return tuple(spec[1:])


def scalar(value) -> float:
    return float(value.reshape(-1)[0]) if hasattr(value, "reshape") else float(value)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))
