"""The walk over an ONNX graph that turns its nodes into spec layers.

What a node means is its layer kind's to say: each kind lists the ONNX op types it reads
(`LayerKind.onnx_ops`) and turns a node into spec layers (`LayerKind.read_onnx`, in the kind's
module). This module does what is the format's: it tracks layouts, hands kinds their nodes with
constants and dims, finds patterns, and moves tensors that no layer computes.

Layouts: for every tensor the walk records which axis of the spec's (batch, H, W, C) tensor each ONNX
axis holds. A Transpose only changes that record (ConvNeXt's permutes to channels-last and back
write no line); a kind checks that the axes its op works on are the ones its layer works on.

Patterns: from each node the walk follows the chain of nodes that read only the previous one's
output (and constants, or the chain's own input: Sigmoid then Mul(x, sigmoid(x))), and offers the
longest chain first to the kinds claiming the first op, then shorter ones: Sigmoid·Mul is `silu`,
Div·Erf·Add·Mul·Mul GELU, Conv then Add of a per-channel constant a conv with bias, a global pool
then Flatten `gap`. A chain no kind takes is read node by node.

Refusals are lazy: a node no kind reads is an error only if the output depends on it (a 5-D
Reshape alone is refused, but inside a channel shuffle it is read as `shuffle G`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archspec.errors import Span, SpecError
from archspec.interop.graph_text import Item
from archspec.interop.onnx_graph import GraphNode, OnnxGraph
from archspec.interop.onnx_layout import NCHW, NHWC, input_layout
from archspec.layers import REGISTRY
from archspec.layers.base import OnnxNode, ReadNode, Untranslatable
from archspec.layers.onnx_attrs import OtherKind

VECTOR = (0, 1)
# A (batch * H * W, C) matrix: an image with its pixels moved into the batch axis (jax2onnx writes a
# Dense on an image so, between two Reshapes). Its `grid` records the image's (H, W).
PIXELS = (0, 3)
LONGEST_PATTERN = 8  # nodes in a chain offered to the kinds (GELU's is 5, with transposes between)
PASSING = frozenset({"Identity", "Cast"})  # nodes that move a tensor without changing it


def node_span(graph: OnnxGraph, index: int | None) -> Span:
    """A node's place in the listing: its line, op and name underlined."""
    node = graph.nodes[index or 0]
    return Span(node.number, 1, len(node.op_name) + len(node.name) + 2)


@dataclass(frozen=True)
class Stream:
    """A tensor the spec computes: the item (spec layer) that makes it, and its layout."""

    item: int
    perm: tuple[int, ...]  # ONNX axis i of this tensor is axis perm[i] of the spec's tensor, batch first
    grid: tuple[int, ...] = ()  # the (H, W) of a PIXELS matrix


