"""The spec language's own words: block and merge headers, the values a bare name can stand for, and
the names no macro may take. Parse, expand and the lint rules read them here; which layers may
trail another one is a trait of the layer kind (`LayerKind.trailing`)."""

from __future__ import annotations

from dataclasses import dataclass

MERGES = ("add", "concat", "multiply")  # blocks whose branches are merged into one tensor
BRANCH = "branch"  # a sequence of lines that is one branch of a merge
REPEAT = "repeat"  # `repeat N:`
IF, ELIF, ELSE = "if", "elif", "else"  # `if COND:` and the `elif COND:` / `else:` blocks after it
CONDITIONALS = (IF, ELIF, ELSE)
BLOCKS = (*MERGES, BRANCH, REPEAT, *CONDITIONALS)  # every word that opens an indented block
# Words of conditions; no macro parameter may take them (`not f` must stay a negation).
LOGIC_WORDS = ("and", "or", "not", IF, ELSE)
# The current stream's sizes, readable in any expression (`conv channels//2 1`); a macro parameter
# of the same name hides them.
STREAM_NAMES = ("channels", "height", "width")
DEF = "def"
IDENTITY = "identity"  # a merge branch that passes its input through
INPUT = "input"
VALUE_WORDS = ("same", "valid", "true", "false")  # words that are values of layer arguments


@dataclass(frozen=True)
class Word:
    """An unquoted word used as a value: `same`, `relu`, `false`."""

    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Interval:
    """The value of a range `A:B` (`channels 0:32`): from `start` up to, not including, `stop`."""

    start: int | float
    stop: int | float

    def __str__(self) -> str:
        return f"{self.start:g}:{self.stop:g}"


@dataclass(frozen=True)
class LayerCall(Word):
    """A layer with its arguments, as a value: `bn(scale=false)` trailing a conv, or a macro argument
    `act=leaky_relu(0.2)`. The arguments are evaluated where the call is written."""

    args: tuple = ()  # (value, span) of each positional argument
    kwargs: tuple = ()  # (KwArg, value) of each keyword argument

    def __str__(self) -> str:
        from archspec.text import show

        parts = [show(value) for value, _ in self.args] + [f"{kw.name}={show(value)}" for kw, value in self.kwargs]
        return f"{self.text}({', '.join(parts)})"
