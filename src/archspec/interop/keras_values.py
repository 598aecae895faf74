"""The values the Keras importer follows: plain Python values, Keras names, layers not yet applied,
tensors, models, user functions and `Unknown` (what it could not follow, kept with its error)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from archspec.errors import Span, SpecError

MAX_RANGE = 100_000  # a loop or list longer than this is not building a model


@dataclass(frozen=True)
class Unknown:
    """A value the importer could not follow, with the error to report if the model needs it."""

    error: SpecError


@dataclass(frozen=True)
class KerasName:
    """A module, class or function of Keras, by dotted path (`keras.layers.Conv2D`)."""

    path: str


@dataclass(frozen=True)
class LayerObject:
    keras: str
    args: dict[str, Any]
    spans: dict[str, Span]  # where each argument was written
    span: Span


@dataclass(frozen=True)
class Tensor:
    node: int


@dataclass
class Sequential:
    span: Span
    layers: list[LayerObject | Sequential] = field(default_factory=list)
    input: Tensor | None = None


@dataclass(frozen=True)
class Functional:
    output: Tensor
    span: Span


@dataclass(frozen=True)
class Function:
    node: ast.FunctionDef


class Return(Exception):
    """A `return` statement of a user function, carrying its value."""

    def __init__(self, value: Any) -> None:
        self.value = value


MODEL_VALUES = (Tensor, LayerObject, Sequential, Functional, KerasName, Function)


def span_of(node: ast.AST) -> Span:
    line, column = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
    end = getattr(node, "end_col_offset", None)
    same_line = getattr(node, "end_lineno", line) == line and end is not None
    return Span(line, column, end + 1 if same_line else None)


def apply(error, node: ast.AST, function, *args, **kwargs):
    """`function(*args)` on plain values; `error(message, node)` makes the SpecError to raise."""
    if any(isinstance(a, MODEL_VALUES) for a in args):
        raise error("cannot translate arithmetic on tensors or layers", node)
    try:
        return function(*args, **kwargs)
    except Exception as error:  # the user's expression failing, e.g. 1/0 or a bad index
        raise error(f"cannot evaluate this expression ({type(error).__name__}: {error})", node) from None


def _range(*args):
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise ValueError(f"a range of {len(numbers):,} items")
    return numbers


UNARY = {ast.USub: lambda a: -a, ast.UAdd: lambda a: +a, ast.Not: lambda a: not a}
BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b if abs(b) < 64 else 1 / 0,
}
COMPARE = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
BUILTINS = {
    "range": _range,
    "len": len,
    "int": int,
    "float": float,
    "min": min,
    "max": max,
    "tuple": tuple,
    "list": list,
    "round": round,
    "abs": abs,
}
