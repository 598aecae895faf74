"""Spec text → syntax tree (`archspec.syntax`), with every node's line and column.

The grammar lives in `grammar.lark`. The parser that runs is lark's stand-alone LALR parser
generated from it, `_lark_parser.py`: it loads in a few milliseconds, where loading lark and the
grammar took about 0.1 s of every command's start-up. After editing the grammar, regenerate it with

    python -m lark.tools.standalone src/archspec/grammar.lark -o src/archspec/_lark_parser.py

(tests/test_parse_generated.py fails until you do). Lark's errors are translated into `SpecError`s
that read like a compiler's; nothing lark raises reaches the user.
"""

from __future__ import annotations

import functools
from pathlib import Path

from archspec.errors import Span, SpecError
from archspec.source import SourceText
from archspec.syntax import (
    BinOp,
    Block,
    Call,
    Def,
    Dims,
    KwArg,
    Line,
    Module,
    Neg,
    Num,
    Param,
    Ref,
)

# Resource limits, checked before anything is built: a spec is a few hundred short lines.
MAX_SPEC_BYTES = 1_000_000
MAX_LINE_LENGTH = 1000
MAX_NUMBER_DIGITS = 12
MAX_EXPR_DEPTH = 40
MAX_BLOCK_DEPTH = 32

BLOCK_HEADERS = ("add", "concat", "multiply", "branch", "repeat")


def parse(text: str, name: str = "<spec>") -> Module:
    """Parse spec text into a `Module`. Raises `SpecError` (with source attached) on any mistake."""
    source = SourceText(name, text)
    try:
        _check_size(text)
        tree = _parser().parse(_normalize(text))
    except SpecError as error:
        raise error.with_source(source) from None
    except Exception as error:  # lark's many exception types, and its Indenter's
        raise _translate(error, _normalize(text)).with_source(source) from None
    return tree


def read_spec_file(path: str | Path) -> str:
    """Read a spec file, turning OS and encoding failures into a `PathError`."""
    from archspec.errors import PathError

    p = Path(path)
    try:
        if p.is_dir():
            raise PathError(str(path), "is a folder, not a spec file")
        if p.stat().st_size > MAX_SPEC_BYTES:
            raise PathError(str(path), f"is larger than {MAX_SPEC_BYTES:,} bytes; a spec is a short text file")
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PathError(str(path), "no such file") from None
    except PermissionError:
        raise PathError(str(path), "permission denied") from None
    except UnicodeDecodeError as error:
        raise PathError(
            str(path), f"is not UTF-8 text (byte {error.start})", hint="a spec is a plain text file"
        ) from None
    except OSError as error:
        raise PathError(str(path), error.strerror or str(error)) from None


# --- lark plumbing -------------------------------------------------------------------------


def _normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


def _check_size(text: str) -> None:
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is longer than {MAX_SPEC_BYTES:,} characters", Span(1, 1))
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) > MAX_LINE_LENGTH:
            raise SpecError(
                f"line is {len(line):,} characters long (at most {MAX_LINE_LENGTH} are allowed)",
                Span(number, MAX_LINE_LENGTH + 1),
            )
    for index, char in enumerate(text):
        if char == "\0":
            line = text.count("\n", 0, index) + 1
            column = index - (text.rfind("\n", 0, index) + 1) + 1
            raise SpecError("the spec contains a NUL byte", Span(line, column), hint="is this a binary file?")


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

    return Lark_StandAlone(postlex=SpecIndenter(), transformer=_make_transformer())


def _span(token, end=None) -> Span:
    end_column = getattr(end or token, "end_column", None)
    return Span(token.line, token.column, end_column)


