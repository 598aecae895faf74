"""The layer graph both Keras readers build (saved models and source code), and how it is written
as a spec: one line per Keras layer with a comment naming where it comes from, merges as nested
`add:`/`concat:`/`multiply:` blocks where the graph nests, named tensors (`-> name`, `@name`) where
it does not.

Each Keras layer is read by the layer kind that claims its class (`LayerKind.read_keras`), and its
output shape is worked out at once, so a reader can answer `x.shape[-1]` and a bad layer is
reported where it is made. `write_spec` also says which layer each spec line writes, so errors
and findings about the spec are reported at the Keras code or layer that made it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from archspec.errors import Span
from archspec.layers import REGISTRY, ArgError, ReadNode, ShapeError, Untranslatable, keras_config
from archspec.text import describe_shape
from archspec.words import BLOCKS, IDENTITY, INPUT, LOGIC_WORDS, MERGES

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Layer:
    """One Keras layer: the spec nodes it reads as (none for a layer that is the identity at
    inference, like RandomFlip), its inputs, output shape, and where it comes from."""

    nodes: tuple[ReadNode, ...]
    inputs: tuple[int, ...]
    shape: Shape
    keras: str  # its Keras class
    origin: Span | None = None  # where the source code makes it (a line of the file read)
    made: str = ""  # `blocks.py:12`: where a module the file imports makes it
    name: str = ""  # its Keras name, in a saved model (`conv2d_3`, `backbone/conv1`)
    frozen: bool = False  # Keras does not train it (`trainable=False`)

    @property
    def merge(self) -> bool:
        return bool(self.nodes) and REGISTRY[self.nodes[0][0]].family == "merge"


@dataclass
class LayerGraph:
    layers: list[Layer] = field(default_factory=list)
    folded: set[int] = field(default_factory=set)  # global poolings a Reshape made 1x1xC
    variables: dict[int, str] = field(default_factory=dict)  # the first Python variable holding a tensor

    def add(self, layer: Layer) -> int:
        self.layers.append(layer)
        return len(self.layers) - 1

    def read(self, class_name: str, config: dict, inputs: tuple[int, ...], label: str = "", **where) -> int:
        """Read Keras layer `class_name` with `config` on `inputs` (graph indices) into the graph;
        `label` names what the code or file holds when it is not that layer (`keras.ops.add`).
        Raises `Untranslatable` (no position: the caller adds it) for a layer the spec cannot say."""
        self._unfolded(inputs)
        shapes = [self.layers[i].shape for i in inputs]
        kind = keras_kinds().get(class_name)
        if class_name in IDENTITY_AT_INFERENCE:
            nodes: list[ReadNode] = []
        elif kind is None:
            raise Untranslatable(None, f"`{class_name}` is not a Keras layer the spec language has", hint=kinds_hint())
        else:
            nodes = kind.read_keras(class_name, config, shapes)
        return self.add(Layer(tuple(nodes), inputs, self.shape_of(nodes, inputs), label or class_name, **where))

    def reshape(self, config: dict, inputs: tuple[int, ...], **where) -> int:
        """Keras `Reshape`, which no kind reads alone: to a vector it is `flatten`; to 1x1xC right
        after a global pooling (EfficientNet's squeeze-excite) it is that pooling with keepdims."""
        target = keras_config.plain(config.get("target_shape"))
        self._unfolded(inputs)
        source = self.layers[inputs[0]]
        shape = source.shape
        if isinstance(target, tuple) and len(target) == 1 and target[0] in (-1, math.prod(shape)):
            nodes = () if len(shape) == 1 else (("flatten", {}),)
            return self.add(Layer(nodes, inputs, (math.prod(shape),), "Reshape", **where))
        pooled = source.nodes[-1] if source.nodes else None
        if (
            isinstance(target, tuple)
            and target in ((1, 1, shape[-1]), (1, 1, -1))
            and len(shape) == 1
            and pooled is not None
            and REGISTRY[pooled[0]].family == "global_pool"
        ):
            kept = (pooled[0], {**pooled[1], "keepdims": True})
            self.layers[inputs[0]] = replace(source, nodes=(*source.nodes[:-1], kept), shape=(1, 1, shape[-1]))
            self.folded.add(inputs[0])
            return self.add(Layer((), inputs, (1, 1, shape[-1]), "Reshape", **where))
        raise Untranslatable(
            "target_shape",
            f"`Reshape` of {describe_shape(shape)} to {keras_config.show(target)} has no spec equivalent",
            hint="the spec reshapes with `flatten` (to a vector) and `gap keepdims=true` (to 1x1xC)",
        )

    def _unfolded(self, inputs: tuple[int, ...]) -> None:
        for index in inputs:
            if index in self.folded:
                raise Untranslatable(
                    None, f"it reads the pooled vector of {self.describe(index)}, which a Reshape also makes 1x1xC"
                )

    def shape_of(self, nodes, inputs: tuple[int, ...]) -> Shape:
        """The output shape of `nodes` applied in order to `inputs` (the first node takes them all)."""
        shapes = [self.layers[i].shape for i in inputs]
        if not nodes:
            return shapes[0]
        for kind_name, attrs in nodes:
            kind = REGISTRY[kind_name]
            if kind.family == "merge":
                attrs = {**attrs, "branches": tuple(self.describe(i) for i in inputs)}
            try:
                shapes = [kind.output_shape(attrs, shapes)]
            except (ShapeError, ArgError) as error:
                raise Untranslatable(None, error.message, error.hint) from None
        return shapes[0]

    def describe(self, index: int) -> str:
        layer = self.layers[index]
        return f"`{layer.name}`" if layer.name else f"line {layer.origin.line}" if layer.origin else layer.keras


# Keras layers without weights that are the identity at inference (data augmentation, no-ops):
# they add no spec line, only a comment.
IDENTITY_AT_INFERENCE = frozenset(
    {
        "RandomFlip",
        "RandomRotation",
        "RandomZoom",
        "RandomTranslation",
        "RandomContrast",
        "RandomBrightness",
        "Identity",
        "ActivityRegularization",
    }
)

# Activation functions applied to a tensor (`keras.ops.relu(x)`, `tf.nn.relu6(x)`,
# `keras.activations.swish(x)`): read as an `Activation` layer of that name.
ACTIVATION_FUNCTIONS = frozenset(
    {
        "relu",
        "relu6",
        "sigmoid",
        "tanh",
        "softmax",
        "silu",
        "swish",
        "gelu",
        "elu",
        "selu",
        "softplus",
        "mish",
        "hard_sigmoid",
        "hard_silu",
        "hard_swish",
        "leaky_relu",
        "linear",
    }
)
_KINDS: dict[str, object] = {}


def keras_kinds() -> dict:
    """Keras class name -> the layer kind that reads it (each kind lists its `keras_classes`)."""
    if not _KINDS:
        for kind in REGISTRY.values():
            for name in kind.keras_classes:
                _KINDS.setdefault(name, kind)
    return _KINDS


def kinds_hint() -> str:
    """The Keras classes the layer kinds read, one per kind (no aliases)."""
    shown = sorted({kind.keras_classes[0] for kind in REGISTRY.values() if kind.keras_classes})
    return "Keras classes the spec reads: " + ", ".join(shown)


# --- the spec of a graph ---------------------------------------------------------------------------


def write_spec(graph: LayerGraph, output: int, header: str, comment) -> tuple[str, dict[int, int]]:
    """The spec of the part of `graph` that computes `output` from its one input, and for each spec
    line the graph index it writes. `comment(layer)` says where a layer comes from."""
    writer = _Writer(graph, output)
    lines = [header]
    owners: dict[int, int] = {}
    writer.emit(writer.statements(), lines, owners, 0, comment)
    return "\n".join(lines) + "\n", owners


class _Writer:
    def __init__(self, graph: LayerGraph, output: int) -> None:
        self.graph = graph
        self.layers = graph.layers
        # Layers without a spec line pass their input through: their readers read that input.
        self.resolved = {}
        for index, layer in enumerate(self.layers):
            self.resolved[index] = self.resolved[layer.inputs[0]] if not layer.nodes and layer.inputs else index
        needed, stack = set(), [output]
        while stack:
            index = stack.pop()
            if index not in needed:
                needed.add(index)
                stack.extend(self.layers[index].inputs)
        self.order = sorted(needed)  # layers are numbered in the order they were made: inputs first
        roots = [i for i in self.order if not self.layers[i].inputs]
        if len(roots) != 1:
            names = ", ".join(graph.describe(i) for i in roots)
            raise Untranslatable(None, f"the model has {len(roots)} inputs ({names}); a spec has one")
        self.root = roots[0]
        self.output = self.resolved[output]
        self.inputs = {i: tuple(self.resolved[p] for p in self.layers[i].inputs) for i in self.order}
        self.consumers: dict[int, list[int]] = {i: [] for i in self.order}
        for index in self.order:
            if self.layers[index].nodes:
                for parent in self.inputs[index]:
                    self.consumers[parent].append(index)
        self.idom = self._dominators()
        self.names: dict[int, str] = {}
        self.skipped = [i for i in self.order if not self.layers[i].nodes and self.layers[i].inputs]

    def _dominators(self) -> dict[int, int]:
        """Each layer's immediate dominator: the last layer every path from the input passes."""
        depth, idom = {self.root: 0}, {self.root: self.root}
        for index in self.order:
            if index == self.root or not self.layers[index].nodes:
                continue
            parents = list(dict.fromkeys(self.inputs[index]))
            common = parents[0]
            for other in parents[1:]:
                a, b = common, other
                while a != b:
                    if depth[a] < depth[b]:
                        a, b = b, a
                    a = idom[a]
                common = a
            idom[index], depth[index] = common, depth[common] + 1
        return idom

    # --- choosing the blocks ---------------------------------------------------------------------

    def _branches(self, merge: int) -> list[list[int]] | None:
        """The layers of each branch of `merge` as a nested block, or None when the graph does not
        nest there (a layer of a branch feeds something outside the block, or two branches share)."""
        fork = self.idom[merge]
        branches = []
        seen: dict[int, int] = {}
        for number, start in enumerate(self.inputs[merge]):
            branch, stack = [], [start]
            while stack:
                index = stack.pop()
                if index == fork or seen.get(index) == number:
                    continue
                if index in seen:
                    return None  # shared by two branches
                seen[index] = number
                branch.append(index)
                stack.extend(self.inputs[index])
            branches.append(sorted(branch))
        region = set(seen)
        for index in region:
            if any(c not in region and c != merge for c in self.consumers[index]):
                return None
        return branches

    def statements(self) -> list:
        scope = [i for i in self.order if self.layers[i].nodes]
        return self._scope(scope, None)

    def _scope(self, scope: list[int], start: int | None) -> list:
        """Statements for `scope` (graph indices, in order) read from `start` (None: the input):
        ("line", i), ("read", i) for `@name`, ("merge", i, branches) with branches of statements,
        or "identity"."""
        blocks: dict[int, list[list[int]]] = {}
        claimed: set[int] = set()
        for index in reversed(scope):  # outer merges first: their blocks hold the inner ones
            if index in claimed or not self.layers[index].merge:
                continue
            branches = self._branches(index)
            if branches is not None and set().union(*map(set, branches)) <= set(scope):
                blocks[index] = branches
                for branch in branches:
                    claimed.update(branch)
        statements: list = []
        stream = start
        for index in self._chains([i for i in scope if i not in claimed], blocks, start):
            if index in blocks:
                fork = self.idom[index]
                if fork != stream:
                    statements.append(("read", self._name(fork)))
                children = [self._scope(b, fork) if b else IDENTITY for b in blocks[index]]
                statements.append(("merge", index, children))
            elif self.layers[index].merge:
                children = [IDENTITY if p == stream else [("read", self._name(p))] for p in self.inputs[index]]
                statements.append(("merge", index, children))
            else:
                parent = self.inputs[index][0] if self.inputs[index] else None
                if parent is not None and parent != stream:
                    statements.append(("read", self._name(parent)))
                statements.append(("line", index))
            stream = index
        return statements

    def _chains(self, items: list[int], blocks: dict, start: int | None) -> list[int]:
        """`items` in an order that runs each chain of layers to its end before the next (Keras
        saves layers by depth, interleaving parallel paths), so few tensors need names."""
        present = set(items)
        reads = {i: [self.idom[i]] if i in blocks else list(self.inputs[i]) for i in items}
        waiting = {i: {p for p in reads[i] if p in present} for i in items}
        readers: dict[int, list[int]] = {}
        for index in items:
            for parent in waiting[index]:
                readers.setdefault(parent, []).append(index)
        ready = [i for i in items if not waiting[i]]
        order, stream = [], start
        while ready:
            following = [i for i in ready if stream in reads[i]]
            index = min(following or ready)
            ready.remove(index)
            order.append(index)
            stream = index
            for reader in readers.get(index, ()):
                waiting[reader].discard(index)
                if not waiting[reader]:
                    ready.append(reader)
        return order

    def _name(self, index: int) -> int:
        if index not in self.names:
            layer = self.layers[index]
            base = layer.name.split("/")[-1] or self.graph.variables.get(index) or f"{layer.nodes[0][0]}{index}"
            base = re.sub(r"\W", "_", base)
            if not re.match(r"[A-Za-z_]", base) or base in RESERVED or re.fullmatch(r"x\d+", base):
                base = f"t_{base}"
            taken = set(self.names.values())
            name, number = base, 1
            while name in taken:
                number += 1
                name = f"{base}_{number}"
            self.names[index] = name
        return index

    # --- text ------------------------------------------------------------------------------------

    def emit(self, statements: list, lines: list[str], owners: dict[int, int], depth: int, comment) -> None:
        pad = "    " * depth
        if depth == 0:
            for index in self.skipped:
                layer = self.layers[index]
                lines.append(f"# {comment(layer)} (no weights, identity at inference: no spec line)")
        for statement in statements:
            if statement == IDENTITY:
                lines.append(pad + IDENTITY)
            elif statement[0] == "read":
                lines.append(f"{pad}@{self.names[statement[1]]}")
            elif statement[0] == "line":
                self._line(statement[1], pad, lines, owners, comment)
            else:
                _, index, children = statement
                self._line(index, pad, lines, owners, comment, header=True)
                for child in children:
                    if child == IDENTITY or (len(child) == 1 and self._one_line(child[0])):
                        self.emit([child] if child == IDENTITY else child, lines, owners, depth + 1, comment)
                    else:
                        lines.append(pad + "    branch:")
                        self.emit(child, lines, owners, depth + 2, comment)

    def _one_line(self, statement) -> bool:
        """Whether a statement can be a merge branch without `branch:` (one line, or a block)."""
        if statement[0] == "line":
            return len(_texts(self.layers[statement[1]].nodes)) == 1
        return True  # `@name`, or a nested merge block

    def _line(self, index: int, pad: str, lines, owners, comment, header: bool = False) -> None:
        layer = self.layers[index]
        texts = _texts(layer.nodes)
        for number, text in enumerate(texts):
            if number == len(texts) - 1 and index in self.names:  # the layer's output: its last line
                text += f" -> {self.names[index]}"
            lines.append(f"{(pad + text + (':' if header else '')).ljust(40)} # {comment(layer)}")
            owners[len(lines)] = index


def _texts(nodes: tuple[ReadNode, ...]) -> list[str]:
    """The spec lines of one layer's nodes: trailing kinds join the line before (`conv 64 3 relu`)."""
    texts: list[str] = []
    lead = None
    for kind_name, attrs in nodes:
        kind = REGISTRY[kind_name]
        text = kind.spec_text(attrs)
        if lead is not None and lead.takes_suffix and kind.trailing:
            name, *args = text.split(" ")
            texts[-1] += f" {name}({', '.join(args)})" if args else f" {name}"
            continue
        texts.append(text)
        lead = kind
    return texts


RESERVED = frozenset({*BLOCKS, *MERGES, *LOGIC_WORDS, IDENTITY, INPUT, "def", *REGISTRY})
