"""The tree builder: lark's parse tree → `archspec.syntax` nodes, bottom-up during the LALR parse.

Used as the parser's `transformer=`: callbacks run at each reduction, so a deep tree never
recurses. Depths are tracked on the side to refuse absurd nesting with a message; numbers too long
to be a layer size are refused here too, before anything is evaluated.
"""

from __future__ import annotations

from archspec._lark_parser import Token, Transformer
from archspec.errors import Span, SpecError
from archspec.syntax import (
    BinOp,
    Block,
    Broken,
    Call,
    Clause,
    Compare,
    Def,
    Dims,
    If,
    IfElse,
    KwArg,
    Line,
    Logic,
    Module,
    Neg,
    Num,
    Output,
    Param,
    Range,
    Ref,
    Take,
    TensorRef,
)
from archspec.words import CONDITIONALS, ELSE, IF

# Resource limits, checked before anything is built: a spec is a few hundred short lines.
MAX_NUMBER_DIGITS = 12
MAX_EXPR_DEPTH = 40
MAX_BLOCK_DEPTH = 32


def _span(token, end=None) -> Span:
    end_column = getattr(end or token, "end_column", None)
    return Span(token.line, token.column, end_column)


class ToSyntax(Transformer):
    """Builds the syntax tree of one parse; `start` clears its bookkeeping for the next."""

    def __init__(self) -> None:
        super().__init__()
        self._depth: dict[int, int] = {}

    def reset(self) -> None:
        """Forget the last parse's depths: one that failed never reached `start`, and its freed
        nodes' ids would be taken by the next parse's nodes (a false "nested too deep")."""
        self._depth.clear()

    # depth bookkeeping: nodes are fresh objects, so id() is unique while the parse runs
    def _nest(self, node, *children, limit: int, what: str):
        depth = 1 + max((self._depth.get(id(child), 0) for child in children), default=0)
        if depth > limit:
            raise SpecError(f"{what} nested more than {limit} levels deep", node.span)
        self._depth[id(node)] = depth
        return node

    # expressions
    def int(self, children):
        (token,) = children
        if len(token) > MAX_NUMBER_DIGITS:
            raise SpecError(
                f"number `{token[:20]}...` has {len(token)} digits (at most {MAX_NUMBER_DIGITS})",
                _span(token),
            )
        return Num(int(token), _span(token))

    def float(self, children):
        (token,) = children
        if len(token) > 2 * MAX_NUMBER_DIGITS:
            raise SpecError(f"number `{token[:20]}...` is too long", _span(token))
        value = float(token)
        if value != value or value in (float("inf"), float("-inf")) or abs(value) > 1e12:
            raise SpecError(f"number `{token}` is out of range", _span(token))
        return Num(value, _span(token))

    def dims(self, children):
        (token,) = children
        parts = token.split("x")
        if any(len(part) > MAX_NUMBER_DIGITS for part in parts):
            raise SpecError(f"size `{token[:30]}` has a number that is too long", _span(token))
        return Dims(tuple(int(part) for part in parts), _span(token))

    def ref(self, children):
        (token,) = children
        return Ref(str(token), _span(token))

    def tensor(self, children):
        (token,) = children
        return TensorRef(str(token)[1:], _span(token))

    def _binop(op):
        def method(self, children):
            left, right = children
            span = Span(left.span.line, left.span.column, right.span.end_column)
            node = BinOp(op, left, right, span)
            return self._nest(node, left, right, limit=MAX_EXPR_DEPTH, what="expression")

        return method

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    truediv = _binop("/")
    floordiv = _binop("//")
    mod = _binop("%")

    def neg(self, children):
        (operand,) = children
        node = Neg(operand, operand.span)
        return self._nest(node, operand, limit=MAX_EXPR_DEPTH, what="expression")

    def call(self, children):
        name, *args = children
        kwargs = tuple(arg for arg in args if isinstance(arg, KwArg))
        positional = tuple(arg for arg in args if not isinstance(arg, KwArg))
        node = Call(str(name), positional, _span(name), kwargs)
        inner = [*positional, *(kwarg.value for kwarg in kwargs)]
        return self._nest(node, *inner, limit=MAX_EXPR_DEPTH, what="expression")

    def compare(self, children):
        left, op, right = children
        node = Compare(str(op), left, right, Span(left.span.line, left.span.column, right.span.end_column))
        return self._nest(node, left, right, limit=MAX_EXPR_DEPTH, what="expression")

    def _logic(op):
        def method(self, children):
            left, right = children
            node = Logic(op, left, right, Span(left.span.line, left.span.column, right.span.end_column))
            return self._nest(node, left, right, limit=MAX_EXPR_DEPTH, what="expression")

        return method

    and_ = _logic("and")
    or_ = _logic("or")

    def not_(self, children):
        (operand,) = children
        node = Logic("not", operand, None, operand.span)
        return self._nest(node, operand, limit=MAX_EXPR_DEPTH, what="expression")

    def ifexpr(self, children):
        then, condition, otherwise = children
        span = Span(then.span.line, then.span.column, otherwise.span.end_column)
        node = IfElse(then, condition, otherwise, span)
        return self._nest(node, then, condition, otherwise, limit=MAX_EXPR_DEPTH, what="expression")

    # statements
    def kwarg(self, children):
        name, value = children
        return KwArg(str(name), value, _span(name))

    def repeat_suffix(self, children):
        (token,) = children
        return token

    def _items(self, items):
        args, kwargs, repeat, repeat_span = [], [], None, None
        for item in items:
            if isinstance(item, KwArg):
                kwargs.append(item)
            elif isinstance(item, Token) and item.type == "REPEAT":
                if repeat is not None:
                    raise SpecError("a line can only have one `xN` repeat", _span(item))
                digits = item[1:]
                if len(digits) > MAX_NUMBER_DIGITS:
                    raise SpecError(f"repeat count `{item[:20]}...` is too long", _span(item))
                repeat, repeat_span = int(digits), _span(item)
            else:
                if repeat is not None:
                    raise SpecError("the `xN` repeat must come last on the line", repeat_span)
                args.append(item)
        return tuple(args), tuple(kwargs), repeat, repeat_span

    # `-> e1`: named outputs, and `@e1` alone on a line
    def output(self, children):
        (name,) = children
        return Output(str(name), _span(name))

    def take_line(self, children):
        token, *output = children
        return Take(TensorRef(str(token)[1:], _span(token)), output[0] if output else None)

    def broken_line(self, children):
        token, *output = children
        return Broken(_span(token), output=output[0] if output else None)

    @staticmethod
    def _output(children):
        if children and isinstance(children[-1], Output):
            return children[:-1], children[-1]
        return children, None

    def line_stmt(self, children):
        children, output = self._output(children)
        name, *items = children
        args, kwargs, repeat, repeat_span = self._items(items)
        return Line(str(name), args, kwargs, repeat, _span(name), repeat_span, output)

    def range_line(self, children):
        children, output = self._output(children)
        name, *items, stop = children
        start = items[-1] if items else None
        if start is None or isinstance(start, (KwArg, Token, TensorRef)):
            raise SpecError("a range `A:B` needs a start before the `:`", stop.span, hint="e.g. `channels 0:32`")
        span = Span(start.span.line, start.span.column, stop.span.end_column)
        args, kwargs, repeat, repeat_span = self._items([*items[:-1], Range(start, stop, span)])
        return Line(str(name), args, kwargs, repeat, _span(name), repeat_span, output)

    def suite(self, children):
        return self._conditionals(children)

    def _conditionals(self, statements) -> tuple:
        """Join each `if:` block with the `elif:`/`else:` blocks right after it into one `If`."""
        grouped: list = []
        for statement in statements:
            if not (isinstance(statement, Block) and statement.name in CONDITIONALS):
                grouped.append(statement)
                continue
            clause = _clause(statement)
            previous = grouped[-1] if grouped else None
            if statement.name == IF:
                node = If((clause,), statement.span)
            elif isinstance(previous, If) and previous.clauses[-1].keyword != ELSE:
                node = If((*previous.clauses, clause), previous.span)
                grouped.pop()
            else:
                after = "after `else:`" if isinstance(previous, If) else "without an `if COND:` before it"
                raise SpecError(
                    f"`{statement.name}:` {after}",
                    statement.span,
                    hint="`elif COND:` and `else:` follow the body of an `if COND:` block, at its indentation",
                )
            depths = [
                self._depth.get(id(previous), 0) if statement.name != IF else 0,
                self._depth.get(id(statement), 0),
            ]
            self._depth[id(node)] = max(depths)
            grouped.append(node)
        return tuple(grouped)

    def block_stmt(self, children):
        *children, body = children
        children, output = self._output(children)
        name, *items = children
        args, kwargs, repeat, repeat_span = self._items(items)
        if repeat is not None:
            raise SpecError(
                "a block header cannot take `xN`", repeat_span, hint=f"use `repeat {repeat}:` around the block"
            )
        node = Block(str(name), args, kwargs, body, _span(name), output)
        return self._nest(node, *body, limit=MAX_BLOCK_DEPTH, what="blocks")

    def param(self, children):
        name, *default = children
        return Param(str(name), default[0] if default else None, _span(name))

    def def_stmt(self, children):
        name, *rest = children
        params = tuple(child for child in rest if isinstance(child, Param))
        body = rest[-1]
        node = Def(str(name), params, body, _span(name))
        return self._nest(node, *body, limit=MAX_BLOCK_DEPTH, what="blocks")

    def start(self, children):
        children = self._conditionals(children)
        defs = tuple(child for child in children if isinstance(child, Def))
        body = tuple(child for child in children if not isinstance(child, Def))
        self._depth.clear()
        return Module(defs, body)


def _clause(block: Block) -> Clause:
    """The clause of an `if`/`elif`/`else` block header, refusing a missing or extra condition."""
    if block.output is not None:
        raise SpecError(
            f"an `{block.name}:` block cannot be named",
            block.output.span,
            hint="name the lines inside it, or an `identity -> name` after it",
        )
    if block.kwargs:
        kwarg = block.kwargs[0]
        raise SpecError(
            f"`{block.name}` takes a condition, not the keyword `{kwarg.name}=`",
            kwarg.span,
            hint=f"compare with `==`: `{block.name} {kwarg.name} == ...:`",
        )
    if block.name == ELSE:
        if block.args:
            raise SpecError("`else:` takes no condition", block.args[0].span, hint="write `elif COND:`")
        return Clause(ELSE, None, block.body, block.span)
    if not block.args:
        raise SpecError(f"`{block.name}` needs a condition", block.span, hint=f"e.g. `{block.name} channels != f:`")
    if len(block.args) > 1:
        raise SpecError(
            f"`{block.name}` takes one condition", block.args[1].span, hint="join conditions with `and` or `or`"
        )
    return Clause(block.name, block.args[0], block.body, block.span)
