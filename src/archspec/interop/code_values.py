"""Values of written code that differ between the instances one piece of code stands for: the calls
of a macro written as one function, the rounds of a loop written once.

A `Sym` is a small expression tree over a function's parameters and the sizes of its inputs. It
evaluates for each instance with Python's semantics (what the written code will compute) and renders
as Python source. A `Traced` is a Sym over the instances at hand: arithmetic on it builds a bigger
Sym (so the layer kinds' own shape rules and code facets run on it unchanged), deciding on it
(`==`, `if`) gives the one answer every instance agrees on, or raises `Varies`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archspec.expr import make_divisible
from archspec.layers.base import Varies
from archspec.syntax import BinOp, Call, Compare, Dims, Expr, IfElse, Logic, Neg, Num, Range, Ref
from archspec.words import Interval, Word

# spec function -> (Python name in written code, its implementation)
FUNCTIONS: dict[str, tuple[str, Callable]] = {
    "min": ("min", min),
    "max": ("max", max),
    "abs": ("abs", abs),
    "round": ("round", round),
    "int": ("int", int),
    "floor": ("math.floor", math.floor),
    "ceil": ("math.ceil", math.ceil),
    "pow": ("pow", pow),
    "log": ("math.log", math.log),
    "sqrt": ("math.sqrt", math.sqrt),
    "make_divisible": ("make_divisible", make_divisible),
}


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _sides(value):
    if isinstance(value, int):
        return (value,) * 4
    return (value[0], value[0], value[1], value[1]) if len(value) == 2 else tuple(value)


# The spec's own conversions, where calls spell a size differently (`3` in one, `1x7` in another):
# the written file defines them (see HELPERS) and converts at run time, as the spec does.
FUNCTIONS["pair"] = ("pair", _pair)
FUNCTIONS["sides"] = ("sides", _sides)
HELPERS = {
    "make_divisible": None,  # MAKE_DIVISIBLE, below
    "pair": '''def pair(size):
    """A size as (height, width): `3` is 3x3."""
    return (size, size) if isinstance(size, int) else tuple(size)''',
    "sides": '''def sides(padding):
    """A padding as (top, bottom, left, right): `N` on every side, `(H, W)` above and below and
    left and right."""
    if isinstance(padding, int):
        return (padding,) * 4
    return (padding[0], padding[0], padding[1], padding[1]) if len(padding) == 2 else tuple(padding)''',
}

MAKE_DIVISIBLE = inspect.getsource(make_divisible).strip()  # the spec's own, written into the file
HELPERS["make_divisible"] = MAKE_DIVISIBLE

_BINARY = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
}
_COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
# Python's precedence, loosest first: what needs parentheses around it where
_PRECEDENCE = {"ifelse": 0, "or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6}


def python_value(value: Any) -> Any:
    """A spec value as the Python value written code passes: words as strings, true/false as
    booleans, a range as a (start, stop) tuple."""
    if isinstance(value, Word) and value.text.lower() in ("true", "false"):
        return value.text.lower() == "true"
    if isinstance(value, Word):
        return value.text
    if isinstance(value, Interval):
        return (value.start, value.stop)
    return value


@dataclass(frozen=True)
class Sym:
    """One node of an expression tree: `op` and its `args` (see `evaluate` for the ops)."""

    op: str
    args: tuple

    def evaluate(self, instance: Instance) -> Any:
        op, args = self.op, self.args
        if op == "const":
            return args[0]
        if op == "param":
            return python_value(instance.env[args[0]])
        if op == "leaf":
            return instance.leaves[args[0]]
        if op in _BINARY:
            return _BINARY[op](args[0].evaluate(instance), args[1].evaluate(instance))
        if op == "neg":
            return -args[0].evaluate(instance)
        if op == "call":
            return FUNCTIONS[args[0]][1](*(a.evaluate(instance) for a in args[1]))
        if op == "cmp":
            return _COMPARE[args[0]](args[1].evaluate(instance), args[2].evaluate(instance))
        if op == "and":
            return args[0].evaluate(instance) and args[1].evaluate(instance)
        if op == "or":
            return args[0].evaluate(instance) or args[1].evaluate(instance)
        if op == "not":
            return not args[0].evaluate(instance)
        if op == "ifelse":
            then, condition, otherwise = args
            return then.evaluate(instance) if condition.evaluate(instance) else otherwise.evaluate(instance)
        if op == "tuple":
            return tuple(a.evaluate(instance) for a in args)
        if op == "index":
            return args[0].evaluate(instance)[args[1]]
        raise TypeError(op)

    def leaves(self) -> set:
        """The leaf keys and parameter names this expression reads."""
        if self.op == "param":
            return {("param", self.args[0])}
        if self.op == "leaf":
            return {self.args[0]}
        found: set = set()
        for arg in self.args:
            if isinstance(arg, Sym):
                found |= arg.leaves()
            elif isinstance(arg, tuple):
                for item in arg:
                    if isinstance(item, Sym):
                        found |= item.leaves()
        return found

    def render(self, names: Callable[[Sym], str]) -> str:
        """Python source; `names` writes a parameter or a leaf (or raises `Varies`)."""
        op, args = self.op, self.args
        if op == "const":
            from archspec.layers.base import python

            return python(args[0])
        if op in ("param", "leaf"):
            return names(self)
        if op in _BINARY:
            left = _operand(args[0], names, _PRECEDENCE[op], right=False)
            return f"{left} {op} {_operand(args[1], names, _PRECEDENCE[op], right=True)}"
        if op == "neg":
            return "-" + _operand(args[0], names, 7, right=False)
        if op == "call":
            return f"{FUNCTIONS[args[0]][0]}({', '.join(a.render(names) for a in args[1])})"
        if op == "cmp":
            return f"{_operand(args[1], names, 4, True)} {args[0]} {_operand(args[2], names, 4, True)}"
        if op in ("and", "or"):
            level = _PRECEDENCE[op]
            return f"{_operand(args[0], names, level, False)} {op} {_operand(args[1], names, level, True)}"
        if op == "not":
            return "not " + _operand(args[0], names, 3, False)
        if op == "ifelse":
            then, condition, otherwise = args
            return f"{_operand(then, names, 1, True)} if {_operand(condition, names, 1, True)} else {otherwise.render(names)}"
        if op == "tuple":
            return "(" + ", ".join(a.render(names) for a in args) + ("," if len(args) == 1 else "") + ")"
        if op == "index":
            return f"{_operand(args[0], names, 8, False)}[{args[1]}]"
        raise TypeError(op)


def _operand(sym: Sym, names, level: int, right: bool) -> str:
    text = sym.render(names)
    inner = _PRECEDENCE.get(sym.op if sym.op != "cmp" else "cmp")
    if sym.op == "const" and isinstance(sym.args[0], (int, float)) and sym.args[0] < 0:
        inner = 5
    if sym.op == "neg":
        inner = 7
    if inner is not None and (inner < level or (right and inner == level)):
        return f"({text})"
    return text


def const(value: Any) -> Sym:
    return Sym("const", (value,))


def from_syntax(expr: Expr, name: Callable[[str], Sym | None]) -> Sym:
    """The Sym of a spec expression; `name` gives the Sym of a bare name (a parameter, a stream size),
    or None for a word (`same`, `true`)."""
    if isinstance(expr, Num):
        return const(expr.value)
    if isinstance(expr, Dims):
        return const(tuple(expr.values))
    if isinstance(expr, Ref):
        found = name(expr.name)
        if found is not None:
            return found
        return const(python_value(Word(expr.name)))
    if isinstance(expr, Neg):
        return Sym("neg", (from_syntax(expr.operand, name),))
    if isinstance(expr, BinOp):
        return Sym(expr.op, (from_syntax(expr.left, name), from_syntax(expr.right, name)))
    if isinstance(expr, Call) and expr.func in FUNCTIONS and not expr.kwargs:
        return Sym("call", (expr.func, tuple(from_syntax(a, name) for a in expr.args)))
    if isinstance(expr, Compare):
        return Sym("cmp", (expr.op, from_syntax(expr.left, name), from_syntax(expr.right, name)))
    if isinstance(expr, Logic):
        if expr.op == "not":
            return Sym("not", (from_syntax(expr.left, name),))
        return Sym(expr.op, (from_syntax(expr.left, name), from_syntax(expr.right, name)))
    if isinstance(expr, IfElse):
        parts = (expr.then, expr.condition, expr.otherwise)
        return Sym("ifelse", tuple(from_syntax(p, name) for p in parts))
    if isinstance(expr, Range):
        return Sym("tuple", (from_syntax(expr.start, name), from_syntax(expr.stop, name)))
    raise Varies(f"cannot write `{type(expr).__name__}` as Python")


class Instance:
    """One expansion a piece of written code stands for: the parameters' values (`env`, as the spec
    bound them) and the values of its leaves (input sizes, sizes returned by calls)."""

    __slots__ = ("env", "leaves")

    def __init__(self, env: dict[str, Any], leaves: dict | None = None) -> None:
        self.env = env
        self.leaves = dict(leaves or {})


class Traced:
    """A value that differs, or may differ, between `instances`: its expression, evaluated per
    instance. Arithmetic builds expressions; decisions need every instance to agree."""

    __slots__ = ("instances", "sym")

    def __init__(self, sym: Sym, instances: tuple[Instance, ...]) -> None:
        self.sym = sym
        self.instances = instances

    @property
    def values(self) -> tuple:
        return tuple(self.sym.evaluate(i) for i in self.instances)

    def agreed(self) -> Any:
        """The one value every instance has, or `Varies`."""
        values = self.values
        if any(v != values[0] or type(v) is not type(values[0]) for v in values[1:]):
            raise Varies(f"differs between the calls: {', '.join(map(repr, values))}")
        return values[0]

    def python_text(self) -> str:
        return placeholder(self.sym)

    # --- arithmetic builds expressions ---------------------------------------------------------

    def _lift(self, other: Any) -> Sym:
        if isinstance(other, Traced):
            return other.sym
        if isinstance(other, (int, float, bool, str, tuple)):
            return const(other)
        raise TypeError(other)

    def _binary(self, op: str, other: Any, reflected: bool = False):
        try:
            other_sym = self._lift(other)
        except TypeError:
            return NotImplemented
        args = (other_sym, self.sym) if reflected else (self.sym, other_sym)
        return Traced(simplified(op, args), self.instances)

    def __add__(self, other):
        return self._binary("+", other)

    def __radd__(self, other):
        return self._binary("+", other, True)

    def __sub__(self, other):
        return self._binary("-", other)

    def __rsub__(self, other):
        return self._binary("-", other, True)

    def __mul__(self, other):
        return self._binary("*", other)

    def __rmul__(self, other):
        return self._binary("*", other, True)

    def __truediv__(self, other):
        return self._binary("/", other)

    def __rtruediv__(self, other):
        return self._binary("/", other, True)

    def __floordiv__(self, other):
        return self._binary("//", other)

    def __rfloordiv__(self, other):
        return self._binary("//", other, True)

    def __mod__(self, other):
        return self._binary("%", other)

    def __rmod__(self, other):
        return self._binary("%", other, True)

    def __neg__(self):
        return Traced(Sym("neg", (self.sym,)), self.instances)

    def __ceil__(self):
        return Traced(Sym("call", ("ceil", (self.sym,))), self.instances)

    def __floor__(self):
        return Traced(Sym("call", ("floor", (self.sym,))), self.instances)

    def __getitem__(self, index):
        if not isinstance(index, int):
            raise Varies("a slice of a value that differs between calls")
        return Traced(element(self.sym, index), self.instances)

    def __len__(self) -> int:
        lengths = {len(v) for v in self.values}
        if len(lengths) != 1:
            raise Varies("sizes of different lengths")
        return lengths.pop()

    def __iter__(self):
        return iter([self[i] for i in range(len(self))])

    # --- decisions need agreement ----------------------------------------------------------------

    def _decide(self, op, other) -> bool:
        theirs = other.values if isinstance(other, Traced) else (other,) * len(self.instances)
        answers = {bool(op(mine, their)) for mine, their in zip(self.values, theirs)}
        if len(answers) != 1:
            raise Varies("a decision differs between the calls")
        return answers.pop()

    def __eq__(self, other):
        return self._decide(lambda a, b: a == b, other)

    def __ne__(self, other):
        return self._decide(lambda a, b: a != b, other)

    def __lt__(self, other):
        return self._decide(lambda a, b: a < b, other)

    def __le__(self, other):
        return self._decide(lambda a, b: a <= b, other)

    def __gt__(self, other):
        return self._decide(lambda a, b: a > b, other)

    def __ge__(self, other):
        return self._decide(lambda a, b: a >= b, other)

    def __bool__(self) -> bool:
        return bool(self.agreed())

    def __int__(self) -> int:
        return int(self.agreed())

    def __index__(self) -> int:
        return int(self.agreed())

    def __float__(self) -> float:
        return float(self.agreed())

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"Traced({self.sym.op}: {self.values})"


def _is_number(sym: Sym, number: int) -> bool:
    value = sym.args[0] if sym.op == "const" else None
    return isinstance(value, int) and not isinstance(value, bool) and value == number


def simplified(op: str, args: tuple[Sym, Sym]) -> Sym:
    """`a op b`, without the identities written code need not spell (`0 + a`, `a - 0`, `1 * a`)."""
    left, right = args
    if op == "+" and _is_number(left, 0):
        return right
    if op in ("+", "-") and _is_number(right, 0):
        return left
    if op == "*" and _is_number(left, 1):
        return right
    if op in ("*", "//") and _is_number(right, 1):
        return left
    return Sym(op, args)


def element(sym: Sym, index: int) -> Sym:
    """Item `index` of a sequence: of a written tuple, the item itself."""
    if sym.op == "tuple":
        return sym.args[index]
    if sym.op == "const" and isinstance(sym.args[0], tuple):
        return const(sym.args[0][index])
    return Sym("index", (sym, index))


def substitute(sym: Sym, replace: Callable[[Sym], Sym | None]) -> Sym:
    """`sym` with each parameter or leaf `replace` gives a Sym for replaced (the others kept)."""
    if sym.op in ("param", "leaf"):
        found = replace(sym)
        return sym if found is None else found
    args = tuple(
        substitute(a, replace)
        if isinstance(a, Sym)
        else tuple(substitute(i, replace) if isinstance(i, Sym) else i for i in a)
        if isinstance(a, tuple)
        else a
        for a in sym.args
    )
    if sym.op in _BINARY:
        return simplified(sym.op, args)
    if sym.op == "index":
        return element(args[0], args[1])
    return Sym(sym.op, args)


# --- placeholders: a Traced value in written text, resolved per place it is written -----------------

_PLACED: dict[str, Sym] = {}
_MARK = "\x00"


def forget_placeholders() -> None:
    """Drop the placeholders of finished code (each is resolved right after it is made)."""
    _PLACED.clear()


def placeholder(sym: Sym) -> str:
    key = f"{_MARK}{len(_PLACED)}{_MARK}"
    _PLACED[key] = sym
    return key


def resolve(text: str, names: Callable[[Sym], str]) -> str:
    """`text` with each placeholder rendered by `names` (a parameter's or leaf's Python text)."""
    if _MARK not in text:
        return text
    parts = text.split(_MARK)
    for index in range(1, len(parts), 2):
        parts[index] = _PLACED[f"{_MARK}{parts[index]}{_MARK}"].render(names)
    return "".join(parts)


# --- attribute values: the converted value per instance, and the expression that gives it -----------


def traced_attr(
    converted: list[Any], raw: Sym | None, instances: tuple[Instance, ...], conversion: str | None = None
) -> Any:
    """An attribute's value over `instances`: the converted value where every instance has the same
    one and no expression wrote it; else a Traced (or a tuple of them) whose expression is `raw`, the
    spec's expression for the argument, or an element of it, chosen so that it gives each instance's
    converted value (a kernel `k` converted to (k, k), a padding `pad` of four sides); else the
    spec's `conversion` of it (`pair`, `sides`) written out."""
    if raw is None or not (raw.leaves()):
        if all(_same(c, converted[0]) for c in converted[1:]):
            return converted[0]
        return _opaque(converted, instances)
    raws = [raw.evaluate(i) for i in instances]
    found = _match(converted, raw, raws, instances)
    if conversion is not None and _is_opaque(found):  # a size spelled `3` here and `1x7` there
        converter = Sym("call", (conversion, (raw,)))
        found = _match(converted, converter, [converter.evaluate(i) for i in instances], instances)
    return found