class Refusal(Exception):
    """A node the spec cannot say, with why."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Refused:
    """The value of every tensor that depends on a refused node: the first refusal on its way."""

    node: GraphNode
    refusal: Refusal


class _Propagated(Exception):
    def __init__(self, refused: Refused) -> None:
        super().__init__(refused.refusal.message)
        self.refused = refused


def _claims() -> dict[str, list]:
    """Op type -> the kinds that read it, in registry order."""
    claims: dict[str, list] = {}
    for kind in REGISTRY.values():
        for op in kind.onnx_ops:
            claims.setdefault(op, []).append(kind)
    return claims


class Reader:
    def __init__(self, graph: OnnxGraph) -> None:
        self.graph = graph
        self.items: list[Item] = []
        self.layers: list[tuple[str, dict] | None] = []  # each item's kind and attrs (None: a merge)
        self.values: dict[str, Stream | Refused] = {}
        self.claims = _claims()
        self.taken: set[int] = set()  # nodes read as part of a pattern that began earlier

    def run(self) -> int:
        graph = self.graph
        shape = graph.shape(graph.input)
        perm = VECTOR if len(shape) == 2 else input_layout(graph)
        contract = OnnxNode("", {}, (None,), graph.input, dims=(shape,), layout=perm, streams=(0,))
        ((kind, attrs),) = REGISTRY["input"].read_onnx(contract, [])
        item = self._add(Item(REGISTRY[kind].spec_text(attrs), (), None, "", tensor=graph.input), (kind, attrs))
        self.values[graph.input] = Stream(item, perm)
        for node in graph.nodes:
            if node.index in self.taken:
                continue
            if all(name in graph.constants or name in graph.weights for name in node.outputs):
                continue  # computed from constants alone: already folded
            if not any(name in self.values for name in node.inputs if name):
                self._weight_from(node)
                continue
            if node.op == "Gather" and self._gathers_in_order(node):
                continue  # looks past the Reshape before it, which is refused on its own
            try:
                self._read(node)
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

    def _weight_from(self, node: GraphNode) -> None:
        """A node computing from weights only (a Transpose of a weight): its outputs are weights too."""
        for name in node.outputs:
            shape = self.graph.shape(name)
            if shape is not None and None not in shape:
                self.graph.weights[name] = shape  # type: ignore[assignment]
            if any(i in self.graph.parameters for i in node.inputs):
                self.graph.parameters.add(name)

    def _error(self, refused: Refused) -> SpecError:
        node = refused.node
        where = f"node {node.number}" + (f", `{node.label}`" if node.label else "")
        return SpecError(
            f"{refused.refusal.message} ({where})",
            node_span(self.graph, node.index),
            hint=refused.refusal.hint,
            source=self.graph.listing(),
        )

    def _add(self, item: Item, layer: tuple[str, dict] | None) -> int:
        self.items.append(item)
        self.layers.append(layer)
        return len(self.items) - 1

    def _set_all(self, node: GraphNode, value: Stream | Refused) -> None:
        for name in node.outputs:
            if name:
                self.values[name] = value

    # --- reading one node (and the pattern it may begin) ------------------------------------------

    def _streams(self, node: GraphNode) -> list[tuple[int, Stream]]:
        """The computed inputs of `node` with their positions; a refused one stops the node."""
        found = []
        for position, name in enumerate(node.inputs):
            value = self.values.get(name) if name else None
            if isinstance(value, Refused):
                raise _Propagated(value)
            if value is not None:
                found.append((position, value))
        return found

    def _read(self, node: GraphNode) -> None:
        streams = self._streams(node)
        claimers = self.claims.get(node.op if node.domain in ("", "ai.onnx") else node.op_name, [])
        refusals: list[Untranslatable] = []
        if claimers:
            chain = self._chain(node, streams)
            for end in range(len(chain), 0, -1):
                if end > 1 and chain[end - 1].op in PASSING | {"Transpose"}:
                    continue  # a pattern ends at a node that computes
                read = self._offer(claimers, chain[:end], streams, refusals)
                if read is not None:
                    self._emit(chain[:end], read, streams)
                    self.taken.update(n.index for n in chain[1:end])
                    return
        if self._move(node, streams):
            return
        raise self._refusal(node, claimers, refusals)

    def _refusal(self, node: GraphNode, claimers: list, refusals: list[Untranslatable]) -> Refusal:
        real = [r for r in refusals if not isinstance(r, OtherKind)]
        if real:
            return Refusal(real[-1].message, real[-1].hint)
        if claimers:
            reasons = "; ".join(dict.fromkeys(r.message for r in refusals))
            return Refusal(f"`{node.op_name}` in this form is no spec layer ({reasons})")
        return Refusal(
            f"`{node.op_name}` is not a layer the spec language has",
            hint="docs/interop.md lists the ONNX operators cnn-arch reads",
        )

    def _chain(self, node: GraphNode, streams: list[tuple[int, Stream]]) -> list[GraphNode]:
        """`node` and the nodes after it that each read only the previous one's output, constants, or
        the chain's own input (the x of x * sigmoid(x))."""
        graph = self.graph
        source = node.inputs[streams[0][0]] if len(streams) == 1 else None
        chain, current = [node], node
        while len(chain) < LONGEST_PATTERN and len(current.outputs) == 1:
            out = current.outputs[0]
            readers = graph.readers_of(out)
            if out == graph.output or len(readers) != 1:
                break
            after = readers[0]
            others = [i for i in after.inputs if i and i != out]
            if not all(graph.is_weight(i) or (source is not None and i == source) for i in others):
                break
            chain.append(after)
            current = after
        return chain

    def _offer(
        self, claimers: list, chain: list[GraphNode], streams: list, refusals: list
    ) -> tuple[list[ReadNode], tuple[int, ...], tuple[int, ...]] | None:
        """The first kind's reading of the pattern `chain`, with the layout and grid of its output."""
        contract, perm, grid = self._contract(chain, streams)
        inputs = [self._spec_shape(node_name, value) for node_name, value in self._named(chain[0], streams)]
        for kind in claimers:
            try:
                read = kind.read_onnx(contract, inputs)
            except Untranslatable as refusal:
                refusals.append(refusal)
                continue
            except (TypeError, ValueError, KeyError, IndexError) as error:  # a malformed node (a damaged file)
                refusals.append(
                    Untranslatable(None, f"`{chain[0].op}` cannot be read: {type(error).__name__}: {error}")
                )
                continue
            return read, perm, grid
        return None

    def _named(self, node: GraphNode, streams: list) -> list[tuple[str, Stream]]:
        return [(node.inputs[position], value) for position, value in streams]

    def _contract(self, chain: list[GraphNode], streams: list) -> tuple[OnnxNode, tuple[int, ...], tuple[int, ...]]:
        """The chain as the kinds see it: its first node with the others (Transposes and Identities
        left out, their layouts applied) as `fused`; and the layout after the chain."""
        perm, grid = streams[0][1].perm, streams[0][1].grid
        nodes = []
        for node in chain:
            if node is not chain[0] and node.op in PASSING:
                continue
            if node is not chain[0] and node.op == "Transpose" and len(node.attr("perm", ())) == len(perm):
                perm = tuple(perm[a] for a in node.attr("perm"))
                continue
            nodes.append(self._onnx_node(node, perm))
        last = chain[-1]
        rank = len(self.graph.shape(last.outputs[0]) or ())
        if rank == 2:
            perm = PIXELS if perm == PIXELS else VECTOR
        elif rank == 4 and len(perm) != 4:
            dims = self.graph.shape(last.outputs[0])
            perm = NHWC if dims[3] != 1 or dims[1] == 1 else NCHW
        first = nodes[0]
        contract = OnnxNode(
            first.op_type,
            first.attributes,
            first.constants,
            first.name,
            tuple(nodes[1:]),
            first.dims,
            first.out_dims,
            first.layout,
            first.streams,
            first.learned,
        )
        return contract, perm, grid if perm == PIXELS else ()

    def _onnx_node(self, node: GraphNode, perm: tuple[int, ...]) -> OnnxNode:
        graph = self.graph
        dims = tuple((graph.weight_shape(i) or graph.shape(i)) if i else None for i in node.inputs)
        return OnnxNode(
            node.op,
            node.attrs,
            tuple(graph.constant(i) for i in node.inputs),
            node.label,
            dims=dims,  # type: ignore[arg-type]
            out_dims=tuple(graph.shape(o) or () for o in node.outputs),  # type: ignore[misc]
            layout=perm,
            streams=tuple(p for p, i in enumerate(node.inputs) if i and not graph.is_weight(i)),
            learned=tuple(p for p, i in enumerate(node.inputs) if i in graph.parameters),
        )

    def _spec_shape(self, name: str, value: Stream) -> tuple[int, ...]:
        """The spec's shape (batch left out) of a computed tensor."""
        dims = self.shape(name)
        if value.perm == PIXELS:
            return (*value.grid, dims[1])
        spec = [0] * len(value.perm)
        for axis, size in enumerate(dims):
            spec[value.perm[axis]] = size
        return tuple(spec[1:])

    def shape(self, name: str) -> tuple[int, ...]:
        shape = self.graph.shape(name)
        if shape is None or None in shape:
            raise Refusal(f"the size of tensor `{name}` is unknown (ONNX shape inference could not work it out)")
        return shape  # type: ignore[return-value]

    def _emit(self, chain: list[GraphNode], read: tuple, streams: list) -> None:
        """The kind's layers for the pattern `chain`: the first reads the streams, each next the one
        before; a node with several outputs (Split) gets one layer per output, each from the input."""
        nodes, perm, grid = read
        first, last = chain[0], chain[-1]
        inputs = [value.item for _, value in streams]
        comment = f"node {first.number}: {first.op}" + (f" {first.label}" if first.label else "")
        if len(chain) > 1:
            comment += " (with " + ", ".join(f"{n.op} node {n.number}" for n in chain[1:]) + ")"
        if len(last.outputs) > 1:
            for output, (kind, attrs) in zip(last.outputs, nodes):
                self.values[output] = Stream(self._item(kind, attrs, inputs, first, comment, output), perm, grid)
            return
        current = inputs
        for kind, attrs in nodes:
            current = [self._item(kind, attrs, current, first, comment, last.outputs[0])]
        if not nodes:  # an identity (a Concat of one tensor)
            current = [inputs[0]]
        self.values[last.outputs[0]] = Stream(current[0], perm, grid)

    def _item(self, kind: str, attrs: dict, inputs: list[int], node: GraphNode, comment: str, tensor: str) -> int:
        layer = REGISTRY[kind]
        merge = layer.family == "merge"
        item = Item(layer.spec_text(attrs), tuple(inputs), node.index, comment, merge=merge, tensor=tensor)
        return self._add(item, None if merge else (kind, attrs))

    # --- tensors moved, not computed ------------------------------------------------------------

    def _move(self, node: GraphNode, streams: list[tuple[int, Stream]]) -> bool:
        """Nodes that only move a tensor (no spec line): Identity and Cast, Transpose (a new layout),
        Expand to a shape the spec broadcasts, and Reshapes of an image's pixels into the batch axis
        and back."""
        if len(streams) != 1 or len(node.outputs) != 1:
            return False
        (_, x), graph = streams[0], self.graph
        out = node.outputs[0]
        if node.op in PASSING:
            self.values[out] = x
        elif node.op == "Transpose":
            order = tuple(node.attr("perm", tuple(reversed(range(len(x.perm))))))
            if len(order) != len(x.perm) or x.perm[order[0]] != 0:
                return False
            self.values[out] = Stream(x.item, tuple(x.perm[a] for a in order))
        elif node.op == "Expand":
            same = self.shape(out) == self.shape(node.inputs[0])
            if not same and not all(n.op == "Mul" for n in graph.readers_of(out)):
                return False  # the spec's `multiply` broadcasts 1x1xC; nothing else does
            self.values[out] = x
        elif node.op == "Reshape":
            return self._reshape(node, x)
        else:
            return False
        return True

    def _gathers_in_order(self, node: GraphNode) -> bool:
        """A tensor flattened and gathered back in its own order (PyTorch's as_strided in ConvNeXt's
        head): the tensor itself."""
        import numpy as np

        indices, flat = self.graph.constant(node.inputs[1]), self.graph.maker(node.inputs[0])
        if indices is None or flat is None or flat.op != "Reshape":
            return False
        source, shape = self.values.get(flat.inputs[0]), self.graph.shape(flat.inputs[0])
        if not isinstance(source, Stream) or tuple(indices.shape) != tuple(shape or ()):
            return False
        if not np.array_equal(indices.reshape(-1), np.arange(indices.size)):
            return False
        self.values[node.outputs[0]] = source
        return True

    def _reshape(self, node: GraphNode, x: Stream) -> bool:
        out, shape = self.shape(node.outputs[0]), self.shape(node.inputs[0])
        target = self.graph.constant(node.inputs[1]) if len(node.inputs) > 1 else None
        merges_batch = target is not None and target.size == 2 and int(target.reshape(-1)[0]) == -1
        if out == shape:
            self.values[node.outputs[0]] = x
        elif x.perm == NHWC and out == (math.prod(shape[:3]), shape[3]) and (shape[1] * shape[2] > 1 or merges_batch):
            self.values[node.outputs[0]] = Stream(x.item, PIXELS, shape[1:3])
        elif x.perm == PIXELS and len(out) == 4 and out[1:3] == x.grid and out[3] == shape[1]:
            self.values[node.outputs[0]] = Stream(x.item, NHWC)
        else:
            return False
        return True
