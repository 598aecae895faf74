"""The one front door: spec text → typed graph (parse, expand, infer), and `check_spec`, the same
with recovery, which reports every error of a spec and types everything whose inputs are known."""

from __future__ import annotations

from typing import NamedTuple

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


class Checked(NamedTuple):
    """A spec checked with recovery: the syntax tree, the graph expanded past errors (a node may read
    `archspec.expand.UNKNOWN`), each node's info (None where unknown), and the errors in line order."""

    module: Module
    graph: Graph
    infos: tuple[LayerInfo | None, ...]
    errors: tuple[SpecError, ...]  # at most MAX_ERRORS
    more: int  # errors past MAX_ERRORS
    incomplete: frozenset[int]  # scopes in which a statement failed: their totals are unknown

    @property
    def typed(self) -> TypedGraph | None:
        """The typed graph, when the spec has no error: `compile_spec`'s."""
        return None if self.errors else TypedGraph(self.graph, self.infos)


class CheckCache:
    """What the language server keeps of a document between versions, so that an edit costs what it
    touched: each top-level statement's parse (`parse_recovering`) and expansion and infos
    (`archspec.expand_memo`)."""

    def __init__(self) -> None:
        from archspec.expand_memo import ExpansionMemo
        from archspec.parse import StatementCache

        self.parse = StatementCache()
        self.expansion = ExpansionMemo()
        self.input_shape: tuple[int, ...] | None = None


def check_spec(
    text: str,
    name: str = "<spec>",
    input_shape: tuple[int, ...] | None = None,
    cache: CheckCache | None = None,
    check=None,
) -> Checked:
    """Parse, expand and type a spec past its errors, as a compiler goes on after one: every independent
    error is reported (up to MAX_ERRORS), each at its place, and every layer whose inputs are known is
    typed. With a `cache` kept between versions of a document, only what an edit touched is parsed,
    expanded and typed again. `check`, when given, is called between the steps: the language server
    raises there when a newer version of the document has arrived."""
    from archspec.expand import expand_recovering
    from archspec.infer import infer_partial
    from archspec.parse import parse_recovering

    memo = None
    if cache is not None:
        if cache.input_shape != input_shape:
            cache.__init__()
            cache.input_shape = input_shape
        memo = cache.expansion
    parsed = parse_recovering(text, name, cache.parse if cache is not None else None)
    if parsed.refused:
        return Checked(parsed.module, Graph((), (), SourceText(name, text)), (), parsed.errors, 0, frozenset())
    if memo is not None:
        memo.moved, memo.lines = cache.parse.moved, cache.parse.lines
    if check is not None:
        check()
    recovered = expand_recovering(parsed.module, SourceText(name, text), input_shape, memo)
    if check is not None:
        check()
    infos, infer_errors = infer_partial(recovered.graph, recovered.fragments)
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