def _is_opaque(value: Any) -> bool:
    if isinstance(value, tuple):
        return any(_is_opaque(v) for v in value)
    return isinstance(value, Traced) and value.sym.op == "leaf" and value.sym.args[0][0] == "opaque"


def _match(converted: list, sym: Sym, raws: list, instances) -> Any:
    if all(_same(c, r) for c, r in zip(converted, raws)):
        return Traced(sym, instances)
    if all(isinstance(c, int) and not isinstance(c, bool) for c in converted) and all(
        isinstance(r, float) and r == c for c, r in zip(converted, raws)
    ):
        return Traced(Sym("call", ("int", (sym,))), instances)
    if all(isinstance(c, tuple) for c in converted) and len({len(c) for c in converted}) == 1:
        return tuple(_element(converted, index, sym, raws, instances) for index in range(len(converted[0])))
    return _opaque(converted, instances)


def _element(converted: list, index: int, sym: Sym, raws: list, instances) -> Any:
    items = [c[index] for c in converted]
    if isinstance(items[0], tuple):
        return _match(items, sym, raws, instances)
    candidates = [(sym, raws)]
    if all(isinstance(r, tuple) for r in raws):
        for j in range(min(len(r) for r in raws)):
            candidates.append((element(sym, j), [r[j] for r in raws]))
    for candidate, values in candidates:
        if all(_same(c, r) for c, r in zip(items, values)):
            return Traced(candidate, instances)
    return _opaque(items, instances)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


