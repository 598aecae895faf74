"""A model read from a file that is not a spec, as the spec it is (what every reader gives,
archspec.interop.readers dispatches to them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from archspec.errors import SourceText, Span, SpecError


@dataclass(frozen=True)
class ImportedSpec:
    """A model read from a file as a spec: the spec text and, for each spec line, where it came from.

    From source code, `source` is the Python file and `origins` its places. A saved model has no
    lines: `source` lists its layers, one per line (`conv2d_3 (Conv2D)`), `origins` points at them,
    and `layers` names the layer of each spec line, which errors and findings quote."""

    name: str  # the variable or function that holds the model, or the saved model's name
    text: str
    origins: dict[int, Span]
    source: SourceText
    span: Span  # where the model is built
    layers: dict[int, str] = field(default_factory=dict)  # spec line -> "Keras layer `conv2d_3` (Conv2D)"

    def locate(self, span: Span | None) -> Span:
        """The origin of a spec place (the model's own place when the line has none)."""
        if span is None:
            return self.span
        return self.origins.get(span.line, self.span)

    def layer_at(self, span: Span | None) -> str | None:
        return self.layers.get(span.line) if span is not None else None

    def relocate(self, error: SpecError) -> SpecError:
        """The same error at the origin of the layer it is about, naming the layer of a saved model."""
        layer = self.layer_at(error.span)
        message = f"{layer}: {error.message}" if layer else error.message
        return SpecError(message, self.locate(error.span), hint=error.hint, source=self.source)


class ModelFile(NamedTuple):
    """The models one file holds: their names, in order, and how to read one (None: the last)."""

    names: list[str]
    read: Callable[[str | None], ImportedSpec]

    def all(self) -> list[ImportedSpec]:
        return [self.read(name) for name in self.names] or [self.read(None)]  # none: the reader's error
