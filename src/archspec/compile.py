"""The one front door: spec text → typed graph (parse, expand, infer)."""

from __future__ import annotations

from archspec.errors import SourceText
from archspec.expand import expand
from archspec.infer import TypedGraph, infer
from archspec.parse import parse


def compile_spec(text: str, name: str = "<spec>", input_shape: tuple[int, ...] | None = None) -> TypedGraph:
    """Parse, expand and type a spec. `input_shape` (HxWxC) overrides its `input` line.

    Raises `SpecError` for any mistake in the spec, located at its line and column.
    """
    module = parse(text, name)
    graph = expand(module, SourceText(name, text), input_shape)
    return infer(graph)
