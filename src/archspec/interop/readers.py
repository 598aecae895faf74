"""Model files the commands read besides specs, chosen by suffix: each reader turns its file into an
imported spec (the spec text and, for each line, its place in the file), which `summarize`, `lint`,
`draw` and `import` then check as any spec, reporting at the file's places.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archspec.infer import TypedGraph
    from archspec.interop.keras_graph import ImportedSpec


def _onnx(path: str, input_shape: tuple[int, ...] | None) -> ImportedSpec:
    from archspec.interop.onnx_import import import_onnx

    return import_onnx(path, input_shape)


@dataclass(frozen=True)
class ModelReader:
    suffixes: tuple[str, ...]
    what: str  # "an ONNX model", for messages
    read: Callable[[str, tuple[int, ...] | None], ImportedSpec]


READERS = (ModelReader((".onnx",), "an ONNX model", _onnx),)


def reader_for(name: str) -> ModelReader | None:
    """The reader of a model file by its suffix; None for a spec (or Keras source, read as text)."""
    lowered = name.lower()
    return next((r for r in READERS if lowered.endswith(r.suffixes)), None)


def import_model(path: str, input_shape: tuple[int, ...] | None = None) -> ImportedSpec:
    reader = reader_for(path)
    assert reader is not None, path
    return reader.read(path, input_shape)


def compile_model(path: str, input_shape: tuple[int, ...] | None = None) -> TypedGraph:
    """The typed graph of a model file; its nodes and errors carry the file's places."""
    from archspec.interop.keras_check import compile_imported

    return compile_imported(import_model(path, input_shape))


def lint_model(imported: ImportedSpec, settings) -> list:
    """Lint findings for an imported spec, moved to the file's places. A model file has no lines a
    `# noqa` could go on and no text a fix could edit: findings come without fixes."""
    from archspec.errors import SpecError
    from archspec.lint.engine import lint_source

    try:
        found = lint_source(imported.text, imported.source.name, settings)
    except SpecError as error:
        raise imported.relocate(error) from None
    findings = [f._replace(span=imported.locate(f.span), fix=None) for f in found]
    return sorted(findings, key=lambda f: (f.span.line, f.span.column, f.code))
