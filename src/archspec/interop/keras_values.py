"""The values the Keras source reader follows: plain Python values, Keras names, layers not yet
applied, tensors, models, user functions, classes and their instances, and `Unknown` (what it
could not follow, kept with its error until the model needs it)."""

from __future__ import annotations

import ast
import collections
import copy
import math
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from archspec.errors import Span, SpecError

MAX_RANGE = 100_000  # a loop or list longer than this is not building a model
MAX_POWER = 64  # `2 ** n` beyond this is not a layer size


@dataclass(frozen=True)
class Unknown:
    """A value the reader could not follow, with the error to report if the model needs it."""

    error: SpecError


@dataclass(frozen=True)
class KerasName:
    """A module, class or function of Keras or TensorFlow, by dotted path (`keras.layers.Conv2D`)."""

    path: str

    @property
    def last(self) -> str:
        return self.path.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class LayerObject:
    """A Keras layer made but not applied yet: its class and config (Keras argument names)."""

    keras: str
    args: dict[str, Any]
    spans: dict[str, Span]  # where each argument was written
    span: Span


@dataclass(frozen=True)
class Tensor:
    """A tensor of the layer graph (its node), as Keras code holds it."""

    node: int


class KerasShape(tuple):
    """`x.shape` of a tensor: (None, H, W, C), with TensorFlow's `as_list()`."""

    def as_list(self) -> list:
        return list(self)


@dataclass
class Sequential:
    span: Span
    layers: list[LayerObject | Sequential | Instance] = field(default_factory=list)
    input: Tensor | None = None
    broken: SpecError | None = None  # a layer it holds that cannot be followed: an error once it is used


@dataclass(frozen=True)
class Functional:
    output: Tensor
    span: Span


@dataclass(frozen=True)
class Function:
    """A user function, with the scope it was defined in (module or enclosing function)."""

    node: ast.FunctionDef | ast.Lambda
    scope: Any  # the enclosing names (a ChainMap)
    self: Any = None  # the instance, for a method


@dataclass(frozen=True)
class KerasClass:
    """A user class deriving from `keras.Model` or `keras.layers.Layer`."""

    node: ast.ClassDef
    scope: Any
    model: bool  # a keras.Model (else a layer)


@dataclass
class Instance:
    """An object of a user Keras class: the attributes its `__init__` set."""

    cls: KerasClass
    attrs: dict[str, Any]
    span: Span
    input_shape: tuple | None = None  # from `model.build((None, H, W, C))`
    output: Any = None  # the Tensor a model's call on an input gave, when the script calls it


@dataclass(frozen=True)
class PythonModule:
    """A standard-library module the reader evaluates (`math`, `copy`): its allowed functions (and
    constants: `string.ascii_lowercase`)."""

    name: str
    functions: dict[str, Callable]


@dataclass
class SourceModule:
    """A Python module of the script's own folder or package: its file is read (its top level
    evaluated by the reader, never run) the first time one of its names is used. `env` holds its
    names once read; `failed`, the error that stopped its reading, if any."""

    name: str  # dotted, as the importing code names it
    path: Any  # its .py file (a package's __init__.py)
    folder: Any = None  # a package's folder, where its submodules are
    env: dict | None = None
    failed: SpecError | None = None


@dataclass(frozen=True)
class ImportedName:
    """`from module import name`: looked up in the module when the code first uses it."""

    module: SourceModule
    name: str
    node: ast.AST  # the import statement


class Return(Exception):
    """A `return` statement of a user function, carrying its value."""

    def __init__(self, value: Any) -> None:
        self.value = value


class Break(Exception):
    """A `break` statement."""


class Continue(Exception):
    """A `continue` statement."""


MODEL_VALUES = (
    Tensor,
    LayerObject,
    Sequential,
    Functional,
    KerasName,
    Function,
    KerasClass,
    Instance,
    SourceModule,
    ImportedName,
)


def span_of(node: ast.AST) -> Span:
    line, column = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
    end = getattr(node, "end_col_offset", None)
    same_line = getattr(node, "end_lineno", line) == line and end is not None
    return Span(line, column, end + 1 if same_line else None)


