"""Syntax tree → IR graph: expands macros, repeats, merge blocks and trailing `bn`/activation words.

Every node keeps the span of the word it came from and the macro calls that led to it, so a later
shape error can point inside a `def` and name the call site. Runaway expansions (recursion,
huge repeats, too many layers) are refused with a message, never a RecursionError.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from archspec.errors import MAX_ERRORS, ErrorLimit, Note, Span, SpecError, detached
from archspec.expand_hints import block_header, signature, surplus_message, unknown_layer_hint, usage
from archspec.expand_lang import LanguageFeatures
from archspec.expand_limits import CALL_COST, MAX_NODES, MAX_WORK, UNKNOWN, Unknown
from archspec.expand_memo import ExpansionMemo, Incremental
from archspec.expand_names import NamedTensors, Names, check_reaches_output
from archspec.expr import Value, condition, evaluate
from archspec.ir import Graph, MacroCall, Node, Origin, located_error
from archspec.layers import REGISTRY, TRAILING_WORDS, ArgError, LayerKind
from archspec.layers.base import REQUIRED
from archspec.source import SourceText
from archspec.syntax import Block, Broken, Def, If, KwArg, Line, Module, Take, TensorRef
from archspec.text import did_you_mean, show
from archspec.words import (
    BLOCKS,
    BRANCH,
    DEF,
    ELIF,
    IDENTITY,
    INPUT,
    LOGIC_WORDS,
    MERGES,
    REPEAT,
    VALUE_WORDS,
    LayerCall,
    Word,
)

MAX_REPEAT = 10_000
MAX_CALL_DEPTH = 32

# Words a macro parameter may not take as its name: they would hide a layer word or a value word.
RESERVED = frozenset({*TRAILING_WORDS, *VALUE_WORDS, IDENTITY, INPUT, *LOGIC_WORDS, ELIF})


def expand(module: Module, source: SourceText, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Expand a parsed spec into its layer graph. `input_shape` overrides the spec's `input` line."""
    return _Expander(module, source).run(input_shape)


class Recovered(NamedTuple):
    """A graph expanded past its errors: nodes may read `UNKNOWN`; `incomplete` are the scopes where a
    statement failed (their totals are not known)."""

    graph: Graph
    errors: list[SpecError]
    incomplete: frozenset[int]
    fragments: tuple = ()  # with a memo: the top-level statements' fragments, in order (for `infer_partial`)


def expand_recovering(
    module: Module, source: SourceText, input_shape: tuple[int, ...] | None = None, memo: ExpansionMemo | None = None
) -> Recovered:
    """Expand as `expand` does, but past errors, as a compiler goes on: a statement that fails (at any
    depth: a line in a branch, in a macro's body) is recorded and its output is unknown, unless it
    could not have changed the shape of its input (a layer kind whose output always has its input's
    shape: `dropout 2` still passes its input on). Everything whose inputs are known is expanded: the
    lines before an error, the other branches of a block, the lines after it. Without errors the
    graph is `expand`'s. With a `memo` of the document's last expansion, a top-level statement that
    nothing it reads has changed is replayed, not expanded again (see `archspec.expand_memo`)."""
    expander = _Expander(module, source, recover=True)
    expander.memo = memo
    graph = expander.run(input_shape)
    return Recovered(graph, expander.errors, frozenset(expander.incomplete), tuple(expander.fragments))


@dataclass(frozen=True)
class _Context:
    env: dict[str, Value]  # bound macro arguments
    scope: int | None
    origins: tuple[Origin, ...]  # macro call stack
    calls: tuple[str, ...]  # macro names on the stack, to refuse recursion
    names: Names | None = None  # the named tensors of this macro call (or of the top level)


@dataclass
class _ScopeDraft:
    parent: int | None
    kind: str
    label: str
    span: Span
    node: int | None = None
    call: MacroCall | None = None


