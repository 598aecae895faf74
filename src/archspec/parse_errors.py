"""Lark's errors → `SpecError`s that read like a compiler's, at the line and column of the mistake.

Lark reports what token it expected; these rules turn the common cases (a missing `:`, an
unexpected indent, an unclosed `(`, a stray comma) into a message and a hint a user can act on.
"""

from __future__ import annotations

from archspec.errors import Span, SpecError
from archspec.words import BLOCKS, DEF

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


def _describe(token_type: str, parser) -> str:
    if token_type in _TOKEN_WORDS:
        return _TOKEN_WORDS[token_type]
    try:
        pattern = parser.get_terminal(token_type).pattern.value
        return f"`{pattern}`"
    except Exception:
        return token_type.lower()


def translate(error: Exception, text: str, parser) -> SpecError:
    """The `SpecError` for an exception lark (or its Indenter) raised while parsing `text`."""
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
        expected = sorted({_describe(t, parser) for t in error.expected if not t.startswith("__")})
        kind = token.type
        if kind == "_INDENT":
            return _unexpected_indent(lines, token)
        if _is_def_without_parentheses(lines, line, error.expected):
            return _def_hint(lines, line, column)
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
        if kind == "COMPARE" and str(token) == ">" and column > 1 and _char_at(lines, line, column - 1) == "-":
            return SpecError(  # `add: -> s`: the arrow read as a minus and a comparison
                "unexpected `->`",
                Span(line, column - 1, column + 1),
                hint="`->` names an output (`conv 64 3 -> e1`); a block names it before its `:` (`add -> s:`)",
            )
        if kind == "COMPARE":
            return SpecError(
                f"unexpected `{token}`",
                Span(line, column),
                hint="comparisons are not chained: write `a < b and b < c`, with parentheses where needed",
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
    if char == "@":
        return "a tensor is read as `@name`, without a space"
    if char == ">":
        return "`->` names an output (`conv 64 3 -> e1`); a block names it before its `:` (`add -> s:`)"
    return None


def _unexpected_indent(lines: list[str], token) -> SpecError:
    # The indent token spans the line break(s) before the indented line: it ends on that line.
    indented = getattr(token, "end_line", None) or getattr(token, "line", 1) or 1
    previous = next((n for n in range(indented - 1, 0, -1) if _code(lines[n - 1]).strip()), None)
    hint = "only the lines inside a block (`add:`, `branch:`, `repeat N:`, `def ...:`) are indented"
    if previous is not None:
        code = _code(lines[previous - 1]).strip()
        if code.endswith(":"):
            hint = f"indent it as much as the line before it, the first line of the block of line {previous}"
        elif code.split(" ")[0].split("(")[0] in (*BLOCKS, DEF):
            hint = f"is a `:` missing at the end of line {previous}?"
    return SpecError("unexpected indentation", Span(indented, 1), hint=hint)


def _is_def_without_parentheses(lines: list[str], line: int, expected) -> bool:
    """`def f` or `def f:`: the parser wanted the `(` of the parameter list."""
    code = _code(lines[line - 1]).strip() if 1 <= line <= len(lines) else ""
    return "LPAR" in expected and code.startswith(DEF + " ") and "(" not in code


def _def_hint(lines: list[str], line: int, column: int) -> SpecError:
    name = _code(lines[line - 1]).strip().removeprefix(DEF).strip().rstrip(":").strip() or "name"
    return SpecError(
        f"`def {name}` needs its parameters in parentheses",
        Span(line, column),
        hint=f"write `def {name}():` for a macro without parameters, or `def {name}(filters, stride=1):`",
    )


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
