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


def infer_partial(graph: Graph, fragments=(), memo=None) -> tuple[tuple[LayerInfo | None, ...], list]:
    """Type what can be typed of a graph expanded with recovery (`archspec.expand.expand_recovering`):
    a node reading an unknown input has no info (None), and one that cannot be built has none either,
    its error recorded; every other node is typed as `infer` types it. Returns (infos, errors).

    `fragments` (the top-level statements of an incremental expansion, see `archspec.expand_memo`) keep
    their infos: a fragment whose inputs from before it have the infos they had is not typed again. With
    the expansion's `memo`, the infos of the last expansion are taken whole where it kept the statements
    before an edit, and those after it while what flows into them is unchanged (or changed only in its
    receptive fields, worked out again in one pass); the keys of fragments whose infos changed are left in
    `memo.retyped`."""
    infos: list[LayerInfo | None] = []
    errors: list = []
    total = [0]
    old = memo.infos if memo is not None else None
    retyped = _Retyped()
    count = len(fragments)
    first = 0
    if old is not None and memo.prefix:
        first = memo.prefix
        end = fragments[first].start if first < count else len(graph.nodes)
        infos.extend(old[:end])
        total[0] = sum(i.params for i in old[: fragments[0].start] if i is not None)
        total[0] += sum(f.params for f in fragments[:first])
        errors.extend(e for f in fragments[:first] for e in f.infer_errors)
    stop = memo.suffix[0] if old is not None and memo.suffix is not None else count
    for fragment in fragments[first:stop]:
        _type_fragment(graph, fragment, old, infos, errors, total, retyped)
    if stop < count:
        renumbering = memo.suffix[2]
        start, shift = fragments[stop].start, renumbering.shift
        _type_nodes(graph, range(len(infos), start), infos, errors, total)
        # what the statements after read of those typed again: their stream and the tensors named there
        read = [(was, now) for was, now in renumbering.visible.items() if was >= 0 or now >= 0]
        if any(was < 0 or now < 0 for was, now in read):  # a tensor they read became known, or unknown
            read = None
        after = sum(f.params for f in fragments[stop:])
        if total[0] + after > MAX_PARAMS:  # where the total passes the limit is found again
            read = None
        rest = fragments[stop:]
        if read is not None and all(infos[now] is old[was] or infos[now] == old[was] for was, now in read):
            infos.extend(old[start - shift :])  # nothing flowing in changed
        elif read is not None and all(_same_but_receptive_field(infos[now], old[was]) for was, now in read):
            _receptive_fields(graph, start, shift, old, infos)
            for fragment in rest:  # what they compare what flows in with next time
                if fragment.external_infos is not None:
                    fragment.external_infos = tuple([infos[i] for i in fragment.externals])
        else:
            rest = ()
            for fragment in fragments[stop:]:
                _type_fragment(graph, fragment, old, infos, errors, total, retyped)
        if rest:
            total[0] += after
            errors.extend(e for f in rest for e in f.infer_errors)
            if shift:  # their infos are where their nodes are now
                for fragment in rest:
                    fragment.typed_at = fragment.start
    _type_nodes(graph, range(len(infos), len(graph.nodes)), infos, errors, total)
    if memo is not None:
        memo.infos = tuple(infos)
        memo.retyped |= retyped
        memo.went_dark = (memo.went_dark | retyped.went_dark) - retyped.came_back - retyped
        memo.came_back = (memo.came_back | retyped.came_back) - retyped.went_dark - retyped
    return tuple(infos), errors