def _make_transformer():
    """Turns lark's parse tree into syntax nodes, bottom-up during the LALR parse.

    Used as the parser's `transformer=`: callbacks run at each reduction, so a deep tree never
    recurses. Depths are tracked on the side to refuse absurd nesting with a message.
    """
    from archspec._lark_parser import Token, Transformer

    class ToSyntax(Transformer):
        def __init__(self) -> None:
            super().__init__()
            self._depth: dict[int, int] = {}

        # depth bookkeeping: nodes are fresh objects, so id() is unique while the parse runs
        def _nest(self, node, *children, limit: int, what: str):
            depth = 1 + max((self._depth.get(id(child), 0) for child in children), default=0)
            if depth > limit:
                raise SpecError(f"{what} nested more than {limit} levels deep", node.span)
            self._depth[id(node)] = depth
            return node

        # expressions
        def int(self, children):
            (token,) = children
            if len(token) > MAX_NUMBER_DIGITS:
                raise SpecError(
                    f"number `{token[:20]}...` has {len(token)} digits (at most {MAX_NUMBER_DIGITS})",
                    _span(token),
                )
            return Num(int(token), _span(token))

        def float(self, children):
            (token,) = children
            if len(token) > 2 * MAX_NUMBER_DIGITS:
                raise SpecError(f"number `{token[:20]}...` is too long", _span(token))
            value = float(token)
            if value != value or value in (float("inf"), float("-inf")) or abs(value) > 1e12:
                raise SpecError(f"number `{token}` is out of range", _span(token))
            return Num(value, _span(token))

        def dims(self, children):
            (token,) = children
            parts = token.split("x")
            if any(len(part) > MAX_NUMBER_DIGITS for part in parts):
                raise SpecError(f"size `{token[:30]}` has a number that is too long", _span(token))
            return Dims(tuple(int(part) for part in parts), _span(token))

        def ref(self, children):
            (token,) = children
            return Ref(str(token), _span(token))

        def _binop(op):
            def method(self, children):
                left, right = children
                span = Span(left.span.line, left.span.column, right.span.end_column)
                node = BinOp(op, left, right, span)
                return self._nest(node, left, right, limit=MAX_EXPR_DEPTH, what="expression")

            return method

        add = _binop("+")
        sub = _binop("-")
        mul = _binop("*")
        truediv = _binop("/")
        floordiv = _binop("//")
        mod = _binop("%")

        def neg(self, children):
            (operand,) = children
            node = Neg(operand, operand.span)
            return self._nest(node, operand, limit=MAX_EXPR_DEPTH, what="expression")

        def call(self, children):
            name, *args = children
            node = Call(str(name), tuple(args), _span(name))
            return self._nest(node, *args, limit=MAX_EXPR_DEPTH, what="expression")

        # statements
        def kwarg(self, children):
            name, value = children
            return KwArg(str(name), value, _span(name))

        def repeat_suffix(self, children):
            (token,) = children
            return token

        def _items(self, items):
            args, kwargs, repeat, repeat_span = [], [], None, None
            for item in items:
                if isinstance(item, KwArg):
                    kwargs.append(item)
                elif isinstance(item, Token) and item.type == "REPEAT":
                    if repeat is not None:
                        raise SpecError("a line can only have one `xN` repeat", _span(item))
                    digits = item[1:]
                    if len(digits) > MAX_NUMBER_DIGITS:
                        raise SpecError(f"repeat count `{item[:20]}...` is too long", _span(item))
                    repeat, repeat_span = int(digits), _span(item)
                else:
                    if repeat is not None:
                        raise SpecError("the `xN` repeat must come last on the line", repeat_span)
                    args.append(item)
            return tuple(args), tuple(kwargs), repeat, repeat_span

        def line_stmt(self, children):
            name, *items = children
            args, kwargs, repeat, repeat_span = self._items(items)
            return Line(str(name), args, kwargs, repeat, _span(name), repeat_span)

        def suite(self, children):
            return tuple(children)

        def block_stmt(self, children):
            name, *items, body = children
            args, kwargs, repeat, repeat_span = self._items(items)
            if repeat is not None:
                raise SpecError(
                    "a block header cannot take `xN`", repeat_span, hint=f"use `repeat {repeat}:` around the block"
                )
            node = Block(str(name), args, kwargs, body, _span(name))
            return self._nest(node, *body, limit=MAX_BLOCK_DEPTH, what="blocks")

        def param(self, children):
            name, *default = children
            return Param(str(name), default[0] if default else None, _span(name))

        def def_stmt(self, children):
            name, *rest = children
            params = tuple(child for child in rest if isinstance(child, Param))
            body = rest[-1]
            node = Def(str(name), params, body, _span(name))
            return self._nest(node, *body, limit=MAX_BLOCK_DEPTH, what="blocks")

        def start(self, children):
            defs = tuple(child for child in children if isinstance(child, Def))
            body = tuple(child for child in children if not isinstance(child, Def))
            self._depth.clear()
            return Module(defs, body)

    return ToSyntax()


# --- error translation ---------------------------------------------------------------------

_TOKEN_WORDS = {
    "_NL": "end of line",
    "_INDENT": "an indented block",
    "_DEDENT": "end of block",
    "NAME": "a name",
    "INT": "a number",
    "FLOAT": "a number",
    "DIMS": "a size like 3x3",
    "REPEAT": "`xN`",
    "COLON": "`:`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "$END": "end of file",
}


def _describe(token_type: str) -> str:
    if token_type in _TOKEN_WORDS:
        return _TOKEN_WORDS[token_type]
    try:
        pattern = _parser().get_terminal(token_type).pattern.value
        return f"`{pattern}`"
    except Exception:
        return token_type.lower()


