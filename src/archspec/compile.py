"""The one front door: spec text → typed graph (parse, expand, infer), and `check_spec`, the same
with recovery, which reports every error of a spec and types everything whose inputs are known."""

from __future__ import annotations

from archspec.errors import MAX_ERRORS, ErrorLimit, SpecError, SpecErrors
from archspec.expand import expand
from archspec.infer import LayerInfo, TypedGraph, infer
from archspec.ir import Graph
from archspec.parse import parse
from archspec.source import SourceText
from archspec.syntax import Module


def compile_spec(text: str, name: str = "<spec>", input_shape: tuple[int, ...] | None = None) -> TypedGraph:
    """Parse, expand and type a spec. `input_shape` (HxWxC) overrides its `input` line.

    Raises `SpecError` for any mistake in the spec, located at its line and column; with several
    independent mistakes, a `SpecErrors` that lists them all.
    """
    return compile_with_syntax(text, name, input_shape)[1]


def compile_with_syntax(
    text: str, name: str = "<spec>", input_shape: tuple[int, ...] | None = None
) -> tuple[Module, TypedGraph]:
    """Like `compile_spec`, also returning the syntax tree (for tools that edit the text, like lint's fixes)."""
    try:
        module = parse(text, name)
        graph = expand(module, SourceText(name, text), input_shape)
        return module, infer(graph)
    except SpecError as error:
        # A correct spec never comes here: it compiles exactly as before, as fast. A wrong one is
        # checked again with recovery, to report each of its errors in one run.
        raise every_error(error, check_spec(text, name, input_shape)) from None


class Checked:
    """A spec checked with recovery: the syntax tree, the graph expanded past errors (a node may read
    `archspec.expand.UNKNOWN`), each node's info (None where unknown), and the errors in line order.
    With a cache, `fragments` are the top-level statements' expansions (`archspec.expand_memo`)."""

    def __init__(self, module, graph: Graph, infos, errors, more: int, incomplete, fragments=(), parse_cache=None):
        self._module = module
        self._parse_cache = parse_cache  # the module's statements below an edit are read at their place lazily
        self.graph = graph
        self.infos: tuple[LayerInfo | None, ...] = infos
        self.errors: tuple[SpecError, ...] = errors  # at most MAX_ERRORS
        self.more = more  # errors past MAX_ERRORS
        self.incomplete: frozenset[int] = incomplete  # scopes in which a statement failed: their totals are unknown
        self.fragments = fragments

    @property
    def module(self) -> Module:
        """The syntax tree, every span at its place."""
        if self._parse_cache is not None:
            self._module, self._parse_cache = self._parse_cache.materialized(), None
        return self._module

    def top_level_at(self, line: int):
        """The top-level statement or `def` holding 1-based `line`, at its place: (statement, its index in
        `raw_body`), or (def, None); None outside any."""
        if self._parse_cache is not None:
            return self._parse_cache.top_level_at(line)
        module = self.module  # read whole (a text with too many errors): the item starting last before `line`
        items = [(item.line, index) for index, item in enumerate(module.body) if item.line <= line]
        items += [(item.line, -1 - index) for index, item in enumerate(module.defs) if item.line <= line]
        if not items:
            return None
        _, index = max(items)
        return (module.body[index], index) if index >= 0 else (module.defs[-1 - index], None)

    @property
    def defs(self) -> tuple:
        """The macros (always at their place: a macro call reads their spans)."""
        return self._module.defs

    @property
    def raw_body(self) -> tuple:
        """The module's top-level statements as the expander read them (their identity, not their spans)."""
        return self._module.body

    @property
    def typed(self) -> TypedGraph | None:
        """The typed graph, when the spec has no error: `compile_spec`'s."""
        return None if self.errors else TypedGraph(self.graph, self.infos)


class CheckCache:
    """What the language server keeps of a document between versions, so that an edit costs what it
    touched: its statements' parse (`archspec.parse_incremental`) and each top-level statement's
    expansion and infos (`archspec.expand_memo`)."""

    def __init__(self) -> None:
        from archspec.expand_memo import ExpansionMemo
        from archspec.parse_incremental import StatementCache

        self.parse = StatementCache()
        self.expansion = ExpansionMemo()
        self.input_shape: tuple[int, ...] | None = None


