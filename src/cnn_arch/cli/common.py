"""What several commands share: finding a spec (a file or a built-in template) and typing it."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer

from archspec.errors import PathError, UserError


class TableOrJson(str, Enum):
    table = "table"
    json = "json"


class CheckpointChoice(str, Enum):
    """Which checkpoint of a run: the one it kept (the best epoch by its --monitor), or the last one."""

    best = "best"
    last = "last"


def former_name(name: str) -> Any:
    """An option's former name (`--out`, `--output-file` before `-o/--output`), still accepted, no
    longer shown in help."""
    return typer.Option(None, name, hidden=True)


def either(value, former, name: str):
    """The value of `-o/--output` or of its former name `name`; both at once is a mistake."""
    if value is not None and former is not None:
        raise UserError(f"`-o/--output` and `{name}` are the same option; give it once")
    return value if former is None else former


def read_target(spec: str) -> tuple[str, str]:
    """(display name, text) of a spec file or a built-in template name."""
    from archspec import templates
    from archspec.parse import read_spec_file

    path = Path(spec)  # Path("") is the current folder: read_spec_file sees the empty text instead
    if not spec or path.exists() or spec.endswith(".arch") or "/" in spec or "\\" in spec:
        return spec, read_spec_file(spec)
    template = templates.path(spec)
    if template is not None:
        return spec, template.read_text(encoding="utf-8")
    raise PathError(spec, "no such spec file or built-in template", hint=template_hint(spec))


def template_hint(name: str) -> str:
    """`did you mean the template ...?` for a misspelt template name, else the list of templates."""
    from archspec import templates
    from archspec.text import did_you_mean

    names = templates.names()
    return did_you_mean(name, names, "the template `{}`") or f"built-in templates: {', '.join(names)}"


def parse_shape(text: str | None, option: str = "--input") -> tuple[int, ...] | None:
    """`--input 32x32x1` → (32, 32, 1)."""
    if text is None:
        return None
    from archspec.layers.base import ArgError
    from archspec.layers.shape import input_shape

    parts = text.lower().split("x")
    if not all(p.strip().isdigit() and len(p.strip()) <= 9 for p in parts):
        raise UserError(f"{option} must look like HxWxC (e.g. 32x32x1), got `{text}`")
    dims = tuple(int(p) for p in parts)
    try:
        return input_shape(option, dims if len(dims) > 1 else dims[0])
    except ArgError as error:
        raise UserError(error.message) from None


def compile_target(spec: str, input_text: str | None = None):
    """Read and type a spec or template, or a model file (Keras code `model.py`, a saved `model.keras`,
    see archspec.interop.readers); `input_text` (HxWxC) overrides its input."""
    from archspec.compile import compile_spec
    from archspec.interop import readers

    if readers.reader_for(spec) is not None:
        return readers.compile_model_file(spec, parse_shape(input_text))
    name, text = read_target(spec)
    return compile_spec(text, name, parse_shape(input_text))