class _Expander(Incremental, LanguageFeatures, NamedTensors):
    def __init__(self, module: Module, source: SourceText, recover: bool = False) -> None:
        self.module = module
        self.source = source
        self.recover = recover
        self.errors: list[SpecError] = []
        self.failed = False  # a statement failed: some output is unknown
        self.failures = 0  # statements that failed (a fragment that saw one is never replayed)
        self.exhausted = False  # a budget (MAX_WORK, MAX_NODES) ran out: nothing more is expanded
        self.incomplete: set[int] = set()
        self.nodes: list[Node] = []
        self._stream_infos, self._stream_reads = [], {}  # see LanguageFeatures._names
        self.scopes: list[_ScopeDraft] = []
        # macros whose `def` is broken: their calls are unknown, not unknown words
        self.broken_defs = {s.defines for s in module.body if isinstance(s, Broken) and s.defines}
        self.defs = self._collect_defs(module.defs)
        self.work = 0
        self.fragments: list = []

    # --- entry -------------------------------------------------------------------------------

    def run(self, input_shape: tuple[int, ...] | None) -> Graph:
        body = tuple(s for s in self.module.body if not (isinstance(s, Broken) and s.defines))
        top = _Context({}, None, (), (), Names(body, self.source))
        try:
            current, rest = self._input(body, input_shape, top)
        except SpecError as error:
            if not self.recover:
                raise
            self.errors.append(detached(error))
            current, rest = UNKNOWN, body[1:] if body and _is_input(body[0]) else body
            self.failed = True
        except Unknown:  # the `input` line is broken
            current, rest = UNKNOWN, body[1:]
            self.failed = True
        output = self._top_level(rest, current, top)
        if (not self.recover or not self.failed) and not self._reaches_as_before(output):
            try:
                check_reaches_output(self.nodes, output, self.source)
            except SpecError as error:
                if not self.recover:
                    raise
                self.errors.append(detached(error))
            else:
                self._reached(output)
        scopes, names = self._graph_parts(top)
        return Graph(tuple(self.nodes), scopes, self.source, names)

    def _input(self, body, input_shape, top: _Context) -> tuple[int, tuple]:
        """The input node, and the statements after it."""
        if body and _is_input(body[0]):
            first = body[0]
            if isinstance(first, Broken):
                raise Unknown
            if first.repeat is not None:
                raise self._error("`input` cannot be repeated", first.repeat_span, top)
            current = self._layer(first, REGISTRY[INPUT], None, top)
            if input_shape is not None:
                self.nodes[0] = replace(self.nodes[0], attrs={"shape": input_shape})
            if first.output is not None:
                top.names.define(first.output, current, ())
            return current, body[1:]
        if input_shape is not None:
            return self._add_node(INPUT, {"shape": input_shape}, (), Span(1, 1), top), body
        span = body[0].span if body else Span(1, 1)
        message = "the spec has no layers" if not body else "the first layer must be `input HxWxC`"
        raise SpecError(message, span, hint="start with e.g. `input 224x224x3`, or pass --input", source=self.source)

    def _collect_defs(self, defs: tuple[Def, ...]) -> dict[str, Def]:
        found: dict[str, Def] = {}
        for definition in defs:
            try:
                self._check_def(definition, found)
            except SpecError as error:
                if not self.recover:
                    raise
                self.errors.append(detached(error))
                if definition.name not in found:
                    self.broken_defs.add(definition.name)
                continue
            found[definition.name] = definition
        return found

    def _check_def(self, definition: Def, found: dict[str, Def]) -> None:
        top = _Context({}, None, (), ())
        name = definition.name
        if name in found:
            raise self._error(f"`{name}` is defined twice", definition.span, top).with_note(
                Note(f"first defined at line {found[name].line}", found[name].span)
            )
        if name in REGISTRY or name in BLOCKS or name in (IDENTITY, DEF, *LOGIC_WORDS):
            raise self._error(f"`{name}` is a built-in name; choose another name for the macro", definition.span, top)
        seen: set[str] = set()
        for param in definition.params:
            if param.name in seen:
                raise self._error(f"parameter `{param.name}` appears twice", param.span, top)
            if param.name in RESERVED:
                raise self._error(
                    f"parameter `{param.name}` would hide the word `{param.name}`",
                    param.span,
                    top,
                    hint="choose another name",
                )
            seen.add(param.name)

    # --- statements ------------------------------------------------------------------------------

    def _sequence(self, statements, current: int, ctx: _Context) -> int:
        if self.recover:
            for statement in statements:
                current = self._recovering(statement, current, ctx)
            return current
        for statement in statements:
            current = self._statement(statement, current, ctx)
        return current

    def _recovering(self, statement, current: int, ctx: _Context) -> int:
        """`_statement`, past an error: recorded, and the statement's output unknown (its input where the
        statement's layer always keeps its input's shape). Once a budget is spent, nothing more is expanded."""
        if self.exhausted:
            if len(self.errors) == MAX_ERRORS:  # stopped by the count: say where, once
                self.errors.append(ErrorLimit(statement.span, self.source))
            return UNKNOWN
        try:
            return self._statement(statement, current, ctx)
        except SpecError as error:
            self.errors.append(detached(error))
            self.exhausted = self.work > MAX_WORK or len(self.nodes) >= MAX_NODES or len(self.errors) >= MAX_ERRORS
        except Unknown:
            pass
        self.failed = True
        self.failures += 1
        scope = ctx.scope
        while scope is not None and scope not in self.incomplete:
            self.incomplete.add(scope)
            scope = self.scopes[scope].parent
        output = current if self._keeps_shape(statement) else UNKNOWN
        if getattr(statement, "output", None) is not None:
            ctx.names.bind(statement.output, output)
        return output

    def _keeps_shape(self, statement) -> bool:
        """Whether the statement is one layer line of a kind whose output always has its input's shape."""
        if not isinstance(statement, Line) or statement.name in self.defs or statement.name in MERGES:
            return False
        kind = REGISTRY.get(statement.name)
        return kind is not None and type(kind).output_shape is LayerKind.output_shape and statement.name != INPUT

    def _statement(self, statement, current: int, ctx: _Context) -> int:
        if isinstance(statement, Broken):
            raise Unknown  # its error was the parser's
        if getattr(statement, "output", None) is not None or isinstance(statement, Take):
            return self._named_statement(statement, current, ctx)  # `... -> name`, `@name`
        self.stream = current
        if isinstance(statement, Def):
            raise self._error("`def` is only allowed at the top level of a spec", statement.span, ctx)
        if isinstance(statement, Block):
            return self._block(statement, current, ctx)
        if isinstance(statement, If):
            return self._if(statement, current, ctx)
        count = self._line_repeat(statement, ctx)
        if count == 0:
            self._spend(1, statement, ctx)  # `x0` makes nothing, but visiting it is still work
        for _ in range(count):
            self.stream = current
            self._spend(1, statement, ctx)
            current = self._line(statement, current, ctx)
        return current

    def _spend(self, cost: int, statement, ctx: _Context) -> None:
        self.work += cost
        if self.work > MAX_WORK:
            raise self._error(
                f"expanding the spec takes more than {MAX_WORK:,} steps (a line visited is one, a macro call "
                f"{CALL_COST}); this is where it ran out",
                statement.span,
                ctx,
                hint="repeats inside repeats and macros calling macros several times multiply; check the counts",
            )

    def _line_repeat(self, line: Line, ctx: _Context) -> int:
        if line.repeat is None:
            return 1
        if not 0 <= line.repeat <= MAX_REPEAT:
            raise self._error(
                f"repeat count must be between 0 and {MAX_REPEAT:,}, got {line.repeat}", line.repeat_span, ctx
            )
        return line.repeat

    def _line(self, line: Line, current: int, ctx: _Context) -> int:
        name = line.name
        self._note_lookup(name)
        if name == IDENTITY:
            if line.args or line.kwargs:
                raise self._error("`identity` takes no arguments", line.span, ctx)
            return current
        if name in self.defs:
            return self._call(line, current, ctx)
        if name in self.broken_defs and name not in ctx.env:
            raise Unknown
        if name == INPUT:
            raise self._error("`input` must be the first layer, and appear once", line.span, ctx)
        if name in BLOCKS:
            raise self._error(
                f"`{name}` opens a block",
                line.span,
                ctx,
                hint=f"write `{block_header(name)}` and indent its contents below it",
            )
        kind = REGISTRY.get(name)
        if kind is None and name in ctx.env:
            return self._parameter_line(line, current, ctx)
        if kind is None or name in MERGES:
            raise self._error(f"unknown layer `{name}`", line.span, ctx, hint=unknown_layer_hint(name, self.defs))
        return self._layer(line, kind, current, ctx)

    # --- layers ----------------------------------------------------------------------------------

    def _layer(self, line: Line, kind: LayerKind, current: int | None, ctx: _Context) -> int:
        attrs, suffix = self._bind_layer(line, kind, ctx)
        return self._add_layers(kind, attrs, suffix, line.span, current, ctx)

    def _add_layers(self, kind: LayerKind, attrs, suffix, span: Span, current: int | None, ctx: _Context) -> int:
        inputs = () if current is None else (current,)
        current = self._add_node(kind.name, attrs, inputs, span, ctx)
        for word, word_span in suffix:
            current = self._add_node(word.text, self._suffix_attrs(word, word_span, ctx), (current,), word_span, ctx)
        return current

    def _bind_layer(self, line: Line, kind: LayerKind, ctx: _Context):
        values = [(self._eval(expr, ctx), expr.span) for expr in line.args]
        keywords = [(kwarg, self._eval(kwarg.value, ctx)) for kwarg in line.kwargs]
        return self._bind_values(kind, values, keywords, line.span, ctx)

    def _bind_values(self, kind: LayerKind, values, keywords, line_span: Span, ctx: _Context):
        """A layer's attributes from evaluated arguments, and the trailing `bn`/activation words."""
        positional = [a for a in kind.args if a.positional]
        given: dict[str, tuple[Any, Span]] = {}
        suffix: list[tuple[Word, Span]] = []
        for value, span in values:
            is_word = isinstance(value, Word) and value.text in TRAILING_WORDS
            if is_word and kind.takes_suffix:
                suffix.append((value, span))
                continue
            if suffix:
                raise self._error(
                    f"unexpected argument `{show(value)}` after `{suffix[-1][0]}`",
                    span,
                    ctx,
                    hint="`bn` and activations come after the layer's arguments",
                )
            if len(given) >= len(positional):
                raise self._error(surplus_message(kind, value), span, ctx, hint=usage(kind))
            given[positional[len(given)].name] = (value, span)
        for kwarg, value in keywords:
            self._check_keyword(
                kwarg, [a.name for a in kind.args], given, f"`{kind.name}` has no argument", usage(kind), ctx
            )
            given[kwarg.name] = (value, kwarg.value.span)
        attrs: dict[str, Any] = {}
        for arg in kind.args:
            if arg.name not in given:
                if arg.default is REQUIRED:
                    raise self._error(f"`{kind.name}` needs `{arg.name}` ({arg.doc})", line_span, ctx, hint=usage(kind))
                attrs[arg.name] = arg.default
                continue
            value, span = given[arg.name]
            try:
                attrs[arg.name] = arg.convert(arg.name, value)
            except ArgError as error:
                raise self._error(error.message, span, ctx, hint=error.hint) from None
        return attrs, suffix

    def _check_keyword(self, kwarg, known: list[str], given, unknown: str, usage: str, ctx: _Context) -> None:
        """Refuse a keyword argument the layer or macro does not have, or one given twice."""
        if kwarg.name not in known:
            hint = did_you_mean(kwarg.name, known, "`{}=`") or usage
            raise self._error(f"{unknown} `{kwarg.name}`", kwarg.span, ctx, hint=hint)
        if kwarg.name in given:
            raise self._error(f"`{kwarg.name}` is given twice", kwarg.span, ctx)

    @staticmethod
    def _defaults(kind: LayerKind) -> dict[str, Any]:
        return {a.name: a.default for a in kind.args}

    # --- blocks ----------------------------------------------------------------------------------

    def _block(self, block: Block, current: int, ctx: _Context) -> int:
        self._spend(1, block, ctx)
        if block.name in MERGES:
            return self._merge(block, current, ctx)
        if block.name == REPEAT:
            return self._repeat(block, current, ctx)
        if block.name == BRANCH:
            raise self._error("`branch:` belongs directly inside `add:`, `concat:` or `multiply:`", block.span, ctx)
        if block.name in REGISTRY or block.name in self.defs:
            raise self._error(
                f"`{block.name}` is a layer, not a block",
                block.span,
                ctx,
                hint="remove the `:` and the indented lines, or wrap them in `repeat N:`",
            )
        hint = did_you_mean(block.name, BLOCKS, "`{}:`") or f"blocks are {', '.join(f'`{b}:`' for b in BLOCKS)}"
        raise self._error(f"unknown block `{block.name}:`", block.span, ctx, hint=hint)

    def _no_arguments(self, block: Block, ctx: _Context) -> None:
        if block.args or block.kwargs:
            span = block.args[0].span if block.args else block.kwargs[0].span
            raise self._error(f"`{block.name}:` takes no arguments", span, ctx)

    def _merge(self, block: Block, current: int, ctx: _Context) -> int:
        self._no_arguments(block, ctx)
        scope = self._open_scope(block.name, block.name, block.span, ctx)
        inner = replace(ctx, scope=scope)
        outputs: list[int] = []
        starts: list[str] = []
        for child in block.body:
            if isinstance(child, Block) and child.name == BRANCH:
                self._no_arguments(child, ctx)
                branch_scope = self._open_scope(BRANCH, BRANCH, child.span, inner)
                out = self._sequence(child.body, current, replace(inner, scope=branch_scope))
                if child.output is not None:  # `branch -> name:`
                    ctx.names.define(child.output, out, ctx.origins)
            else:
                out = (self._recovering if self.recover else self._statement)(child, current, inner)
            outputs.append(out)
            starts.append(ctx.names.describe(child) or f"line {child.span.line}")
        if len(outputs) < 2:
            raise self._error(
                f"`{block.name}:` needs at least two branches, got {len(outputs)}",
                block.span,
                ctx,
                hint="each indented line is one branch; write `identity` for a shortcut",
            )
        node = self._add_node(block.name, {"branches": tuple(starts)}, tuple(outputs), block.span, inner)
        self.scopes[scope].node = node
        return node

    def _repeat(self, block: Block, current: int, ctx: _Context) -> int:
        if len(block.args) != 1 or block.kwargs:
            raise self._error("write `repeat N:` with one count", block.span, ctx)
        count = self._eval(block.args[0], ctx)
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_REPEAT:
            raise self._error(
                f"repeat count must be a whole number from 0 to {MAX_REPEAT:,}, got `{show(count)}`",
                block.args[0].span,
                ctx,
            )
        if count == 0:  # an optional block: nothing, and no row in the summary
            return current
        scope = self._open_scope(REPEAT, f"{REPEAT} {count}", block.span, ctx)
        inner = replace(ctx, scope=scope)
        for _ in range(count):
            current = self._sequence(block.body, current, inner)
        return current

    # --- macros ----------------------------------------------------------------------------------

    def _call(self, line: Line, current: int, ctx: _Context) -> int:
        definition = self.defs[line.name]
        if line.name in ctx.calls:
            raise self._error(
                f"`{line.name}` calls itself; recursion is not supported",
                line.span,
                ctx,
                hint="use `repeat N:` to repeat a block",
            )
        if len(ctx.calls) >= MAX_CALL_DEPTH:
            raise self._error(f"macro calls nested more than {MAX_CALL_DEPTH} deep", line.span, ctx)
        self._spend(CALL_COST, line, ctx)
        params = definition.params
        bound: dict[str, Value] = {}
        shown: list[str] = []
        if len(line.args) > len(params):
            raise self._error(
                f"`{line.name}` takes {len(params)} arguments, got {len(line.args)}",
                line.args[len(params)].span,
                ctx,
                hint=signature(definition),
            )
        tensors = {}  # parameters given a tensor (`prev=@c1`): the callee reads them as `@prev`
        for param, expr in zip(params, line.args):
            bound[param.name] = self._argument(param.name, expr, ctx, tensors)
            shown.append(show(bound[param.name]))
        for kwarg in line.kwargs:
            self._check_keyword(
                kwarg,
                [p.name for p in params],
                bound,
                f"`{line.name}` has no parameter",
                signature(definition),
                ctx,
            )
            bound[kwarg.name] = self._argument(kwarg.name, kwarg.value, ctx, tensors)
            shown.append(f"{kwarg.name}={show(bound[kwarg.name])}")
        for param in params:
            if param.name in bound:
                continue
            if param.default is None:
                raise self._error(f"`{line.name}` needs `{param.name}`", line.span, ctx, hint=signature(definition))
            # defaults are evaluated in the callee, so they may use earlier parameters
            callee = _Context(bound, ctx.scope, (*ctx.origins, Origin(line.name, line.span)), ctx.calls)
            bound[param.name] = self._eval(param.default, callee)
        call_text = " ".join([line.name, *shown])
        scope = self._open_scope("call", call_text, line.span, ctx)
        names = Names(definition.body, self.source, ctx.names, tensors, line.name, bound)
        inner = _Context(bound, scope, (*ctx.origins, Origin(call_text, line.span)), (*ctx.calls, line.name), names)
        tensor_nodes = tuple((p, b.node) for p, b in tensors.items())
        start = len(self.nodes)
        output = self._sequence(definition.body, current, inner)
        arguments = tuple((name, _without_spans(value)) for name, value in bound.items())
        self.scopes[scope].call = MacroCall(line.name, arguments, tensor_nodes, current, output, start)
        return output

    def _eval(self, expr, ctx: _Context, as_condition: bool = False) -> Value:
        if isinstance(expr, TensorRef):
            raise self._tensor_not_a_value(expr, ctx)
        if not as_condition and self._is_layer_value(expr):
            return self._layer_value(expr, ctx)
        names = self._names(expr, ctx)  # may type the stream so far: its errors are located already
        try:
            return (condition if as_condition else evaluate)(expr, names)
        except SpecError as error:
            raise located_error(error.message, error.span, ctx.origins, self.source, error.hint) from None

    # --- building ------------------------------------------------------------------------------

    def _open_scope(self, kind: str, label: str, span: Span, ctx: _Context) -> int:
        self.scopes.append(_ScopeDraft(ctx.scope, kind, label, span))
        return len(self.scopes) - 1

    def _add_node(self, kind: str, attrs: dict, inputs: tuple[int, ...], span: Span, ctx: _Context) -> int:
        if len(self.nodes) >= MAX_NODES:
            raise self._error(
                f"the spec expands to more than {MAX_NODES:,} layers", span, ctx, hint="check the repeat counts"
            )
        node_id = len(self.nodes)
        self.nodes.append(Node(node_id, kind, attrs, inputs, span, ctx.scope, ctx.origins))
        return node_id

    def _error(self, message: str, span: Span | None, ctx: _Context, hint: str | None = None) -> SpecError:
        return located_error(message, span, ctx.origins, self.source, hint)


def _is_input(statement) -> bool:
    """An `input` line, or a broken first statement (which may have been one: what follows it is
    expanded from an unknown input, with no second error)."""
    return isinstance(statement, Broken) or (isinstance(statement, Line) and statement.name == INPUT)


def _without_spans(value):
    """A bound argument as a macro call's record keeps it: a layer call's arguments without the
    places they were written (a record must not change when only lines move: see expand_memo)."""
    if not isinstance(value, LayerCall):
        return value
    kwargs = tuple((KwArg(kwarg.name, None, None), item) for kwarg, item in value.kwargs)
    return LayerCall(value.text, tuple((item, None) for item, _ in value.args), kwargs)
