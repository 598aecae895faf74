"""The spec's own small expression evaluator (never Python's eval): integer and real arithmetic
over macro arguments, with `min`, `max`, `round`, `floor`, `ceil`, `int`, `abs`, `pow`, `log`, `sqrt`
(RegNet's width rule) and Keras' `make_divisible` for width multipliers (MobileNet, EfficientNet).
Every built-in checks its arguments and refuses a bad one at that argument's column.

A bare name evaluates to its bound macro argument, or else to a `Word` (`relu`, `same`, `true`);
arithmetic on a word is an error that suggests the nearest bound name. Comparisons, `and`/`or`/`not`
and `a if c else b` give and take booleans (`true`/`false`; see `truth`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from archspec.errors import Span, SpecError
from archspec.syntax import BinOp, Call, Compare, Dims, Expr, IfElse, Logic, Neg, Num, Range, Ref
from archspec.text import did_you_mean, show
from archspec.words import STREAM_NAMES, Interval, Word

# Values stay far below this; anything larger is a runaway expression, not a model.
MAX_MAGNITUDE = 10**15

Value = int | float | bool | tuple | Word | Interval


class Unavailable:
    """A name bound to no value here (`height` of a vector stream): reading it is an error at its
    column, saying why."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint


def truth(value: Value) -> bool | None:
    """`value` as a condition: a boolean, or the word `true`/`false` in any case; None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Word) and value.text.lower() in ("true", "false"):
        return value.text.lower() == "true"
    return None


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `value` to a multiple of `divisor`, dropping at most 10% (Keras/TF-slim rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


Number = int | float

# name -> (min args, max args, what the arguments are) for messages and the docs
SIGNATURES: dict[str, tuple[int, int, str]] = {
    "min": (2, 16, "min(a, b, ...)"),
    "max": (2, 16, "max(a, b, ...)"),
    "abs": (1, 1, "abs(x)"),
    "round": (1, 2, "round(x) or round(x, digits)"),
    "floor": (1, 1, "floor(x)"),
    "ceil": (1, 1, "ceil(x)"),
    "int": (1, 1, "int(x)"),
    "make_divisible": (1, 3, "make_divisible(v, divisor=8, min_value=divisor)"),
    "pow": (2, 2, "pow(x, y)"),
    "log": (1, 2, "log(x) or log(x, base)"),
    "sqrt": (1, 1, "sqrt(x)"),
}


def _whole(value: Number, span: Span, what: str) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise SpecError(f"{what} must be a whole number, got {value:g}", span)
        value = int(value)
    return value


def _apply(name: str, args: list[Number], spans: list[Span], span: Span) -> Number:
    """Compute built-in `name`, refusing an argument it cannot take at that argument's span."""
    if name in ("min", "max"):
        return min(args) if name == "min" else max(args)
    if name == "abs":
        return abs(args[0])
    if name in ("floor", "ceil"):
        return math.floor(args[0]) if name == "floor" else math.ceil(args[0])
    if name == "int":
        return int(args[0])
    if name == "round":
        if len(args) == 1:
            return round(args[0])  # halves to even, like Python
        digits = _whole(args[1], spans[1], "the digits of `round`")
        if abs(digits) > 15:
            raise SpecError(f"`round` keeps at most 15 digits, got {digits}", spans[1])
        return round(args[0], digits)
    if name == "make_divisible":
        divisor = args[1] if len(args) > 1 else 8
        if divisor <= 0:
            raise SpecError("`make_divisible` needs a positive divisor", spans[1])
        if len(args) > 2 and args[2] < 0:
            raise SpecError("the `min_value` of `make_divisible` must not be negative", spans[2])
        return make_divisible(args[0], divisor, *args[2:])
    if name == "pow":
        return _pow(args[0], args[1], spans, span)
    if name == "sqrt":
        if args[0] < 0:
            raise SpecError(f"`sqrt` of a negative number ({args[0]:g})", spans[0])
        return math.sqrt(args[0])
    if args[0] <= 0:  # log
        raise SpecError(f"`log` needs a number above 0, got {args[0]:g}", spans[0])
    if len(args) == 1:
        return math.log(args[0])
    if args[1] <= 0 or args[1] == 1:
        raise SpecError(f"the base of `log` must be above 0 and not 1, got {args[1]:g}", spans[1])
    return math.log(args[0], args[1])


def _pow(base: Number, exponent: Number, spans: list[Span], span: Span) -> Number:
    whole = isinstance(exponent, int) or exponent.is_integer()
    if base < 0 and not whole:
        raise SpecError(f"a negative number to the power {exponent:g} is not a real number", spans[1])
    if base == 0 and exponent < 0:
        raise SpecError("0 to a negative power is a division by zero", spans[1])
    # refuse a runaway result before computing it (2 to the power 10**12 would never finish)
    if abs(base) not in (0, 1) and exponent * math.log10(abs(base)) > math.log10(MAX_MAGNITUDE):
        raise SpecError(f"expression value is larger than {MAX_MAGNITUDE:.0e}", span)
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        return base**exponent
    return float(base) ** float(exponent)


