"""Spec text → syntax tree (`archspec.syntax`), with every node's line and column.

The grammar lives in `grammar.lark`. The parser that runs is lark's stand-alone LALR parser
generated from it, `_lark_parser.py`: it loads in a few milliseconds, where loading lark and the
grammar took about 0.1 s of every command's start-up. After editing the grammar, regenerate it with

    python -m lark.tools.standalone src/archspec/grammar.lark -o src/archspec/_lark_parser.py

(tests/test_parse_generated.py fails until you do). The tree builder is `archspec.parse_tree`;
lark's errors are translated into `SpecError`s by `archspec.parse_errors`, so nothing lark raises
reaches the user.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import NamedTuple

from archspec.errors import MAX_ERRORS, ErrorLimit, Span, SpecError
from archspec.source import SourceText
from archspec.syntax import Broken, Module
from archspec.words import BLOCKS, DEF

# Resource limits, checked before anything is built: a spec is a few hundred short lines.
MAX_SPEC_BYTES = 1_000_000
MAX_LINE_LENGTH = 1000
# As many lines as a spec may have layers (expand.MAX_NODES): more text would only be refused after
# parsing it, which takes seconds (a 199,000-line spec took 2.9 s to reach the layer limit).
MAX_LINES = 30_000


def parse(text: str, name: str = "<spec>") -> Module:
    """Parse spec text into a `Module`. Raises `SpecError` (with source attached) on any mistake."""
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write: not part of the spec
    source = SourceText(name, text)
    try:
        _check_size(source)
        parser = _parser()
        parser.syntax_builder.reset()
        tree = parser.parse(_normalize(text))
    except SpecError as error:
        raise error.with_source(source) from None
    except Exception as error:  # lark's many exception types, and its Indenter's
        from archspec.parse_errors import translate

        raise translate(error, _normalize(text), _parser()).with_source(source) from None
    return tree


class Parsed(NamedTuple):
    """What `parse_recovering` read: the syntax tree, with a `Broken` statement for each place it could
    not read, and the errors, in line order."""

    module: Module
    errors: tuple[SpecError, ...]
    refused: bool = False  # the text as a whole (too long to be a spec): nothing of it was read


# One parse error per broken line is enough: past this many in one top-level statement, the rest of
# the statement is given up as one broken statement.
MAX_ERRORS_PER_STATEMENT = 10


def parse_recovering(text: str, name: str = "<spec>") -> Parsed:
    """Parse spec text, recovering from mistakes as a compiler does, statement by statement.

    The text is cut into top-level statements (a `def` with its body, a line, a block with its
    indented lines; an `if` with its `elif`/`else`), each parsed on its own: a mistake in one leaves
    the others whole. Inside a statement, the line of a mistake (with the lines indented under it) is
    replaced by a `Broken` mark and the statement parsed again, so the other lines of a `def` or block
    are kept too. A spec without mistakes reads exactly as `parse` reads it. (The language server reads
    a new version of a document from the last one's: `archspec.parse_incremental`.)
    """
    text = text.removeprefix("\ufeff")
    refused = refuse_whole(name, text)
    if refused is not None:
        return refused
    try:  # the whole text at once is fastest, and a correct spec reads as `parse` reads it
        return Parsed(parse(text, name), ())
    except SpecError:
        pass
    normalized = _normalize(text)
    defs, body, errors = [], [], []
    for start, offset, end in _statements(normalized):
        if len(errors) >= MAX_ERRORS:  # as clang does: past that many, what follows is not read
            body.append(Broken(Span(start + 1, 1)))
            errors.append(ErrorLimit(Span(start + 1, 1)))
            break
        module, problems = _parse_statement(normalized[offset:end].split("\n")[:-1], start)
        defs.extend(module.defs)
        body.extend(module.body)
        errors.extend(problems)
    return Parsed(Module(tuple(defs), tuple(body)), with_source(errors, name, text))


def refuse_whole(name: str, text: str) -> Parsed | None:
    """A text too long to be a spec is refused before any of it is parsed (its size, then its line
    count, found at C speed: the language server asks at every keystroke)."""
    lines = text.count("\n") + 1 if "\r" not in text else MAX_LINES + 1
    if len(text) <= MAX_SPEC_BYTES and lines <= MAX_LINES:
        return None
    source = SourceText(name, text)
    try:
        _check_totals(source)
    except SpecError as error:
        return Parsed(Module((), ()), (error.with_source(source),), refused=True)
    return None


def with_source(errors, name: str, text: str) -> tuple[SpecError, ...]:
    """Parse errors with the text attached (they quote it)."""
    if not errors:
        return ()
    source = SourceText(name, text)
    return tuple(
        ErrorLimit(e.span, source)
        if isinstance(e, ErrorLimit)
        else SpecError(e.message, e.span, hint=e.hint, notes=e.notes, source=source)
        for e in errors
    )


def read_spec_file(path: str | Path) -> str:
    """Read a spec file, turning OS and encoding failures into a `PathError`. Only regular files are
    read, and never more than the size limit (`/dev/zero` would never end, a FIFO would block); the
    text keeps its own line endings (lint's fixes write them back), less a UTF-8 byte-order mark."""
    import os
    import stat

    from archspec.errors import PathError

    if str(path) == "":
        raise PathError("''", "the path is empty", hint="give a spec file (`model.arch`) or a template name")
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise PathError(str(path), "is a folder, not a spec file")
        if not stat.S_ISREG(mode):
            raise PathError(str(path), f"is {_file_kind(mode)}, not a regular file", hint="a spec is a plain text file")
        # O_NONBLOCK: should the path have turned into a FIFO since the check, opening it does not wait
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise PathError(str(path), "is not a regular file", hint="a spec is a plain text file")
            data = file.read(MAX_SPEC_BYTES + 1)
        return _decoded(data, str(path))
    except FileNotFoundError:
        raise PathError(str(path), "no such file") from None
    except PermissionError:
        raise PathError(str(path), "permission denied") from None
    except OSError as error:
        raise PathError(str(path), error.strerror or str(error)) from None


def read_spec_stream(stream, name: str = "-") -> str:
    """Read a spec from a stream (stdin), with the file's rules: at most the size limit is read
    (`< /dev/zero` is refused at the limit, not read without end), UTF-8, no byte-order mark. A text
    stream (a program's own `sys.stdin`) is taken as decoded."""
    from archspec.errors import PathError

    try:
        data = stream.read(MAX_SPEC_BYTES + 1)
    except (OSError, UnicodeDecodeError) as error:
        raise PathError(name, f"cannot read it: {getattr(error, 'strerror', None) or error}") from None
    return _decoded(data.encode("utf-8") if isinstance(data, str) else data, name)


def _decoded(data: bytes, name: str) -> str:
    from archspec.errors import PathError

    if len(data) > MAX_SPEC_BYTES:
        raise PathError(name, f"is larger than {MAX_SPEC_BYTES:,} bytes; a spec is a short text file")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise PathError(name, f"is not UTF-8 text (byte {error.start})", hint="a spec is a plain text file") from None


def _file_kind(mode: int) -> str:
    import stat

    for test, kind in (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "a special file"


# --- lark plumbing -------------------------------------------------------------------------


def _normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


def _check_size(source: SourceText) -> None:
    _check_totals(source)
    for number, line in enumerate(source.lines, start=1):
        problem = _line_problem(number, line)
        if problem is not None:
            raise problem


def _check_totals(source: SourceText) -> None:
    """Refuse a text longer than any spec, by its size and its line count."""
    if len(source.text) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is longer than {MAX_SPEC_BYTES:,} characters", Span(1, 1))
    if len(source.lines) > MAX_LINES:
        raise SpecError(
            f"the spec has {len(source.lines):,} lines; at most {MAX_LINES:,} are allowed",
            Span(MAX_LINES + 1, 1),
            hint="a `def` and `repeat N:` or `xN` say a long stack in a few lines",
        )


def _line_problem(number: int, line: str) -> SpecError | None:
    if len(line) > MAX_LINE_LENGTH:
        return SpecError(
            f"line is {len(line):,} characters long (at most {MAX_LINE_LENGTH} are allowed)",
            Span(number, MAX_LINE_LENGTH + 1),
        )
    if "\0" in line:
        return SpecError(
            "the spec contains a NUL byte", Span(number, line.index("\0") + 1), hint="is this a binary file?"
        )
    return None


# --- recovery: one top-level statement at a time -----------------------------------------------------

_CLAUSE = re.compile(r"(elif|else)\b")
_DEF_NAME = re.compile(r"\s*def\s+([A-Za-z_][A-Za-z0-9_]*)")
_OUTPUT = re.compile(r"->\s*([A-Za-z_][A-Za-z0-9_]*)")


def _code(line: str) -> str:
    return line.split("#", 1)[0]


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


_MARGIN = re.compile(r"^[^ \t\n#)]", re.MULTILINE)


def _statements(text: str, start: int = 0, end: int | None = None, line: int = 0) -> list[tuple[int, int, int]]:
    """The top-level statements of a normalized text, as (first line index, start offset, end offset):
    each starts at a line of code at the left margin that is not joined to the line before by a `\\`,
    not a `)` closing one, and not the `elif`/`else` of an `if` (comments and blank lines go with the
    statement before them). A line at the margin after an unclosed `(` starts a statement too: that is
    how a half-typed `bn(` reads, and lines inside parentheses are indented in practice (`parse`
    reads a whole correct text as it is). Whether a line starts a statement depends on that line and the
    one before only. With `start` and `end` (offsets of two statements' first lines, `start` on line
    `line`), the statements between them."""
    end = len(text) if end is None else end
    found = [(line, start)]
    position = start
    for match in _MARGIN.finditer(text, start, end):
        offset = match.start()
        if offset == start:
            continue
        line += text.count("\n", position, offset)
        position = offset
        if _CLAUSE.match(text, offset):
            continue
        before_end = offset - 1  # the line before ends here: is it joined to this one by a `\\`?
        while before_end > 0 and text[before_end - 1] in " \t":
            before_end -= 1
        if before_end > 0 and text[before_end - 1] == "\\":
            before = text.rfind("\n", 0, offset - 1) + 1
            if _code(text[before : offset - 1]).rstrip().endswith("\\"):  # and not in a comment
                continue
        found.append((line, offset))
    ends = [offset for _, offset in found[1:]] + [end]
    return [(line, offset, stop) for (line, offset), stop in zip(found, ends)]


def _parse_statement(lines: list[str], start: int) -> tuple[Module, tuple[SpecError, ...]]:
    """One top-level statement (lines `start`.. of the text), with its errors. Spans count lines from
    the top of the whole text (the lexer's lines are shifted by `start`). After an error, the statement
    is parsed again with the error's line marked broken, MAX_ERRORS_PER_STATEMENT times at most."""
    for number, line in enumerate(lines, start=start + 1):
        problem = _line_problem(number, line)
        if problem is not None:
            return _given_up(lines[0], start), (problem,)
    first = lines[0] if lines else ""
    errors: list[SpecError] = []
    marked: set[int] = set()
    lines = list(lines)
    for _ in range(MAX_ERRORS_PER_STATEMENT):
        text = "\n".join(lines) + "\n"
        try:
            module = _parse_shifted(text, start)
        except Exception:
            # read again from line 1, where the error's lines are the statement's own, then moved down
            problem = _relative_error(text).shifted(start)
        else:
            return _name_broken_def(module, first, start), tuple(errors)
        where = problem.span.line - 1 - start if problem.span else -1
        if where in marked:  # an error at a mark is the mark's own doing: give the statement up
            break
        errors.append(problem)
        if not 0 <= where < len(lines):
            break
        marked.add(where)
        _mark_broken(lines, where)
    return _given_up(first, start), tuple(errors)


def _parse_shifted(text: str, start: int) -> Module:
    parser = _parser()
    parser.syntax_builder.reset()
    parser.indenter.line_offset = start
    try:
        return parser.parse(text)
    finally:
        parser.indenter.line_offset = 0


class _Located:
    """An error of a statement read on its own, to be moved to the statement's place."""

    def __init__(self, error: SpecError) -> None:
        self.error = error

    def shifted(self, start: int) -> SpecError:
        from archspec.relocate import shifted_error

        return shifted_error(self.error, start)


def _relative_error(text: str) -> _Located:
    parser = _parser()
    parser.syntax_builder.reset()
    try:
        parser.parse(text)
    except SpecError as error:
        return _Located(error)
    except Exception as error:  # lark's own, as in `parse`
        from archspec.parse_errors import translate

        return _Located(translate(error, text, _parser()))
    raise AssertionError("a statement that failed to parse parsed")  # parsing is deterministic


def _mark_broken(lines: list[str], where: int) -> None:
    """Replace line `where`, and the lines indented under it, by a `Broken` mark (a NUL byte, which no
    spec can hold) at an indentation the block structure accepts; the line count stays."""
    own = _indent(lines[where])
    previous = [line for line in lines[:where] if _code(line).strip()]
    margin = lines[where][: len(lines[where]) - len(lines[where].lstrip())]
    misplaced = False
    if previous and not _code(previous[-1]).rstrip().endswith(":") and all(_indent(p) != own for p in previous):
        # over-indented: at the line above's level; dedented to no open level: at the block it leaves
        deeper = [line for line in previous if _indent(line) > own]
        nearest = min(deeper, key=_indent) if own < _indent(previous[-1]) and deeper else previous[-1]
        margin = nearest[: len(nearest) - len(nearest.lstrip())]
        misplaced = True
    end = where + 1  # the lines under it go with it; under a misplaced line, those as far in too
    while end < len(lines) and (
        not _code(lines[end]).strip() or _indent(lines[end]) > own or (misplaced and _indent(lines[end]) == own)
    ):
        end += 1
    if misplaced and _code(previous[-1]).split()[0].split("(")[0] in (*BLOCKS, DEF):
        # indented under `add` or `def f(a)` without its `:`: the header is broken with its block
        where = max(i for i in range(where) if _code(lines[i]).strip())
        margin = lines[where][: len(lines[where]) - len(lines[where].lstrip())]
    output = _OUTPUT.search(_code(lines[where]))
    lines[where:end] = [margin + "\0" + (f" -> {output.group(1)}" if output else "")] + [""] * (end - where - 1)


def _given_up(first: str, start: int) -> Module:
    found = _DEF_NAME.match(first)
    return Module((), (Broken(Span(start + 1, 1), defines=found.group(1) if found else None),))


def _name_broken_def(module: Module, first: str, start: int) -> Module:
    """A `def` whose header line was broken reads as a `Broken` at the statement's first line: name it,
    so the macro's calls are unknown instead of unknown words."""
    found = _DEF_NAME.match(first)
    if found is None or not module.body or not isinstance(module.body[0], Broken):
        return module
    first = module.body[0]
    if first.line != start + 1:
        return module
    from dataclasses import replace

    return Module(module.defs, (replace(first, defines=found.group(1)), *module.body[1:]))


def _shifted(tokens, offset: int):
    for token in tokens:
        token.line += offset
        token.end_line += offset
        yield token


@functools.lru_cache(maxsize=1)
def _parser():
    from archspec._lark_parser import Indenter, Lark_StandAlone

    class SpecIndenter(Indenter):
        NL_type = "_NL"
        OPEN_PAREN_types = ("LPAR",)
        CLOSE_PAREN_types = ("RPAR",)
        INDENT_type = "_INDENT"
        DEDENT_type = "_DEDENT"
        tab_len = 8
        line_offset = 0  # added to every token's line: parse_recovering reads a statement on its own

        def process(self, stream):
            if self.line_offset:
                stream = _shifted(stream, self.line_offset)
            return super().process(stream)

        def handle_NL(self, token):
            yield from super().handle_NL(token)
            # refused while reading, at the header that opens one level too many (the tree builder
            # only sees a block once its whole body is read, hundreds of lines later)
            if len(self.indent_level) > MAX_BLOCK_DEPTH + 1:
                raise SpecError(f"blocks nested more than {MAX_BLOCK_DEPTH} levels deep", Span(token.line, 1))

    from archspec.parse_tree import MAX_BLOCK_DEPTH, ToSyntax

    builder = ToSyntax()
    indenter = SpecIndenter()
    parser = Lark_StandAlone(postlex=indenter, transformer=builder)
    parser.syntax_builder = builder  # parse() resets it before each parse
    parser.indenter = indenter
    return parser
