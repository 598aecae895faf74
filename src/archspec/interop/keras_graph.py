"""The layer graph read from Keras code, and how it is written as a spec: one line per layer with a
comment naming its Python line, merges as nested `add:`/`concat:`/`multiply:` blocks.

`ImportedSpec.origins` maps each spec line back to its Python place, so errors and lint findings
about the spec are reported at the Keras code that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archspec.errors import SourceText, Span, SpecError


@dataclass
class Layer:
    """One node: its spec line (None for a layer that adds none, like RandomFlip), inputs, Python place."""

    text: str | None
    inputs: tuple[int, ...]
    span: Span
    keras: str  # the Keras class, for the comment
    merge: bool = False


@dataclass
class LayerGraph:
    layers: list[Layer] = field(default_factory=list)

    def add(self, layer: Layer) -> int:
        self.layers.append(layer)
        return len(self.layers) - 1


@dataclass(frozen=True)
class ImportedSpec:
    """A model read from Python: the spec text, the Python place of each spec line, the Python source."""

    name: str  # the variable or function that holds the model
    text: str
    origins: dict[int, Span]
    source: SourceText
    span: Span  # where the model is built

    def locate(self, span: Span | None) -> Span:
        """The Python place of a spec place (the model's own place when the line has none)."""
        if span is None:
            return self.span
        return self.origins.get(span.line, self.span)

    def relocate(self, error: SpecError) -> SpecError:
        """The same error at the Python line of the layer it is about."""
        return SpecError(error.message, self.locate(error.span), hint=error.hint, source=self.source)


def write_spec(graph: LayerGraph, output: int, name: str, model: str, span: Span, source: SourceText) -> ImportedSpec:
    """Write the part of the graph that computes `output`, from its one input, as a spec."""
    writer = _Writer(graph, output, span, source)
    statements = writer.path(writer.root, output)
    lines = [f"# Imported from {name} (`{model}`, line {span.line}) by `cnn-arch import`; one line per Keras layer."]
    origins: dict[int, Span] = {}
    writer.emit(lines, origins, [(writer.root, None)], 0)
    writer.emit(lines, origins, statements, 0)
    return ImportedSpec(model, "\n".join(lines) + "\n", origins, source, span)


class _Writer:
    def __init__(self, graph: LayerGraph, output: int, span: Span, source: SourceText) -> None:
        self.graph = graph
        self.source = source
        needed, stack = set(), [output]  # the layers `output` depends on (a file may build several models)
        while stack:
            index = stack.pop()
            if index not in needed:
                needed.add(index)
                stack.extend(graph.layers[index].inputs)
        roots = sorted(i for i in needed if not graph.layers[i].inputs)
        if len(roots) != 1:
            raise SpecError(f"the model has {len(roots)} inputs; a spec has one", span, source=source)
        self.root = roots[0]
        self.dominators: dict[int, frozenset[int]] = {}
        for index in sorted(needed):  # layers are numbered in the order they were made: inputs first
            inputs = graph.layers[index].inputs
            shared = frozenset.intersection(*(self.dominators[i] for i in inputs)) if inputs else frozenset()
            self.dominators[index] = shared | {index}
        self.written: set[int] = set()

    def _fork(self, index: int) -> int:
        """The last node every path to `index` passes through: where its merge's branches split."""
        return max(self.dominators[index] - {index})

    def path(self, start: int, end: int) -> list:
        """Statements from `start` (excluded) to `end`: (node, None) lines and (node, branches) merges."""
        chain: list = []
        index = end
        while index != start:
            layer = self.graph.layers[index]
            if index in self.written:
                raise SpecError(
                    "this layer's output feeds two branches that do not merge back in one block; "
                    "the spec language can only say nested add/concat/multiply blocks",
                    layer.span,
                    source=self.source,
                )
            self.written.add(index)
            if layer.merge:
                fork = self._fork(index)
                chain.append((index, [self.path(fork, i) for i in layer.inputs]))
                index = fork
            else:
                chain.append((index, None))
                index = layer.inputs[0]
        return chain[::-1]

    def emit(self, lines: list[str], origins: dict[int, Span], statements: list, depth: int) -> None:
        pad = "    " * depth
        for index, branches in statements:
            layer = self.graph.layers[index]
            where = f"# line {layer.span.line}: {layer.keras}"
            if branches is None:
                if layer.text is None:
                    lines.append(f"{pad}{where} (no weights, identity at inference: no spec line)")
                    continue
                lines.append(f"{(pad + layer.text).ljust(40)} {where}")
                origins[len(lines)] = layer.span
                continue
            lines.append(f"{(pad + layer.text + ':').ljust(40)} {where}")
            origins[len(lines)] = layer.span
            for branch in branches:
                self._branch(lines, origins, branch, depth + 1)

    def _branch(self, lines: list[str], origins: dict[int, Span], branch: list, depth: int) -> None:
        written = [s for s in branch if s[1] is not None or self.graph.layers[s[0]].text is not None]
        if not written:
            lines.append("    " * depth + "identity")
        elif len(written) == 1 and len(branch) == 1:
            self.emit(lines, origins, branch, depth)
        else:
            lines.append("    " * depth + "branch:")
            self.emit(lines, origins, branch, depth + 1)
