"""An open model file that is not a spec (Keras code `model.py`, a saved `model.keras`), checked as
`cnn-arch lint` checks it: findings and errors at their origins (Python lines; for a saved model,
whose bytes have no lines, the file's start, with the Keras layer named in the message), and for
Keras code the hover and shape hints of each Python line that makes a layer."""

from __future__ import annotations

from functools import cached_property

from archspec.errors import Span, SpecError, UserError
from archspec.interop import readers
from archspec.lint import Finding, Settings
from archspec.source import SourceText
from cnn_arch.server.analysis import Occurrence, line_facts


class ModelFileAnalysis:
    """The `Analysis` interface for a model file: `path` is where a saved model is read from (its
    editor text is bytes, not the model)."""

    def __init__(self, text: str, name: str, path: str | None, settings: Settings) -> None:
        self.reader = readers.reader_for(name)
        self.text = text if self.reader.text else ""
        self.name = name
        self.lines = SourceText("", self.text)
        self.error: SpecError | None = None
        self.findings: list[Finding] = []
        self.source = path or name
        try:
            _, findings = readers.lint_models(self.source, text if self.reader.text else None, settings)
            self.findings = [self._placed(f) for f in findings]
        except SpecError as error:
            self.error = error if self.reader.text and self._here(error) else self._at_start(error)
        except UserError as error:  # a file the reader refuses as a whole (no zip, a layer it cannot say)
            self.error = SpecError(error.message, Span(1, 1), hint=error.hint)

    def _here(self, error: SpecError) -> bool:
        """Whether the error is in this file (not in a module the script imports)."""
        return error.source is None or error.source.name == self.source

    def _at_start(self, error: SpecError) -> SpecError:
        """A saved model's error (it has no lines), or one in a module the script imports, at the
        file's start, naming where it is."""
        where = f"{error.source.name}:{error.span.line}: " if self.reader.text and error.span is not None else ""
        return SpecError(where + error.message, Span(1, 1), hint=error.hint, notes=error.notes)

    def _placed(self, finding: Finding) -> Finding:
        return finding if self.reader.text else finding._replace(span=Span(1, 1))

    module = None  # no macros to complete or go to
    definitions = ()
    calls = ()
    more_errors = 0

    @property
    def errors(self) -> list[SpecError]:
        return [self.error] if self.error is not None else []

    @cached_property
    def facts(self) -> dict[int, list[Occurrence]]:
        """What each Python line that makes a layer computes; nothing for a saved model."""
        if self.error is not None or not self.reader.text:
            return {}
        from archspec.compile import Checked

        try:
            models = readers.open_models(self.source, self.text)
            typed = readers.compile_imported(models.read(None))
        except UserError:
            return {}
        return line_facts(Checked(None, typed.graph, typed.infos, (), 0, frozenset()))[0]

    def definition(self, name: str):
        return None
