"""A spec's syntax tree lowered for code generation: macros stay functions, blocks stay blocks, and
each layer's arguments are either converted values (`Const`) or Python expressions over the
enclosing function's parameters (`Sym`). The code writers for Keras, Flax and PyTorch read this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archspec.errors import SourceText, SpecError
from archspec.expr import evaluate
from archspec.layers import REGISTRY, Word
from archspec.layers import TRAILING_WORDS as SUFFIX_WORDS
from archspec.syntax import (
    BinOp,
    Block,
    Call,
    Compare,
    Def,
    Dims,
    Expr,
    If,
    IfElse,
    Line,
    Logic,
    Module,
    Neg,
    Num,
    Range,
    Ref,
)
from archspec.words import STREAM_NAMES


@dataclass(frozen=True)
class Sym:
    """A Python expression over function parameters, e.g. `4 * f`."""

    text: str


@dataclass
class LayerOp:
    kind: str
    attrs: dict[str, Any]  # converted value, or Sym
    shape: tuple[int, ...]  # the input's shape at the first place the line is used (ranks never differ)


@dataclass
class CallOp:
    name: str
    args: list[str]  # Python expressions
    kwargs: list[tuple[str, str]]


@dataclass
class MergeOp:
    kind: str  # add, concat, multiply
    branches: list[list]


@dataclass
class RepeatOp:
    count: str  # Python expression
    body: list


@dataclass
class IfOp:
    clauses: list[tuple[str | None, list]]  # (Python condition, or None for `else`; body)


@dataclass
class Function:
    name: str
    params: list[tuple[str, str | None]]  # name, default (Python expression) or None
    late_defaults: list[tuple[str, str]]  # defaults that use earlier parameters: set in the body
    body: list


@dataclass
class Program:
    functions: list[Function]
    body: list
    input_shape: tuple[int, ...]
    helpers: set[str] = field(default_factory=set)  # helper functions the code needs (make_divisible)


PY_FUNCTIONS = {"floor": "math.floor", "ceil": "math.ceil"}
# `channels`, `height`, `width` read the shape of the stream where they are written, channels last
STREAM = "__stream__"
STREAM_AXES = {"channels": -1, "height": -3, "width": -2}


def lower(module: Module, typed, source: SourceText) -> Program:
    """Lower `module` (already compiled to `typed`, so it is known to be valid)."""
    if typed.graph.names:  # the code writers follow one stream through merge blocks
        node = typed.graph.nodes[typed.graph.names[0][0]]
        raise SpecError(
            "exporting code for a spec with named tensors (`-> name`, `@name`) is not supported yet",
            node.span,
            hint="`cnn-arch train` builds and trains it, and exports the trained run to ONNX",
            source=source,
        )
    shapes: dict[tuple[int, int], tuple[int, ...]] = {}
    for node in typed.graph.nodes:
        if node.inputs:
            shapes.setdefault((node.span.line, node.span.column), typed.infos[node.inputs[0]].shape)
    lowering = _Lowering(shapes, source)
    functions = [lowering.function(d) for d in module.defs]
    body = list(module.body)
    if body and isinstance(body[0], Line) and body[0].name == "input":
        body = body[1:]
    return Program(functions, lowering.sequence(body, frozenset()), typed.input_shape, lowering.helpers)


class _Lowering:
    def __init__(self, shapes: dict, source: SourceText) -> None:
        self.shapes = shapes
        self.source = source
        self.helpers: set[str] = set()

    def function(self, definition: Def) -> Function:
        params: list[tuple[str, str | None]] = []
        late: list[tuple[str, str]] = []
        names = frozenset(p.name for p in definition.params)
        for param in definition.params:
            if param.default is None:
                params.append((param.name, None))
            elif _uses(param.default, names):
                params.append((param.name, "None"))
                late.append((param.name, self.python(param.default, names)))
            else:
                params.append((param.name, self.python(param.default, frozenset())))
        return Function(definition.name, params, late, self.sequence(definition.body, names))

    def sequence(self, statements, names: frozenset[str]) -> list:
        ops: list = []
        for statement in statements:
            if isinstance(statement, Block):
                ops.append(self.block(statement, names))
                continue
            if isinstance(statement, If):
                clauses = [(c.condition and self.python(c.condition, names), c.body) for c in statement.clauses]
                ops.append(IfOp([(test, self.sequence(body, names)) for test, body in clauses]))
                continue
            ops_of_line = self.line(statement, names)
            if statement.repeat is not None and statement.repeat != 1:
                ops.append(RepeatOp(str(statement.repeat), ops_of_line))
            else:
                ops.extend(ops_of_line)
        return ops

    def block(self, block: Block, names: frozenset[str]) -> Any:
        if block.name == "repeat":
            return RepeatOp(self.python(block.args[0], names), self.sequence(block.body, names))
        branches = []
        for child in block.body:
            if isinstance(child, Block) and child.name == "branch":
                branches.append(self.sequence(child.body, names))
            else:
                branches.append(self.sequence([child], names))
        return MergeOp(block.name, branches)

    def line(self, line: Line, names: frozenset[str]) -> list:
        if line.name == "identity":
            return []
        if line.name in names:
            raise SpecError(
                f"a line named by the parameter `{line.name}` cannot be exported yet",
                line.span,
                hint="write the layer itself in the macro body",
                source=self.source,
            )
        if line.name not in REGISTRY:  # a macro call
            args = [self.python(a, names) for a in line.args]
            return [CallOp(line.name, args, [(k.name, self.python(k.value, names)) for k in line.kwargs])]
        kind = REGISTRY[line.name]
        positional = [a for a in kind.args if a.positional]
        given: dict[str, Any] = {}
        suffix: list[str] = []
        for expr in line.args:
            if isinstance(expr, Ref) and expr.name in SUFFIX_WORDS and expr.name not in names and kind.takes_suffix:
                suffix.append(expr.name)
            elif isinstance(expr, Call) and expr.func in SUFFIX_WORDS and kind.takes_suffix:
                suffix.append(expr)
            elif len(given) >= len(positional):
                raise SpecError(
                    "an activation or `bn` passed as a macro argument cannot be exported",
                    expr.span,
                    hint="write the word itself in the macro body",
                    source=self.source,
                )
            else:
                given[positional[len(given)].name] = expr
        for kwarg in line.kwargs:
            given[kwarg.name] = kwarg.value
        attrs = self.bind(kind, given, names)
        shape = self.shapes.get((line.span.line, line.span.column), (1, 1, 1))
        ops = [LayerOp(kind.name, attrs, shape)]
        ops.extend(self.trailing(word, names, shape) for word in suffix)
        return ops

    def trailing(self, word: str | Call, names: frozenset[str], shape) -> LayerOp:
        """A trailing layer: `bn` with its defaults, or `bn(scale=false)` with its arguments."""
        if isinstance(word, str):
            return LayerOp(word, {a.name: a.default for a in REGISTRY[word].args}, shape)
        kind = REGISTRY[word.func]
        given = dict(zip((a.name for a in kind.args if a.positional), word.args))
        given.update((kwarg.name, kwarg.value) for kwarg in word.kwargs)
        return LayerOp(kind.name, self.bind(kind, given, names), shape)

    def bind(self, kind, given: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
        """A layer's attributes: defaults, constants evaluated, and expressions over macro
        arguments (`names`) kept as Python code for the writer."""
        attrs: dict[str, Any] = {}
        for arg in kind.args:
            if arg.name not in given:
                attrs[arg.name] = arg.default
            elif _uses(given[arg.name], names):
                attrs[arg.name] = Sym(self.python(given[arg.name], names))
            else:
                attrs[arg.name] = arg.convert(arg.name, evaluate(given[arg.name], {}))
        return attrs

    def python(self, expr: Expr, names: frozenset[str]) -> str:
        """`expr` as Python source; bare words become strings (`same` → "same"), true/false booleans."""
        if isinstance(expr, Num):
            return repr(expr.value)
        if isinstance(expr, Dims):
            return "(" + ", ".join(map(str, expr.values)) + ")"
        if isinstance(expr, Ref):
            if expr.name in names:
                return expr.name
            if expr.name in STREAM_NAMES:  # the writer puts the stream's variable in place of STREAM
                return f"{STREAM}.shape[{STREAM_AXES[expr.name]}]"
            if expr.name in ("true", "false"):
                return "True" if expr.name == "true" else "False"
            return repr(expr.name).replace("'", '"')
        if isinstance(expr, Neg):
            return f"-{self._operand(expr.operand, names)}"
        if isinstance(expr, BinOp):
            return f"{self._operand(expr.left, names)} {expr.op} {self._operand(expr.right, names)}"
        if isinstance(expr, Call):
            if expr.func == "make_divisible":
                self.helpers.add("make_divisible")
            if expr.func in PY_FUNCTIONS:
                self.helpers.add("math")
            func = PY_FUNCTIONS.get(expr.func, expr.func)
            return f"{func}({', '.join(self.python(a, names) for a in expr.args)})"
        if isinstance(expr, Compare):
            return f"{self._operand(expr.left, names)} {expr.op} {self._operand(expr.right, names)}"
        if isinstance(expr, Logic):
            if expr.op == "not":
                return f"not {self._operand(expr.left, names)}"
            return f"{self._operand(expr.left, names)} {expr.op} {self._operand(expr.right, names)}"
        if isinstance(expr, IfElse):
            then, test, otherwise = (self._operand(e, names) for e in (expr.then, expr.condition, expr.otherwise))
            return f"{then} if {test} else {otherwise}"
        if isinstance(expr, Range):  # `channels c//2:c` in a macro: the (start, stop) pair
            return f"({self.python(expr.start, names)}, {self.python(expr.stop, names)})"
        raise SpecError("cannot write this expression as Python", getattr(expr, "span", None), source=self.source)

    def _operand(self, expr: Expr, names: frozenset[str]) -> str:
        text = self.python(expr, names)
        return f"({text})" if isinstance(expr, (BinOp, Neg, Compare, Logic, IfElse)) else text


def _uses(expr: Expr, names: frozenset[str]) -> bool:
    """Whether `expr` mentions one of `names` (so its value is only known when the function runs)."""
    if isinstance(expr, Ref):
        return expr.name in names or expr.name in STREAM_NAMES
    if isinstance(expr, Neg):
        return _uses(expr.operand, names)
    if isinstance(expr, (BinOp, Compare)):
        return _uses(expr.left, names) or _uses(expr.right, names)
    if isinstance(expr, Logic):
        return _uses(expr.left, names) or (expr.right is not None and _uses(expr.right, names))
    if isinstance(expr, IfElse):
        return any(_uses(e, names) for e in (expr.then, expr.condition, expr.otherwise))
    if isinstance(expr, Call):
        return any(_uses(a, names) for a in expr.args)
    if isinstance(expr, Range):
        return _uses(expr.start, names) or _uses(expr.stop, names)
    return False


def word(value: Any) -> Any:
    """A converted value with `Word`s as plain strings."""
    return value.text if isinstance(value, Word) else value