_OPAQUE = [0]


def _opaque(values: list, instances: tuple[Instance, ...]) -> Traced:
    """A value known per instance with no expression that writes it (deciding on it works; writing
    it raises `Varies`)."""
    _OPAQUE[0] += 1
    key = ("opaque", _OPAQUE[0])
    for instance, value in zip(instances, values):
        instance.leaves[key] = value
    return Traced(Sym("leaf", (key,)), instances)


def unify(values: list[Any], instances: tuple[Instance, ...], candidates: list[Any] = ()) -> Any:
    """One value for `instances` that have `values`: the plain value when all agree, else the first
    candidate (a Traced from another path) that evaluates to each, else an opaque Traced."""
    named = [c for c in candidates if isinstance(c, Traced) and any(k[0] == "param" for k in c.sym.leaves())]
    for candidate in named:  # a size the spec computes from parameters reads best as that expression
        try:
            if all(_same(candidate.sym.evaluate(i), v) for i, v in zip(instances, values)):
                return Traced(candidate.sym, instances)
        except (KeyError, TypeError):
            continue
    if all(_same(v, values[0]) for v in values[1:]):
        return values[0]
    for candidate in candidates:
        if isinstance(candidate, Traced):
            try:
                if all(_same(candidate.sym.evaluate(i), v) for i, v in zip(instances, values)):
                    return Traced(candidate.sym, instances)
            except (KeyError, TypeError):
                continue
    return _opaque(values, instances)
