"""The spec's own small expression evaluator (never Python's eval): integer and real arithmetic
over macro arguments, with `min`, `max`, `round`, `floor`, `ceil`, `int`, `abs` and Keras'
`make_divisible` for width multipliers (MobileNet, EfficientNet).

A bare name evaluates to its bound macro argument, or else to a `Word` (`relu`, `same`, `true`);
arithmetic on a word is an error that suggests the nearest bound name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from archspec.errors import Span, SpecError
from archspec.syntax import BinOp, Call, Dims, Expr, Neg, Num, Range, Ref
from archspec.text import did_you_mean, show
from archspec.words import Interval, Word

# Values stay far below this; anything larger is a runaway expression, not a model.
MAX_MAGNITUDE = 10**15

Value = int | float | tuple | Word | Interval


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `value` to a multiple of `divisor`, never dropping more than 10% (Keras/TF-slim rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _round_half_even(value: float, ndigits: int = 0):
    return round(value, ndigits) if ndigits else round(value)


FUNCTIONS: dict[str, tuple[Any, int, int]] = {
    # name -> (function, min args, max args)
    "min": (min, 1, 16),
    "max": (max, 1, 16),
    "abs": (abs, 1, 1),
    "round": (_round_half_even, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "int": (int, 1, 1),
    "make_divisible": (make_divisible, 1, 3),
}


def evaluate(expr: Expr, env: Mapping[str, Value]) -> Value:
    """Evaluate `expr` with macro arguments `env`. Raises `SpecError` at the offending span."""
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Dims):
        return expr.values
    if isinstance(expr, Ref):
        return env.get(expr.name, Word(expr.name))
    if isinstance(expr, Neg):
        return _checked(-_number(expr.operand, env), expr.span)
    if isinstance(expr, BinOp):
        return _binop(expr, env)
    if isinstance(expr, Call):
        return _call(expr, env)
    if isinstance(expr, Range):
        return Interval(_number(expr.start, env), _number(expr.stop, env))
    raise TypeError(f"not an expression: {expr!r}")


def _number(expr: Expr, env: Mapping[str, Value]) -> int | float:
    value = evaluate(expr, env)
    if isinstance(value, Word):
        if env:
            listing = "the names defined here are " + ", ".join(f"`{name}`" for name in env)
        else:
            listing = "names in expressions refer to the arguments of a `def`"
        hint = did_you_mean(value.text, env) or listing
        raise SpecError(f"`{value.text}` is not defined", expr.span, hint=hint)
    if isinstance(value, tuple):
        raise SpecError(f"`{show(value)}` is a size, not a number", expr.span)
    if isinstance(value, Interval):
        raise SpecError(f"`{show(value)}` is a range, not a number", expr.span)
    return value


def _binop(expr: BinOp, env: Mapping[str, Value]) -> int | float:
    left, right = _number(expr.left, env), _number(expr.right, env)
    op = expr.op
    if op in ("/", "//", "%") and right == 0:
        raise SpecError("division by zero", expr.right.span)
    if op == "+":
        result = left + right
    elif op == "-":
        result = left - right
    elif op == "*":
        result = left * right
    elif op == "/":
        result = left / right
    elif op == "//":
        result = left // right
    else:
        result = left % right
    return _checked(result, expr.span)


def _call(expr: Call, env: Mapping[str, Value]) -> int | float:
    if expr.func not in FUNCTIONS:
        hint = did_you_mean(expr.func, FUNCTIONS) or f"functions: {', '.join(FUNCTIONS)}"
        raise SpecError(f"unknown function `{expr.func}`", expr.span, hint=hint)
    function, least, most = FUNCTIONS[expr.func]
    if not least <= len(expr.args) <= most:
        count = f"{least}" if least == most else f"{least} to {most}"
        raise SpecError(f"`{expr.func}` takes {count} arguments, got {len(expr.args)}", expr.span)
    args = [_number(arg, env) for arg in expr.args]
    if expr.func == "make_divisible" and len(args) > 1 and args[1] <= 0:
        raise SpecError("`make_divisible` needs a positive divisor", expr.args[1].span)
    return _checked(function(*args), expr.span)


def _checked(value: int | float, span: Span) -> int | float:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise SpecError("expression is not a finite number", span)
    if abs(value) > MAX_MAGNITUDE:
        raise SpecError(f"expression value is larger than {MAX_MAGNITUDE:.0e}", span)
    return value