def _type_fragment(graph: Graph, fragment, old, infos: list, errors: list, total: list[int], retyped: set) -> None:
    """Type one fragment's nodes, or keep its infos when those flowing into it are the ones it had."""
    if len(infos) < fragment.start:
        _type_nodes(graph, range(len(infos), fragment.start), infos, errors, total)
    externals = fragment.externals
    if not externals and fragment.end > fragment.start:
        externals = tuple(sorted({i for n in fragment.nodes for i in n.inputs if 0 <= i < fragment.start}))
    before = fragment.external_infos
    # infos reused upstream are the same objects: identity first, equality where they were typed again
    if len(externals) == 1:  # most statements: they read the stream
        now = (infos[externals[0]],)
        same = before is not None and len(before) == 1 and (before[0] is now[0] or before[0] == now[0])
    else:
        now = tuple(infos[i] for i in externals)
        same = before is not None and len(before) == len(now) and all(a is b or a == b for a, b in zip(before, now))
    size = fragment.end - fragment.start
    kept = None
    if old is not None and fragment.typed_at is not None and fragment.typed_at + size <= len(old):
        kept = old[fragment.typed_at : fragment.typed_at + size]
    fragment.typed_at = fragment.start
    if same and kept is not None and total[0] + fragment.params <= MAX_PARAMS:
        infos.extend(kept)
        errors.extend(fragment.infer_errors)
        total[0] += fragment.params
        fragment.external_infos = now
        return
    found: list = []
    baseline, baseline_externals = kept, before
    if (kept is None or None in kept) and fragment.known is not None:  # it was unknown: its last typing known
        baseline_externals, baseline = fragment.known
    if externals and all(info is None for info in now):  # what flows in is unknown: so is every node
        infos.extend([None] * size)
    elif baseline is not None and baseline_externals is not None and total[0] + fragment.params <= MAX_PARAMS:
        _retype_nodes(graph, fragment, dict(zip(externals, baseline_externals)), baseline, infos, found, total)
    else:
        _type_nodes(graph, range(fragment.start, fragment.end), infos, found, total)
    errors.extend(found)
    fragment.externals, fragment.external_infos = externals, now
    fragment.infer_errors = tuple(found)
    typed = infos[fragment.start :]
    fragment.params = sum(info.params for info in typed if info is not None)
    last_known = fragment.known
    if None not in typed and None not in now:
        fragment.known = (now, tuple(typed))
    if kept is not None and all(_same_but_receptive_field(a, b) for a, b in zip(typed, kept)):
        return
    if kept is not None and typed and last_known is not None:  # lint keeps what it found while it is unknown
        if None not in kept and all(info is None for info in typed):
            retyped.went_dark.add(fragment.key)
            return
        if all(info is None for info in kept) and all(map(_same_but_receptive_field, typed, last_known[1])):
            retyped.came_back.add(fragment.key)
            return
    retyped.add(fragment.key)


class _Retyped(set):
    """Keys of the fragments whose infos changed (what lint judges of them: see
    `_same_but_receptive_field`), and apart, those whose every info became unknown or came back as it was."""

    def __init__(self) -> None:
        super().__init__()
        self.went_dark: set[int] = set()
        self.came_back: set[int] = set()


