"""The spec language's own words: block and merge headers, the values a bare name can stand for, and
the names no macro may take. Parse, expand and the lint rules read them here; which layers may
trail another one is a trait of the layer kind (`LayerKind.trailing`)."""

from __future__ import annotations

from dataclasses import dataclass

MERGES = ("add", "concat", "multiply")  # blocks whose branches are merged into one tensor
BRANCH = "branch"  # a sequence of lines that is one branch of a merge
REPEAT = "repeat"  # `repeat N:`
BLOCKS = (*MERGES, BRANCH, REPEAT)  # every word that opens an indented block
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
