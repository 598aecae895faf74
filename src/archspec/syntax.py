"""The spec's syntax tree: frozen nodes that keep their place in the source.

Produced by `archspec.parse`, consumed by `archspec.expand`. Nothing here knows what a
layer is; a line is a name followed by items.
"""

from __future__ import annotations

from dataclasses import dataclass

from archspec.errors import Span

# --- expressions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Dims:
    """`3x5` or `224x224x3`: a literal tuple of sizes."""

    values: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class Ref:
    """A bare name: a macro argument when one is bound, otherwise a word like `relu` or `same`."""

    name: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / // %
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    span: Span
    kwargs: tuple[KwArg, ...] = ()  # only layer calls take them: `bn(scale=false)`


@dataclass(frozen=True)
class Compare:
    """`a == b`, `channels != out`, `f < 64`: true or false."""

    op: str  # one of == != < <= > >=
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Logic:
    """`a and b`, `a or b`, `not a` (`right` is None): Python's short-circuit rules."""

    op: str  # and, or, not
    left: Expr
    right: Expr | None
    span: Span


@dataclass(frozen=True)
class IfElse:
    """`a if condition else b`: only the chosen side is evaluated."""

    then: Expr
    condition: Expr
    otherwise: Expr
    span: Span


@dataclass(frozen=True)
class Range:
    """`A:B`, the last argument of a line (`channels 0:32`): from A up to, not including, B."""

    start: Expr
    stop: Expr
    span: Span


@dataclass(frozen=True)
class TensorRef:
    """`@e1`: the tensor a line named with `-> e1`, as a macro argument (`cell 44 prev=@e1`)."""

    name: str  # without the `@`
    span: Span


Expr = Num | Dims | Ref | BinOp | Neg | Call | Range | Compare | Logic | IfElse | TensorRef


# --- statements ------------------------------------------------------------------------


@dataclass(frozen=True)
class KwArg:
    name: str
    value: Expr
    span: Span  # of the name


@dataclass(frozen=True)
class Output:
    """`-> e1` at the end of a line or block header: names the statement's output tensor."""

    name: str
    span: Span  # of the name


@dataclass(frozen=True)
class Line:
    """One layer line: `conv 64 3 stride=2 bn relu x2`, or a macro call, or `identity`."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    repeat: int | None
    span: Span  # of the name
    repeat_span: Span | None = None
    output: Output | None = None

    @property
    def line(self) -> int:
        return self.span.line


@dataclass(frozen=True)
class Block:
    """An indented block under a header line: `add:`, `concat:`, `branch:`, `repeat 3:`."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    body: tuple[Stmt, ...]
    span: Span
    output: Output | None = None

    @property
    def line(self) -> int:
        return self.span.line


@dataclass(frozen=True)
class Take:
    """`@e1` alone on a line: the stream continues from the tensor named e1."""

    ref: TensorRef
    output: Output | None = None

    @property
    def span(self) -> Span:
        return self.ref.span

    @property
    def line(self) -> int:
        return self.ref.span.line


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class Def:
    """`def name(a, b=1):` and its body: a macro called like a layer."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span  # of the name

    @property
    def line(self) -> int:
        return self.span.line


@dataclass(frozen=True)
class Clause:
    """One `if COND:`, `elif COND:` or `else:` block of an `If` (an `else` has no condition)."""

    keyword: str
    condition: Expr | None
    body: tuple[Stmt, ...]
    span: Span  # of the keyword


@dataclass(frozen=True)
class If:
    """`if` with the `elif`/`else` blocks that follow it: one statement, evaluated at expansion; the
    first clause whose condition is true is expanded (none: nothing, like `identity`)."""

    clauses: tuple[Clause, ...]
    span: Span  # of the `if`

    @property
    def line(self) -> int:
        return self.span.line


@dataclass(frozen=True)
class Broken:
    """Lines the parser could not read, kept in their place so the rest of the spec still expands
    (`archspec.parse.parse_recovering`): the stream after them is unknown. `defines` names the macro
    of a broken `def`, so its calls are unknown rather than unknown words; `output` is a `-> name`
    the broken line gave."""

    span: Span
    defines: str | None = None
    output: Output | None = None

    @property
    def line(self) -> int:
        return self.span.line


Stmt = Line | Block | Def | If | Take | Broken


@dataclass(frozen=True)
class Module:
    """A whole spec: its macro definitions and its top-level statements, in source order."""

    defs: tuple[Def, ...]
    body: tuple[Line | Block | If | Take | Broken, ...]
