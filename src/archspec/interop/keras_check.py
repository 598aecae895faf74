"""Summarize and lint Keras source directly: the imported spec is compiled and linted, and every
place it reports is moved back to the Python line of the Keras call it came from."""

from __future__ import annotations

from dataclasses import replace

from archspec.errors import SpecError
from archspec.infer import TypedGraph
from archspec.interop.keras_graph import ImportedSpec
from archspec.interop.keras_import import import_keras, imported_models

PYTHON_SUFFIX = ".py"


def is_python(name: str) -> bool:
    return name.endswith(PYTHON_SUFFIX)


def compile_imported(imported: ImportedSpec, input_shape: tuple[int, ...] | None = None) -> TypedGraph:
    """Type an imported spec; its nodes, and any error, carry Python places."""
    from archspec.compile import compile_spec

    try:
        typed = compile_spec(imported.text, imported.source.name, input_shape)
    except SpecError as error:
        raise imported.relocate(error) from None
    graph = typed.graph
    nodes = tuple(replace(n, span=imported.locate(n.span)) for n in graph.nodes)
    scopes = tuple(replace(s, span=imported.locate(s.span)) for s in graph.scopes)
    return replace(typed, graph=replace(graph, nodes=nodes, scopes=scopes, source=imported.source))


def compile_python(text: str, name: str, input_shape: tuple[int, ...] | None = None) -> TypedGraph:
    """The typed graph of the (last) Keras model built by `text`."""
    return compile_imported(import_keras(text, name, input_shape=input_shape))


def lint_python(text: str, name: str, settings, input_shape: tuple[int, ...] | None = None) -> list:
    """Lint findings for every model `text` builds, at Python places. Fixes are spec edits, so none
    is offered; `# noqa: CODE` on the Python line suppresses a finding as in a spec."""
    from archspec.lint.engine import lint_source, noqa_codes

    lines = text.splitlines()
    findings = []
    models = imported_models(text, name, input_shape)
    for imported in models:
        try:
            found = lint_source(imported.text, name, settings)
        except SpecError as error:
            raise imported.relocate(error) from None
        for finding in found:
            span = imported.locate(finding.span)
            codes = noqa_codes(lines[span.line - 1]) if span.line <= len(lines) else None
            if codes is not None and (not codes or finding.code in codes):
                continue
            notes = (*finding.notes, f"in model `{imported.name}`") if len(models) > 1 else finding.notes
            findings.append(finding._replace(span=span, fix=None, notes=notes))
    return sorted(findings, key=lambda f: (f.span.line, f.span.column, f.code))
