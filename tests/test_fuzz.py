"""Fuzzing the front end: random text and random mutations of valid specs may fail, but only ever
with the tool's own `SpecError` (which renders as a located diagnostic), never anything else."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archspec.compile import compile_spec
from archspec.errors import SpecError
from archspec.templates import names, path

SEEDS = [path(name).read_text() for name in names()] + [
    "def b(f, stride=1):\n    add:\n        branch:\n            conv f 1 stride=stride bn relu\n"
    "            conv f 3 padding=same\n        conv f 1 stride=stride\n    relu\n"
    "input 32x32x8\nb 8\nb 16 stride=2\nrepeat 2:\n    b 16\ngap\ndense 10 softmax\n",
    "input 16x16x8\nlayernorm epsilon=1e-6\ngroupnorm 4\nconcat:\n    channels 0:4\n    branch:\n"
    "        channels 4:8\n        conv 4 1 relu\nshuffle 2\nconvtranspose 4 2 stride=2\nupsample 2\ncrop 1\n"
    "add:\n    identity\n    branch:\n        layerscale\n        droppath 0.1\ngap\ndense 2\n",
    "input 16x16x3\nconcat:\n    conv 4 1\n    branch:\n        maxpool 3 stride=1 padding=same\n"
    "        conv 4 1\nmultiply:\n    identity\n    branch:\n        gap keepdims=true\n        conv 8 1 sigmoid\n"
    "flatten\ndense 10\n",
    "def block(f, stride=1, act=relu):\n    add:\n        branch:\n            conv f 3 stride=stride padding=same"
    " bn(scale=false) act\n            act\n        if stride != 1 or channels != f:\n            conv f 1"
    " stride=stride bn\n        elif not (f > 64) and height > 2:\n            identity\n        else:\n"
    "            identity\n    repeat 0:\n        relu\ninput 16x16x8\nblock 8\nblock 16 stride=2"
    " act=leaky_relu(0.2)\nconv channels//2 1 x0\nconv (8 if width > 4 else 4) 1\ngap\ndense channels\n",
    # named tensors: a two-input cell macro, a long skip, reuse
    "def cell(f, prev):\n    conv f 1 -> x\n    concat:\n        add:\n            @x\n            branch:\n"
    "                @prev\n                conv f 1\n        add -> y:\n            @x\n            @x\n"
    "        @y\ninput 16x16x3 -> img\nconv 4 3 padding=same -> c0\nconv 4 1 -> c1\ncell 4 prev=@c0 -> c2\n"
    "cell 4 @c1\nmaxpool 2\nconvtranspose 4 2 stride=2\nconcat:\n    identity\n    @img\ngap\ndense 2\n",
]

TOKENS = [
    "conv",
    "dense",
    "maxpool",
    "add:",
    "concat:",
    "branch:",
    "repeat",
    "def",
    "x2",
    "x0",
    "x99999",
    "(",
    ")",
    ",",
    "=",
    ":",
    "*",
    "//",
    "/",
    "-",
    "+",
    "%",
    "0",
    "1",
    "3x3",
    "224x224x3",
    "999999999999",
    "-1",
    "0.5",
    "1e308",
    "1e-308",
    "same",
    "valid",
    "relu",
    "bn",
    "identity",
    "input",
    "\n",
    "\n    ",
    "\t",
    "    ",
    "#",
    "max(",
    "make_divisible(",
    "round(",
    "min(",
    "pow(",
    "log(",
    "sqrt(",
    "channels",
    "0:4",
    "shuffle",
    "crop",
    "upsample",
    "convtranspose",
    "layernorm",
    "groupnorm",
    "droppath",
    "repeat 10000:",
    "\ufeff",
    "stride=",
    "padding=",
    "groups=",
    "bias=",
    "\\\n",
    "\r",
    "\x00",
    "é",
    "🙂",
    "if",
    "elif",
    "else:",
    "==",
    "!=",
    "<=",
    ">",
    "and",
    "or",
    "not",
    "channels",
    "height",
    "width",
    "bn(scale=false)",
    "leaky_relu(",
    "repeat 0:",
    "->",
    "-> a",
    "@a",
    "@",
    "prev=@a",
]

# CNN_ARCH_FUZZ_EXAMPLES=20000 for a deep local run; CI keeps the default.
FUZZ = settings(
    max_examples=int(os.environ.get("CNN_ARCH_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def compiles_or_spec_error(text: str) -> None:
    try:
        compile_spec(text, "fuzz.arch")
    except SpecError as error:
        rendered = error.render()
        assert rendered.startswith("fuzz.arch")
        assert error.message


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text):
    compiles_or_spec_error(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_random_token_soup(text):
    compiles_or_spec_error("input 32x32x3\n" + text)


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "duplicate-line", "drop-line", "indent"]))
        if action == "delete":
            end = draw(st.integers(position, min(len(text), position + 8)))
            text = text[:position] + text[end:]
        elif action == "insert":
            text = text[:position] + draw(st.sampled_from(TOKENS)) + text[position:]
        elif action == "replace":
            text = text[:position] + draw(st.sampled_from(TOKENS)) + text[position + 1 :]
        else:
            lines = text.split("\n")
            index = draw(st.integers(0, len(lines) - 1))
            if action == "duplicate-line":
                lines.insert(index, lines[index])
            elif action == "drop-line":
                del lines[index]
            else:
                lines[index] = draw(st.sampled_from(["  ", "    ", "\t", "        "])) + lines[index]
            text = "\n".join(lines)
    return text


@pytest.mark.slow  # compiles many mutated specs: seconds
@FUZZ
@given(mutated())
def test_mutated_valid_specs(text):
    compiles_or_spec_error(text)


def test_seeds_compile():
    for text in SEEDS:
        compile_spec(text, "seed.arch")
