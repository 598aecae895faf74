"""The one front door: spec text → typed graph (parse, expand, infer)."""

from __future__ import annotations

from archspec.expand import expand
from archspec.infer import TypedGraph, infer
from archspec.parse import parse
from archspec.source import SourceText
from archspec.syntax import Module


def compile_spec(text: str, name: str = "<spec>", input_shape: tuple[int, ...] | None = None) -> TypedGraph:
    """Parse, expand and type a spec. `input_shape` (HxWxC) overrides its `input` line.

    Raises `SpecError` for any mistake in the spec, located at its line and column.
    """
    return compile_with_syntax(text, name, input_shape)[1]


def compile_with_syntax(
    text: str, name: str = "<spec>", input_shape: tuple[int, ...] | None = None
) -> tuple[Module, TypedGraph]:
    """Like `compile_spec`, also returning the syntax tree (for tools that edit the text, like lint's fixes)."""
    module = parse(text, name)
    graph = expand(module, SourceText(name, text), input_shape)
    return module, infer(graph)