def _translate(error: Exception, text: str) -> SpecError:
    from archspec._lark_parser import DedentError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    lines = text.split("\n") or [""]
    if isinstance(error, DedentError):
        line = _dedent_line(text)
        return SpecError(
            "unindent does not match any outer indentation level",
            Span(line, 1),
            hint="indent lines of one block by the same amount",
        )
    if isinstance(error, UnexpectedCharacters):
        line, column = error.line, error.column
        char = _char_at(lines, line, column)
        shown = char if char.isprintable() else repr(char)[1:-1]
        return SpecError(f"unexpected character `{shown}`", Span(line, column), hint=_char_hint(char))
    if isinstance(error, UnexpectedToken):
        token = error.token
        line = getattr(token, "line", None) or len(lines)
        column = getattr(token, "column", None) or 1
        expected = sorted({_describe(t) for t in error.expected if not t.startswith("__")})
        kind = token.type
        if kind == "_INDENT":
            indented = _indent_line(text, token)
            previous = _code(lines[indented - 2]).strip() if indented >= 2 else ""
            hint = "only the lines inside a block (`add:`, `branch:`, `repeat N:`, `def ...:`) are indented"
            if previous.split(" ")[0].split("(")[0] in (*BLOCK_HEADERS, "def", "concat"):
                hint = f"is a `:` missing at the end of line {indented - 1}?"
            return SpecError("unexpected indentation", Span(indented, 1), hint=hint)
        header = _unopened_block(text, line)
        if "_INDENT" in error.expected or header:
            return SpecError(
                "expected an indented block after this line",
                Span(header or line, 1),
                hint="indent the lines that belong to the block",
            )
        if kind == "_NL" and "COLON" in error.expected:
            return SpecError("expected `:` at the end of the line", Span(line, column))
        if kind == "$END":
            unclosed = "RPAR" in error.expected
            hint = "a `(` is not closed" if unclosed else _expected_hint(expected)
            return SpecError("unexpected end of file", _end_of_text(lines), hint=hint)
        if kind == "COMMA":
            return SpecError(
                "unexpected `,`",
                Span(line, column),
                hint="arguments on a layer line are separated by spaces: `conv 64 3 stride=2`",
            )
        shown = _token_text(token)
        return SpecError(
            f"unexpected {shown}",
            Span(line, column, column + max(1, len(str(token).strip()))),
            hint=_expected_hint(expected),
        )
    if isinstance(error, UnexpectedEOF):
        return SpecError("unexpected end of file", _end_of_text(lines))
    raise error


def _char_at(lines: list[str], line: int, column: int) -> str:
    if 1 <= line <= len(lines) and 1 <= column <= len(lines[line - 1]):
        return lines[line - 1][column - 1]
    return "?"


def _token_text(token) -> str:
    if token.type == "_NL":
        return "end of line"
    if token.type == "_DEDENT":
        return "end of block"
    return f"`{str(token).strip()}`"


def _expected_hint(expected: list[str]) -> str | None:
    if not expected:
        return None
    if len(expected) > 6:
        return None
    return "expected " + ", ".join(expected[:-1]) + (" or " if len(expected) > 1 else "") + expected[-1]


def _char_hint(char: str) -> str | None:
    if char in "[]{}":
        return "sizes are written like 3x3 or 224x224x3"
    if char == '"' or char == "'":
        return "words need no quotes: `padding=same`"
    if char == "\t":
        return None
    return None


def _indent_line(text: str, token) -> int:
    # The indent token carries the position of the newline before the indented line.
    line = getattr(token, "line", 1) or 1
    lines = text.split("\n")
    for number in range(line, len(lines) + 1):
        stripped = lines[number - 1].strip()
        if stripped and not stripped.startswith("#") and lines[number - 1][:1] in (" ", "\t"):
            return number
    return line


def _code(raw: str) -> str:
    return raw.split("#", 1)[0].rstrip()


def _unopened_block(text: str, line: int) -> int | None:
    """The header line (ending in `:`) just before `line` when `line` is not indented under it."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return None
    for number in range(line - 1, 0, -1):
        code = _code(lines[number - 1])
        if not code.strip():
            continue
        if not code.endswith(":"):
            return None
        indent = len(code.expandtabs(8)) - len(code.expandtabs(8).lstrip())
        current = _code(lines[line - 1]).expandtabs(8)
        return number if len(current) - len(current.lstrip()) <= indent else None
    return None


def _end_of_text(lines: list[str]) -> Span:
    for number in range(len(lines), 0, -1):
        code = _code(lines[number - 1])
        if code.strip():
            return Span(number, len(code) + 1)
    return Span(1, 1)


def _dedent_line(text: str) -> int:
    """Find the first line whose indentation matches no enclosing level."""
    stack = [0]
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        width = len(raw.expandtabs(8)) - len(raw.expandtabs(8).lstrip())
        if width > stack[-1]:
            stack.append(width)
        else:
            while width < stack[-1]:
                stack.pop()
            if width != stack[-1]:
                return number
    return 1