def evaluate(expr: Expr, env: Mapping[str, Value]) -> Value:
    """Evaluate `expr` with macro arguments `env`. Raises `SpecError` at the offending span."""
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Dims):
        return expr.values
    if isinstance(expr, Ref):
        value = env.get(expr.name, Word(expr.name))
        if isinstance(value, Unavailable):
            raise SpecError(value.message, expr.span, hint=value.hint)
        return value
    if isinstance(expr, Neg):
        return _checked(-_number(expr.operand, env), expr.span)
    if isinstance(expr, BinOp):
        return _binop(expr, env)
    if isinstance(expr, Call):
        return _call(expr, env)
    if isinstance(expr, Range):
        return Interval(_number(expr.start, env), _number(expr.stop, env))
    if isinstance(expr, Compare):
        return _compare(expr, env)
    if isinstance(expr, Logic):
        left = condition(expr.left, env)
        if expr.op == "not":
            return not left
        if left == (expr.op == "or"):  # short circuit, as Python: the right side is not evaluated
            return left
        return condition(expr.right, env)
    if isinstance(expr, IfElse):
        return evaluate(expr.then if condition(expr.condition, env) else expr.otherwise, env)
    raise TypeError(f"not an expression: {expr!r}")


def condition(expr: Expr, env: Mapping[str, Value]) -> bool:
    """Evaluate `expr` as a condition; anything but true or false is an error at its span."""
    value = evaluate(expr, env)
    result = truth(value)
    if result is None:
        hint = "a condition is a comparison (`f == 64`, `channels != out`), `and`/`or`/`not`, or true/false"
        raise SpecError(f"a condition must be true or false, got `{show(value)}`", expr.span, hint=hint)
    return result


def _compare(expr: Compare, env: Mapping[str, Value]) -> bool:
    if expr.op in ("==", "!="):
        left, right = (_comparable(evaluate(side, env)) for side in (expr.left, expr.right))
        # different kinds are simply unequal (`pad == same` with pad=1), as in Python
        equal = type(left) is type(right) and left == right
        return equal if expr.op == "==" else not equal
    left, right = _number(expr.left, env), _number(expr.right, env)
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[expr.op]


def _comparable(value: Value):
    """Numbers compare as numbers (`2 == 2.0`), words by their text, true/false as booleans."""
    flag = truth(value)
    if flag is not None:
        return flag
    if isinstance(value, (int, float)):
        return float(value)
    return value


def _number(expr: Expr, env: Mapping[str, Value]) -> int | float:
    value = evaluate(expr, env)
    if truth(value) is not None:
        raise SpecError(f"`{show(value)}` is true or false, not a number", expr.span)
    if isinstance(value, Word):
        if env:
            listing = "the names defined here are " + ", ".join(f"`{name}`" for name in env)
        else:
            listing = "names in expressions refer to the arguments of a `def`"
        listing += "; `channels`, `height` and `width` are the current stream's sizes"
        hint = did_you_mean(value.text, [*env, *STREAM_NAMES]) or listing
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
    if expr.func not in SIGNATURES:
        hint = did_you_mean(expr.func, SIGNATURES) or f"functions: {', '.join(SIGNATURES)}"
        raise SpecError(f"unknown function `{expr.func}`", expr.span, hint=hint)
    if expr.kwargs:
        raise SpecError(
            f"`{expr.func}` takes no keyword arguments",
            expr.kwargs[0].span,
            hint=f"usage: {SIGNATURES[expr.func][2]}; keywords are for layers, as in `bn(scale=false)`",
        )
    least, most, usage = SIGNATURES[expr.func]
    if not least <= len(expr.args) <= most:
        count = f"{least}" if least == most else f"{least} to {most}"
        plural = "" if count == "1" else "s"
        # too many: at the first one too many; too few: at the function's name
        where = expr.args[most].span if len(expr.args) > most else expr.span
        raise SpecError(
            f"`{expr.func}` takes {count} argument{plural}, got {len(expr.args)}", where, hint=f"usage: {usage}"
        )
    args = [_number(arg, env) for arg in expr.args]
    return _checked(_apply(expr.func, args, [arg.span for arg in expr.args], expr.span), expr.span)


def _checked(value: int | float, span: Span) -> int | float:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise SpecError("expression is not a finite number", span)
    if abs(value) > MAX_MAGNITUDE:
        raise SpecError(f"expression value is larger than {MAX_MAGNITUDE:.0e}", span)
    return value
