"""User-facing errors: every mistake a user can make ends in one of these, never a traceback.

The CLI catches `UserError`, prints `render()` to stderr and exits with code 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from archspec.source import SourceText
from archspec.text import excerpt


class UserError(Exception):
    """A mistake in the user's input (spec, options, data, files). Exit code 2."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class PathError(UserError):
    """A problem tied to a file or folder (unreadable, missing, bad content)."""

    def __init__(self, path: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = str(path)

    def render(self) -> str:
        text = f"{self.path}: error: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class DataError(PathError):
    """The training data cannot be used: missing, corrupt, empty, mismatched with the spec."""


@dataclass(frozen=True)
class Span:
    """A place in a spec: 1-based line and column, and the column one past the end."""

    line: int
    column: int
    end_column: int | None = None


@dataclass(frozen=True)
class Note:
    """An extra located remark under an error, e.g. the call site of a macro expansion."""

    message: str
    span: Span | None = None


class SpecError(UserError):
    """An error at a place in a spec, rendered like a compiler's diagnostic:

    spec.arch:7:6: error: maxpool 3 needs at least 3x3 input, got 2x2
      7 | maxpool 3
        |      ^
      = note: in expansion of `bottleneck 128 stride=2` at line 31
    hint: ...
    """

    def __init__(
        self,
        message: str,
        span: Span | None,
        *,
        hint: str | None = None,
        notes: tuple[Note, ...] = (),
        source: SourceText | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.span = span
        self.notes = notes
        self.source = source

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def with_source(self, source: SourceText) -> SpecError:
        if self.source is None:
            self.source = source
        return self

    def with_note(self, note: Note) -> SpecError:
        self.notes = (*self.notes, note)
        return self

    def render(self) -> str:
        name = self.source.name if self.source else "<spec>"
        where = f"{name}:{self.span.line}:{self.span.column}" if self.span else name
        out = [f"{where}: error: {self.message}"]
        out.extend(_excerpt(self.source, self.span))
        for note in self.notes:
            at = f" (line {note.span.line})" if note.span and "line" not in note.message else ""
            out.append(f"  = note: {note.message}{at}")
            out.extend(_excerpt(self.source, note.span))
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


# Errors reported for one spec, at most: past a few dozen, the first ones are what to fix. (clang stops at 20.)
MAX_ERRORS = 50


def detached(error: SpecError) -> SpecError:
    """`error`, to be kept after it was caught (the language server keeps a version's errors): without its
    traceback and the exception it was raised from, whose frames hold what the functions it passed
    through held (a whole expansion) in a cycle only the garbage collector frees."""
    error.__traceback__ = error.__context__ = error.__cause__ = None
    return error


class ErrorLimit(SpecError):
    """Where checking stopped, MAX_ERRORS errors in (a garbled or binary file must be refused quickly)."""

    def __init__(self, span: Span | None, source: SourceText | None = None) -> None:
        super().__init__(
            f"stopped after {MAX_ERRORS} errors: the spec from here on is not checked", span, source=source
        )


class SpecErrors(SpecError):
    """Several independent errors of one spec, reported together as a compiler does. Its own fields
    are those of the error the compile stopped at (what a caller that handles one error sees); `render`
    shows them all, in line order, and a closing line."""

    def __init__(self, errors: list[SpecError], more: int, primary: SpecError) -> None:
        super().__init__(primary.message, primary.span, hint=primary.hint, notes=primary.notes, source=primary.source)
        self.errors = errors
        self.more = more  # errors past MAX_ERRORS, not kept

    def render(self) -> str:
        name = self.source.name if self.source else "<spec>"
        count = len(self.errors) + self.more
        closing = f"error: could not compile `{name}` due to {count} errors"
        if self.errors and isinstance(self.errors[-1], ErrorLimit):
            closing = f"error: could not compile `{name}` due to more than {MAX_ERRORS} errors"
        elif self.more:
            closing += f" (the first {len(self.errors)} are shown)"
        return "\n\n".join([*(error.render() for error in self.errors), closing])


def _excerpt(source: SourceText | None, span: Span | None) -> list[str]:
    if source is None or span is None or not 1 <= span.line <= len(source):
        return []
    text, start, width = excerpt(source.line(span.line), span.column, span.end_column)
    gutter = str(span.line)
    return [f" {gutter} | {text}", f" {' ' * len(gutter)} | {' ' * start}{'^' * width}"]


__all__ = [
    "MAX_ERRORS",
    "DataError",
    "ErrorLimit",
    "Note",
    "PathError",
    "SourceText",
    "Span",
    "SpecError",
    "SpecErrors",
    "UserError",
    "detached",
]
