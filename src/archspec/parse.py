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
from pathlib import Path

from archspec.errors import Span, SpecError
from archspec.source import SourceText
from archspec.syntax import Module

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
    if len(source.text) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is longer than {MAX_SPEC_BYTES:,} characters", Span(1, 1))
    if len(source.lines) > MAX_LINES:
        raise SpecError(
            f"the spec has {len(source.lines):,} lines; at most {MAX_LINES:,} are allowed",
            Span(MAX_LINES + 1, 1),
            hint="a `def` and `repeat N:` or `xN` say a long stack in a few lines",
        )
    for number, line in enumerate(source.lines, start=1):
        if len(line) > MAX_LINE_LENGTH:
            raise SpecError(
                f"line is {len(line):,} characters long (at most {MAX_LINE_LENGTH} are allowed)",
                Span(number, MAX_LINE_LENGTH + 1),
            )
        if "\0" in line:
            raise SpecError(
                "the spec contains a NUL byte", Span(number, line.index("\0") + 1), hint="is this a binary file?"
            )


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

        def handle_NL(self, token):
            yield from super().handle_NL(token)
            # refused while reading, at the header that opens one level too many (the tree builder
            # only sees a block once its whole body is read, hundreds of lines later)
            if len(self.indent_level) > MAX_BLOCK_DEPTH + 1:
                raise SpecError(f"blocks nested more than {MAX_BLOCK_DEPTH} levels deep", Span(token.line, 1))

    from archspec.parse_tree import MAX_BLOCK_DEPTH, ToSyntax

    builder = ToSyntax()
    parser = Lark_StandAlone(postlex=SpecIndenter(), transformer=builder)
    parser.syntax_builder = builder  # parse() resets it before each parse
    return parser