def _same_but_receptive_field(a: LayerInfo | None, b: LayerInfo | None) -> bool:
    """Whether two infos differ at most in their receptive field and stride (what lint does not judge
    layer by layer)."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    return a.shape == b.shape and (a.trainable, a.non_trainable, a.macs) == (b.trainable, b.non_trainable, b.macs)


def _receptive_fields(graph: Graph, start: int, shift: int, old: tuple, infos: list) -> None:
    """The nodes from `start` on (those from `start - shift` on in `old`), whose input shapes are those they
    had: their infos with the receptive field and stride worked out again (an edited kernel size changes
    every one below it). The loop of `_receptive_field`, inlined for the one-input layers most are."""
    nodes = graph.nodes
    new, put = object.__new__, object.__setattr__
    for index in range(start, len(nodes)):
        before = old[index - shift]
        if before is None:
            infos.append(None)
            continue
        node = nodes[index]
        window = node.window
        if len(node.inputs) == 1:
            source = infos[node.inputs[0]]
            rf, stride = source.receptive_field, source.stride
            if rf is None or window == GLOBAL:
                rf = None
            elif isinstance(window, Window):
                (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.stride, window.dilation
                rf = (rf[0] + dh * (kh - 1) * stride[0], rf[1] + dw * (kw - 1) * stride[1])
                stride = (stride[0] * sh, stride[1] * sw)
        else:
            rf, stride = _receptive_field(node, window, [infos[i] for i in node.inputs], before.shape)
        if rf != before.receptive_field or stride != before.stride:
            info = new(LayerInfo)  # fields in their order, as the frozen dataclass sets them
            put(info, "shape", before.shape)
            put(info, "trainable", before.trainable)
            put(info, "non_trainable", before.non_trainable)
            put(info, "macs", before.macs)
            put(info, "receptive_field", rf)
            put(info, "stride", stride)
            before = info
        infos.append(before)


def _retype_nodes(
    graph: Graph, fragment, old_externals: dict, old: tuple, infos: list, errors: list, total: list[int]
) -> None:
    """Type a fragment's nodes again after the infos flowing into it changed: a node whose input shapes
    are the ones it had keeps its shape, parameters and MACs (its kind's rules are the costly part), and
    only its receptive field is worked out again (an edited kernel size changes every one below it)."""
    start = fragment.start
    nodes = graph.nodes
    for index in range(start, fragment.end):
        node = nodes[index]
        before = old[index - start]
        if before is None:
            _type_nodes(graph, range(index, index + 1), infos, errors, total)
            continue
        if len(node.inputs) == 1:  # most layers, without the lists
            i = node.inputs[0]
            source = infos[i] if i >= 0 else None
            previous = old[i - start] if i >= start else old_externals.get(i)
            if source is None or previous is None or previous.shape != source.shape:
                _type_nodes(graph, range(index, index + 1), infos, errors, total)
                continue
            if source.receptive_field == previous.receptive_field and source.stride == previous.stride:
                total[0] += before.params  # what flows in is what flowed: so is what flows out
                infos.append(before)
                continue
            inputs = [source]
        else:
            inputs = [infos[i] if i >= 0 else None for i in node.inputs]
            previous = [old[i - start] if i >= start else old_externals.get(i) for i in node.inputs]
            if None in inputs or any(p is None or p.shape != i.shape for p, i in zip(previous, inputs)):
                _type_nodes(graph, range(index, index + 1), infos, errors, total)
                continue
        rf, stride = _receptive_field(node, node.window, inputs, before.shape)
        if rf != before.receptive_field or stride != before.stride:
            before = LayerInfo(before.shape, before.trainable, before.non_trainable, before.macs, rf, stride)
        total[0] += before.params
        infos.append(before)


def _type_nodes(graph: Graph, ids: range, infos: list, errors: list, total: list[int]) -> None:
    from archspec.errors import SpecError, detached

    nodes = graph.nodes
    for index in ids:
        node = nodes[index]
        inputs = [infos[i] if i >= 0 else None for i in node.inputs]
        info = None
        if None not in inputs:
            try:
                info = _infer_node(graph, node, inputs)
            except SpecError as error:
                errors.append(detached(error))
            else:
                total[0] += info.params
                if total[0] > MAX_PARAMS and total[0] - info.params <= MAX_PARAMS:
                    errors.append(
                        graph.error(
                            node,
                            f"the model passes {MAX_PARAMS:.0e} parameters here ({total[0]:,})",
                            hint="a model this size cannot be trained; check the layer sizes",
                        )
                    )
        infos.append(info)


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
    if len(inputs) == 1:  # most layers: the same as below, without the loops
        rf, jump = inputs[0].receptive_field, inputs[0].stride
        if rf is None or window == GLOBAL:
            return None, jump
        if window is None:
            return rf, jump
    else:
        if any(i.receptive_field is None for i in inputs) or window == GLOBAL:
            return None, max(i.stride for i in inputs)
        rf = tuple(max(i.receptive_field[axis] for i in inputs) for axis in (0, 1))
        jump = tuple(max(i.stride[axis] for i in inputs) for axis in (0, 1))
    if isinstance(window, Window):
        rf = tuple(rf[a] + window.dilation[a] * (window.kernel[a] - 1) * jump[a] for a in (0, 1))
        jump = tuple(jump[a] * window.stride[a] for a in (0, 1))
    return rf, jump
