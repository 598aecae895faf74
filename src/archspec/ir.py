"""The IR: a graph of layers in topological order, each node tied to its spec line.

Built by `archspec.expand` from the syntax tree (macros and repeats already expanded); typed by
`archspec.infer`. Scopes record the blocks and macro calls a node came from, so the summary can
nest rows and errors can say "in expansion of `bottleneck 128 stride=2`".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archspec.errors import Note, Span, SpecError
from archspec.layers import REGISTRY, LayerKind
from archspec.source import SourceText
from archspec.text import expansion_note


class _kept:
    """A computed attribute kept in the instance after the first read, as `functools.cached_property`
    does, without its lock (taken at every first read: thousands a keystroke in the language server)."""

    def __init__(self, compute) -> None:
        self.compute, self.name, self.__doc__ = compute, compute.__name__, compute.__doc__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


@dataclass(frozen=True)
class Origin:
    """A macro call site a node was expanded from."""

    call: str  # e.g. "bottleneck 128 stride=2"
    span: Span


@dataclass(frozen=True)
class Node:
    id: int
    kind: str
    attrs: dict[str, Any]
    inputs: tuple[int, ...]
    span: Span
    scope: int | None  # innermost enclosing Scope, None at top level
    origins: tuple[Origin, ...] = ()  # macro call stack, outermost first

    @_kept  # lint asks it ten times a node: the language server lints 10,000 nodes a keystroke
    def layer(self) -> LayerKind:
        return REGISTRY[self.kind]

    @_kept  # the language server works receptive fields out again below an edit, node by node
    def window(self):
        """How the layer changes the receptive field: its kind's `window` for its attributes."""
        return self.layer.window(self.attrs)

    @property
    def label(self) -> str:
        return self.layer.label(self.attrs)

    @property
    def line(self) -> int:
        return self.span.line


@dataclass(frozen=True)
class MacroCall:
    """What a macro call bound: the macro, each parameter's value (a tensor parameter's is the word
    `@name`), the node each tensor parameter stands for, and the nodes it read and returned. The code
    writers turn calls into calls of one function per macro."""

    macro: str
    arguments: tuple[tuple[str, Any], ...]
    tensors: tuple[tuple[str, int], ...]
    input: int  # the stream it was called on
    output: int  # the node it returned
    start: int  # the id its first node has (or would have): orders calls among nodes


@dataclass(frozen=True)
class Scope:
    """A block or macro call: a row in the summary with the layers it holds nested under it.

    `kind` is "call", "add", "concat", "multiply", "branch" or "repeat". A merge block's own merge
    node is `node`; its row shows that node's output.
    """

    id: int
    parent: int | None
    kind: str
    label: str
    span: Span
    node: int | None = None
    call: MacroCall | None = None  # for a macro call: what it bound


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]  # topological order; node.id is its index
    scopes: tuple[Scope, ...]  # scope.id is its index
    source: SourceText
    names: tuple[tuple[int, str], ...] = ()  # (node id, name) for each tensor named with `-> name`, see below

    @property
    def input(self) -> Node:
        return self.nodes[0]

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    def tensor_names(self) -> dict[int, str]:
        """The name a spec gave each named node's output (`-> e1`); of several, the one given nearest the
        top level (`names` lists it last)."""
        return dict(self.names)

    def error(self, node: Node, message: str, hint: str | None = None) -> SpecError:
        """A SpecError at `node`'s spec position, naming the macro calls it came from."""
        return located_error(message, node.span, node.origins, self.source, hint)

    def scope_chain(self, scope: int | None) -> list[Scope]:
        """The scopes from the outermost down to `scope`."""
        chain = []
        while scope is not None:
            chain.append(self.scopes[scope])
            scope = self.scopes[scope].parent
        return chain[::-1]


def located_error(
    message: str, span: Span, origins: tuple[Origin, ...], source: SourceText | None, hint: str | None = None
) -> SpecError:
    notes = tuple(Note(expansion_note(o.call, o.span.line), o.span) for o in reversed(origins))
    return SpecError(message, span, hint=hint, notes=notes, source=source)