def apply(make_error, node: ast.AST, function, *args, values: bool = True, **kwargs):
    """`function(*args)`; `make_error(message, node)` makes the SpecError to raise. With `values`
    (operators), the arguments must be plain values: `2 * layer` is no number."""
    if values and any(isinstance(a, MODEL_VALUES) for a in (*args, *kwargs.values())):
        raise make_error("cannot compute this with a tensor, layer or model", node)
    try:
        return function(*args, **kwargs)
    except SpecError:
        raise
    except Exception as problem:  # the user's expression failing, e.g. 1 // 0 or a bad index
        raise make_error(f"cannot evaluate this expression ({type(problem).__name__}: {problem})", node) from None


def _range(*args):
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise ValueError(f"a range of {len(numbers):,} items")
    return numbers


def _power(a, b):
    if isinstance(b, (int, float)) and abs(b) > MAX_POWER:
        raise ValueError(f"an exponent of {b} is not a layer size")
    return a**b


def _repeat(a, b):
    """`a * b`, refusing a sequence repeated past the loop bound (`[0] * 10**9`)."""
    for sequence, count in ((a, b), (b, a)):
        if isinstance(sequence, (list, tuple, str)) and isinstance(count, int) and len(sequence) * count > MAX_RANGE:
            raise ValueError(f"a sequence of {len(sequence) * count:,} items")
    return a * b


UNARY = {ast.USub: lambda a: -a, ast.UAdd: lambda a: +a, ast.Not: lambda a: not a, ast.Invert: lambda a: ~a}
BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: _repeat,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: _power,
    ast.LShift: lambda a, b: _power(2, b) * a,
    ast.RShift: lambda a, b: a >> b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b,
}
COMPARE = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
BUILTINS = {
    "range": _range,
    "len": len,
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "min": min,
    "max": max,
    "sum": sum,
    "abs": abs,
    "round": round,
    "tuple": tuple,
    "list": list,
    "dict": dict,
    "enumerate": lambda *a, **k: list(enumerate(*a, **k)),
    "zip": lambda *a: list(zip(*a)),
    "reversed": lambda a: list(reversed(a)),
    "sorted": sorted,
    "any": any,
    "all": all,
    "isinstance": lambda value, kinds: isinstance(value, kinds),
    "divmod": divmod,
    "pow": lambda a, b: _power(a, b),
    "print": lambda *a, **k: None,
    "chr": chr,
    "ord": ord,
    "hasattr": hasattr,
    "callable": callable,
}
# Builtin names that are also values (the second argument of `isinstance`).
TYPES = {"int": int, "float": float, "bool": bool, "str": str, "tuple": tuple, "list": list, "dict": dict}
# Methods of plain values a model-building script calls (`outputs.append(x)`, `name.format(i)`).
METHODS = {
    list: {"append", "extend", "insert", "pop", "index", "count", "copy", "reverse"},
    tuple: {"index", "count"},
    dict: {"get", "items", "keys", "values", "update", "setdefault", "pop", "copy"},
    str: {"format", "join", "lower", "upper", "startswith", "endswith", "replace", "split", "strip"},
    int: {"bit_length"},
    float: {"is_integer"},
}
MODULES = {
    "math": PythonModule(
        "math",
        {
            "ceil": math.ceil,
            "floor": math.floor,
            "sqrt": math.sqrt,
            "log": math.log,
            "log2": math.log2,
            "exp": math.exp,
            "prod": math.prod,
            "gcd": math.gcd,
            "isclose": math.isclose,
        },
    ),
    "copy": PythonModule("copy", {"copy": copy.copy, "deepcopy": copy.deepcopy}),
    "collections": PythonModule("collections", {"namedtuple": collections.namedtuple, "OrderedDict": dict}),
    "string": PythonModule(
        "string",
        {"ascii_lowercase": string.ascii_lowercase, "ascii_uppercase": string.ascii_uppercase, "digits": string.digits},
    ),
    # Python 2/3 compatibility (six), as Keras-2-era code imports it: Python 3's own builtins
    "six.moves": PythonModule("six.moves", {"xrange": _range, "range": _range, "zip": BUILTINS["zip"]}),
}
