"""The expander's language features: `if`/`elif`/`else`, layer calls (`bn(scale=false)`), a macro
parameter holding a layer on a line of its own, and the current stream's `channels`, `height` and
`width` in expressions (inferred lazily, node by node, the first time an expression reads one)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace

from archspec.errors import SpecError
from archspec.expand_limits import UNKNOWN, Unknown
from archspec.expr import Unavailable, Value
from archspec.infer import LayerInfo, infer_node
from archspec.layers import REGISTRY
from archspec.syntax import BinOp, Call, Compare, Expr, If, IfElse, Line, Logic, Neg, Range, Ref
from archspec.text import describe_shape, show
from archspec.words import IDENTITY, INPUT, MERGES, STREAM_NAMES, LayerCall, Word

# A condition evaluated costs this many steps of the expansion's work budget (`MAX_WORK`): about
# what it takes next to a line's visit, so an `if` inside nested repeats is refused as quickly.
CONDITION_COST = 4


class LanguageFeatures:
    """Mixed into the expander (`archspec.expand._Expander`), whose nodes, scopes and helpers it uses."""

    stream: int | None = None  # the node the statement being expanded reads: its input
    _stream_infos: list[LayerInfo]
    _stream_reads: dict[int, tuple[str, ...]]  # id of an expression → the stream's sizes it mentions

    # --- `if` / `elif` / `else` ------------------------------------------------------------------

    def _if(self, statement: If, current: int, ctx) -> int:
        self._spend(1, statement, ctx)
        for clause in statement.clauses:
            if clause.condition is not None:
                self._spend(CONDITION_COST, clause, ctx)
            if clause.condition is None or self._eval(clause.condition, ctx, as_condition=True):
                return self._sequence(clause.body, current, ctx)
        return current  # no clause chosen: nothing, like `identity`

    # --- layers as values ------------------------------------------------------------------------

    @staticmethod
    def _is_layer_value(expr: Expr) -> bool:
        """A layer call, or a conditional expression whose side may be one (`relu if a else bn(...)`)."""
        is_call = isinstance(expr, Call) and expr.func in REGISTRY and expr.func not in (*MERGES, INPUT)
        return is_call or isinstance(expr, IfElse)

    def _layer_value(self, expr: Call | IfElse, ctx) -> Value:
        if isinstance(expr, IfElse):
            return self._eval(expr.then if self._eval(expr.condition, ctx, True) else expr.otherwise, ctx)
        args = tuple((self._eval(arg, ctx), arg.span) for arg in expr.args)
        kwargs = tuple((kwarg, self._eval(kwarg.value, ctx)) for kwarg in expr.kwargs)
        return LayerCall(expr.func, args, kwargs)

    def _suffix_attrs(self, word: Word, span, ctx) -> dict:
        """The attributes of a trailing layer: its defaults, or the arguments of `bn(scale=false)`."""
        kind = REGISTRY[word.text]
        if not isinstance(word, LayerCall):
            return self._defaults(kind)
        attrs, _ = self._bind_values(kind, list(word.args), list(word.kwargs), span, ctx)
        return attrs

    def _parameter_line(self, line: Line, current: int, ctx) -> int:
        """A line named by a macro parameter that holds a layer (`act` with `act=relu`) or a macro."""
        value = ctx.env[line.name]
        target = value.text if isinstance(value, Word) else None
        is_layer = target in REGISTRY and target not in (*MERGES, INPUT)
        if target is None or not (is_layer or target in self.defs or target == IDENTITY):
            raise self._error(
                f"`{line.name}` is a parameter holding `{show(value)}`, not a layer",
                line.span,
                ctx,
                hint="alone on a line, a parameter must hold a layer (`relu`, `bn(scale=false)`) or a macro's name",
            )
        if not isinstance(value, LayerCall):
            return self._line(replace(line, name=target), current, ctx)  # keeps every other field of the line
        if line.args or line.kwargs:
            raise self._error(
                f"`{line.name}` holds `{value}`, which has its arguments already",
                (line.args or line.kwargs)[0].span,
                ctx,
                hint="give the layer's arguments in the call, or pass the bare layer name",
            )
        kind = REGISTRY[target]
        attrs, suffix = self._bind_values(kind, list(value.args), list(value.kwargs), line.span, ctx)
        return self._add_layers(kind, attrs, suffix, line.span, current, ctx)

    # --- the stream's sizes ----------------------------------------------------------------------

    def _names(self, expr: Expr, ctx) -> Mapping[str, Value]:
        """The names `expr` can read: the macro's arguments, and the stream's sizes it mentions
        (a parameter of the same name wins)."""
        reads = self._stream_reads.get(id(expr))  # syntax nodes live as long as the expansion
        if reads is None:
            reads = self._stream_reads[id(expr)] = tuple(name for name in STREAM_NAMES if _reads(expr, name))
        wanted = [name for name in reads if name not in ctx.env]
        if not wanted:
            return ctx.env
        self._note_stream_read()
        names = dict(ctx.env)
        shape = self._stream_shape()
        for name in wanted:
            names[name] = _stream_value(name, shape)
        return names

    def _stream_shape(self) -> tuple[int, ...] | None:
        if self.stream is None:
            return None
        if self.recover:
            return self._known_stream_shape()
        infos = self._stream_infos
        while len(infos) <= self.stream:  # nodes only grow, each typed once from its inputs
            node = self.nodes[len(infos)]
            infos.append(infer_node(node, [infos[i] for i in node.inputs], self.source))
        return infos[self.stream].shape

    def _known_stream_shape(self) -> tuple[int, ...]:
        """While recovering: nodes with an unknown input, or that fail to type (`infer` reports it),
        have no info, and a stream without one is `Unknown`."""

        shape = self._shape_at(self.stream)
        if shape is None:
            raise Unknown
        return shape

    def _shape_at(self, node: int) -> tuple[int, ...] | None:
        """A node's shape, typed lazily as the stream's is; None when unknown."""

        infos = self._stream_infos
        while len(infos) <= node:
            typed = self.nodes[len(infos)]
            inputs = [infos[i] if i != UNKNOWN else None for i in typed.inputs]
            info = None
            if None not in inputs:
                with contextlib.suppress(SpecError):  # `infer_partial` reports it
                    info = infer_node(typed, inputs, self.source)
            infos.append(info)
        return None if node == UNKNOWN or infos[node] is None else infos[node].shape


def _stream_value(name: str, shape: tuple[int, ...] | None) -> Value | Unavailable:
    if shape is None:
        return Unavailable(f"`{name}` is the current stream's size, and there is no stream before `input`")
    if name == "channels":
        return shape[-1]
    if len(shape) != 3:
        return Unavailable(
            f"`{name}` needs an HxWxC stream; here the stream is {describe_shape(shape)}",
            hint="after `flatten`, `gap` or `dense` only `channels` (the vector's length) is defined",
        )
    return shape[0] if name == "height" else shape[1]


def _reads(expr: Expr, name: str) -> bool:
    """Whether `expr` mentions the bare name `name` anywhere."""
    if isinstance(expr, Ref):
        return expr.name == name
    if isinstance(expr, (BinOp, Compare)):
        return _reads(expr.left, name) or _reads(expr.right, name)
    if isinstance(expr, Logic):
        return _reads(expr.left, name) or (expr.right is not None and _reads(expr.right, name))
    if isinstance(expr, Neg):
        return _reads(expr.operand, name)
    if isinstance(expr, IfElse):
        return any(_reads(part, name) for part in (expr.then, expr.condition, expr.otherwise))
    if isinstance(expr, Range):
        return _reads(expr.start, name) or _reads(expr.stop, name)
    if isinstance(expr, Call):
        return any(_reads(arg, name) for arg in expr.args) or any(_reads(kw.value, name) for kw in expr.kwargs)
    return False