def check_spec(
    text: str,
    name: str = "<spec>",
    input_shape: tuple[int, ...] | None = None,
    cache: CheckCache | None = None,
) -> Checked:
    """Parse, expand and type a spec past its errors, as a compiler goes on after one: every independent
    error is reported (up to MAX_ERRORS), each at its place, and every layer whose inputs are known is
    typed. With a `cache` kept between versions of a document, only what an edit touched is parsed,
    expanded and typed again."""
    from archspec.expand import expand_recovering
    from archspec.infer import infer_partial
    from archspec.parse import parse_recovering

    if cache is None:
        parsed = parse_recovering(text, name)
        if parsed.refused:
            return _refused(parsed, name, text)
        recovered = expand_recovering(parsed.module, SourceText(name, text), input_shape)
        infos, infer_errors = infer_partial(recovered.graph)
        return _checked(parsed, recovered, infos, infer_errors)
    if cache.input_shape != input_shape:
        cache.__init__()
        cache.input_shape = input_shape
    try:
        return _check_cached(text, name, input_shape, cache)
    except BaseException:  # what is kept must never be half of one version and half of another
        cache.__init__()
        cache.input_shape = input_shape
        raise


def _refused(parsed, name: str, text: str) -> Checked:
    """A text too long to be a spec: its error, nothing of it read."""
    return Checked(parsed.module, Graph((), (), SourceText(name, text)), (), parsed.errors, 0, frozenset())


def _check_cached(text: str, name: str, input_shape, cache: CheckCache) -> Checked:
    from archspec.expand import expand_recovering
    from archspec.infer import infer_partial
    from archspec.parse_incremental import parse_incremental

    statements, memo = cache.parse, cache.expansion
    parsed = parse_incremental(text, name, statements)
    if parsed.refused:
        cache.__init__()
        cache.input_shape = input_shape
        return _refused(parsed, name, text)
    memo.line_map, memo.moved, memo.place = statements.line_map, statements.moved, statements.statement_at_place
    memo.rewritten = statements.rewritten
    recovered = expand_recovering(parsed.module, SourceText(name, text), input_shape, memo)
    infos, infer_errors = infer_partial(recovered.graph, recovered.fragments, memo)
    return _checked(parsed, recovered, infos, infer_errors, statements if statements else None)


def _checked(parsed, recovered, infos, infer_errors, parse_cache=None) -> Checked:
    found = _in_order([*parsed.errors, *recovered.errors, *infer_errors])
    errors = [e for e in found if not isinstance(e, ErrorLimit)]
    shown = errors[:MAX_ERRORS]
    limits = [e for e in found if isinstance(e, ErrorLimit)]
    if limits:  # where checking stopped comes last, always shown
        shown.append(limits[0])
    return Checked(
        parsed.module,
        recovered.graph,
        infos,
        tuple(shown),
        max(0, len(errors) - MAX_ERRORS),
        recovered.incomplete,
        recovered.fragments,
        parse_cache,
    )


def _in_order(errors: list[SpecError]) -> list[SpecError]:
    """Errors by place, each once: an error inside a `def` is found at every call, with the same words."""
    seen: dict[tuple, SpecError] = {}
    for error in errors:
        seen.setdefault((error.span, error.message), error)
    return sorted(seen.values(), key=lambda e: (e.span.line, e.span.column) if e.span else (0, 0))


def every_error(first: SpecError, checked: Checked) -> SpecError:
    """`first` (the error a compile stopped at) when it is the only one; else all of them."""
    errors = list(checked.errors)
    if all((e.span, e.message) != (first.span, first.message) for e in errors):
        limits = [e for e in errors if isinstance(e, ErrorLimit)]
        errors = [*_in_order([first, *(e for e in errors if not isinstance(e, ErrorLimit))]), *limits]
    if len(errors) + checked.more <= 1:
        return first
    return SpecErrors(errors, checked.more, first)
