"""Models read from files other than a spec, chosen by suffix: `READERS` holds one line per format.

A reader turns a file into the models it holds, each an `ImportedSpec`: the spec text of the
model and, for every spec line, where it came from (a Python line, or the line itself in the spec
written for a saved model, which names its layer). `summarize`, `draw`, `lint`, `import` and the
language server type that spec and report every place at its origin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from archspec.errors import SpecError, UserError
from archspec.interop.imported import ImportedSpec, ModelFile


class Reader(NamedTuple):
    """A file format: `open(path, text, input_shape)` gives its models; `text` is the file's text
    for a text format (None: read the file), and a binary format reads the file itself."""

    open: Callable[[str, str | None, tuple[int, ...] | None], ModelFile]
    text: bool = False


def _keras_source(path: str, text: str | None, input_shape) -> ModelFile:
    from archspec.interop.keras_import import keras_models

    if text is None:
        from archspec.parse import read_spec_file

        text = read_spec_file(path)
    return keras_models(text, path, input_shape)


def single(read: Callable[[str, tuple[int, ...] | None], ImportedSpec]) -> Callable:
    """A reader of a binary file that holds one model, from `read(path, input_shape)`."""

    def open_file(path: str, text: str | None, input_shape) -> ModelFile:
        imported = read(path, input_shape)
        return ModelFile([imported.name], lambda name: imported)

    return open_file


def _keras_saved(path: str, input_shape) -> ImportedSpec:
    from archspec.interop.keras_saved import read_saved

    return read_saved(path, input_shape)


def _onnx(path: str, input_shape) -> ImportedSpec:
    from archspec.interop.onnx_import import import_onnx

    return import_onnx(path, input_shape)


READERS: dict[str, Reader] = {
    ".py": Reader(_keras_source, text=True),  # Keras model code, read statically (keras_import)
    ".keras": Reader(single(_keras_saved)),  # a saved Keras model: config.json in a zip (keras_saved)
    ".h5": Reader(single(_keras_saved)),  # a Keras model saved as HDF5: its `model_config` (through h5py)
    ".hdf5": Reader(single(_keras_saved)),
    ".onnx": Reader(single(_onnx)),  # an ONNX graph, weights left out (onnx_import)
}


def reader_for(name: str) -> Reader | None:
    """The reader of a file name, by its suffix; None for a spec."""
    return READERS.get(Path(name).suffix.lower())


def open_models(name: str, text: str | None = None, input_shape: tuple[int, ...] | None = None) -> ModelFile:
    """The models file `name` holds (`text`: its text, for a text format, when already read)."""
    reader = reader_for(name)
    if reader is None:
        raise UserError(f"`{name}` is not a model file cnn-arch reads", hint="formats: " + ", ".join(READERS))
    if text is not None and not reader.text:
        raise UserError(f"a `{Path(name).suffix}` model is read from its file, not from stdin")
    return reader.open(name, text, input_shape)


def read_model(name: str, model: str | None = None, input_shape: tuple[int, ...] | None = None) -> ImportedSpec:
    """One model of file `name`: the one called `model`, or the file's last one."""
    return open_models(name, None, input_shape).read(model)


def compile_imported(imported: ImportedSpec, input_shape: tuple[int, ...] | None = None):
    """Type an imported spec; its nodes, and any error, carry their origins."""
    from archspec.compile import compile_spec

    try:
        typed = compile_spec(imported.text, imported.source.name, input_shape)
    except SpecError as error:
        raise imported.relocate(error) from None
    graph = typed.graph
    nodes = tuple(replace(n, span=imported.locate(n.span)) for n in graph.nodes)
    scopes = tuple(replace(s, span=imported.locate(s.span)) for s in graph.scopes)
    return replace(typed, graph=replace(graph, nodes=nodes, scopes=scopes, source=imported.source))


def compile_model_file(name: str, input_shape: tuple[int, ...] | None = None):
    """The typed graph of the (last) model of file `name`."""
    return compile_imported(read_model(name, None, input_shape))


def lint_models(name: str, text: str | None, settings, input_shape: tuple[int, ...] | None = None):
    """Lint findings for every model file `name` holds, at their origins, and the text they quote
    (the Python source, or a saved model's list of layers). Fixes are spec edits, so none is
    offered; `# noqa: CODE` on a Python line suppresses a finding as in a spec."""
    from archspec.lint.engine import lint_source, noqa_codes

    models = open_models(name, text, input_shape).all()
    findings = []
    for imported in models:
        try:
            found = lint_source(imported.text, imported.source.name, settings)
        except SpecError as error:
            raise imported.relocate(error) from None
        for finding in found:
            span = imported.locate(finding.span)
            codes = noqa_codes(imported.source.line(span.line))  # `# noqa: CODE` on a Python line
            if codes is not None and (not codes or finding.code in codes):
                continue
            notes = (*finding.notes, f"in model `{imported.name}`") if len(models) > 1 else finding.notes
            layer = imported.layer_at(finding.span)
            message = f"{layer}: {finding.message}" if layer else finding.message
            findings.append(finding._replace(span=span, fix=None, notes=notes, message=message))
    shown = models[0].source.text if models else (text or "")
    return shown, sorted(findings, key=lambda f: (f.span.line, f.span.column, f.code))
