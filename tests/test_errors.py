"""The catalogue of user errors: each row is a bad spec, where the error must point, and what it
must say. One test loops over the table; the CLI tests check exit code 2 and no traceback."""

from __future__ import annotations

import pytest

from archspec.compile import compile_spec
from archspec.errors import SpecError
from tests.conftest import spec

BOTTLENECK = """\
def bottleneck(f, stride=1):
    add:
        branch:
            conv f 1 stride=stride
            maxpool 9
        branch:
            conv 4*f 1 stride=stride
input 8x8x16
conv 16 3 padding=same
bottleneck 8 stride=2
"""

# (name, spec text, line, column, message fragment, hint fragment or None)
CATALOGUE = [
    # --- syntax ---
    ("unexpected indentation", "input 8x8x1\n  conv 4 3\n", 2, 1, "unexpected indentation", "only the lines inside"),
    (
        "missing colon",
        "input 8x8x1\nadd\n    conv 4 3\n    identity\n",
        3,
        1,
        "unexpected indentation",
        "`:` missing at the end of line 2",
    ),
    ("block without body", "input 8x8x1\nadd:\nconv 4 3\n", 2, 1, "expected an indented block", "indent"),
    ("bad character", "input 8x8x1\nconv 4 $\n", 2, 8, "unexpected character `$`", None),
    ("brackets", "input 8x8x1\nconv 4 [3,3]\n", 2, 8, "unexpected character `[`", "3x3"),
    ("commas between arguments", "input 8x8x1\nconv 4, 3\n", 2, 7, "unexpected `,`", "separated by spaces"),
    ("dedent mismatch", "input 8x8x1\nadd:\n    conv 1 1\n  conv 2 2\n", 4, 1, "unindent does not match", None),
    ("unclosed paren", "input 8x8x1\nconv 4 (3\n", 2, 10, "unexpected end of file", "`(` is not closed"),
    ("missing kwarg value", "input 8x8x1\nconv 4 3 stride=\n", 2, 17, "unexpected end of line", None),
    ("huge number", "input 8x8x1\nconv " + "9" * 300 + " 3\n", 2, 6, "has 300 digits", None),
    ("deep expression", "input 8x8x1\ndense 1" + "+1" * 60 + "\n", 2, 7, "nested more than", None),
    ("long line", "input 8x8x1\ndense 1 " + " " * 2000 + "\n", 2, 1001, "characters long", None),
    ("NUL byte", "input 8x8x1\nconv 4\x00 3\n", 2, 7, "NUL byte", None),
    ("two repeats", "input 8x8x1\nconv 4 3 x2 x3\n", 2, 13, "only have one `xN`", None),
    ("repeat on block", "input 8x8x1\nadd x2:\n    identity\n    identity\n", 2, 5, "cannot take `xN`", "repeat 2:"),
    # --- names and arguments ---
    ("unknown layer", "input 8x8x1\nmaxpol 2\n", 2, 1, "unknown layer `maxpol`", "did you mean `maxpool`?"),
    ("unknown layer, block hint", "input 8x8x1\nconcatt 2\n", 2, 1, "unknown layer `concatt`", "`concat:`"),
    ("missing argument", "input 8x8x1\nconv 32\n", 2, 1, "`conv` needs `kernel`", "usage: conv FILTERS KERNEL"),
    ("zero filters", "input 8x8x1\nconv 0 3\n", 2, 6, "`filters` (=0) must be at least 1", None),
    ("fractional filters", "input 8x8x1\nconv 2.5 3\n", 2, 6, "`filters` must be a whole number", None),
    ("bad padding word", "input 8x8x1\nconv 4 3 padding=full\n", 2, 18, "`padding` must be valid, same", None),
    ("dropout rate", "input 8x8x1\ndropout 1.5\n", 2, 9, "`rate` (=1.5) must be at least 0 and below 1", None),
    (
        "unknown keyword",
        "input 8x8x1\nconv 4 3 strid=2\n",
        2,
        10,
        "`conv` has no argument `strid`",
        "did you mean `stride=`?",
    ),
    ("too many positionals", "input 8x8x1\nconv 4 3 3\n", 2, 10, "takes 2 positional arguments", None),
    ("given twice", "input 8x8x1\nconv 4 3 filters=8\n", 2, 10, "`filters` is given twice", None),
    (
        "argument after trailing word",
        "input 8x8x1\nconv 4 3 relu 2\n",
        2,
        15,
        "unexpected argument `2` after `relu`",
        None,
    ),
    ("trailing word on a pool", "input 8x8x1\nmaxpool 2 relu\n", 2, 11, "cannot take a trailing `relu`", None),
    ("bad input size", "input 8x8\n", 1, 7, "`shape` must be HxWxC", None),
    ("no input", "conv 4 3\n", 1, 1, "the first layer must be `input HxWxC`", "--input"),
    ("input twice", "input 8x8x1\ninput 8x8x1\n", 2, 1, "`input` must be the first layer", None),
    ("empty spec", "# nothing\n", 1, 1, "the spec has no layers", None),
    ("block used as a line", "input 8x8x1\nadd\n", 2, 1, "`add` opens a block", "write `add:`"),
    ("layer used as a block", "input 8x8x1\nconv:\n    identity\n", 2, 1, "`conv` is a layer, not a block", None),
    (
        "unknown block",
        "input 8x8x1\nadd2:\n    identity\n    identity\n",
        2,
        1,
        "unknown block `add2:`",
        "did you mean `add:`?",
    ),
    ("branch outside a merge", "input 8x8x1\nbranch:\n    conv 4 3\n", 2, 1, "`branch:` belongs directly inside", None),
    ("one-branch merge", "input 8x8x1\nadd:\n    conv 1 1\n", 2, 1, "needs at least two branches", "identity"),
    ("repeat too many", "input 8x8x1\nrelu x10001\n", 2, 6, "repeat count must be between 0 and 10,000", None),
    ("repeat too large", "input 8x8x1\nrepeat 20000:\n    relu\n", 2, 8, "from 0 to 10,000", None),
    (
        "runaway expansion",
        "input 8x8x1\nrepeat 1000:\n    repeat 1000:\n        relu\n",
        4,
        9,
        "expands to more than 30,000 layers",
        None,
    ),
    # --- macros and expressions ---
    (
        "undefined name",
        "def b(f):\n    conv 4*g 1\ninput 8x8x1\nb 2\n",
        2,
        12,
        "`g` is not defined",
        "names defined here are `f`",
    ),
    (
        "misspelt name",
        "def b(filters):\n    conv 4*filter 1\ninput 8x8x1\nb 2\n",
        2,
        12,
        "`filter` is not defined",
        "did you mean `filters`?",
    ),
    ("division by zero", "def b(f):\n    conv f//0 1\ninput 8x8x1\nb 2\n", 2, 13, "division by zero", None),
    (
        "unknown function",
        "def b(f):\n    conv maxx(1, f) 1\ninput 8x8x1\nb 2\n",
        2,
        10,
        "unknown function `maxx`",
        "did you mean `max`?",
    ),
    ("recursion", "def b(f):\n    b f\ninput 8x8x1\nb 2\n", 2, 5, "`b` calls itself", "repeat"),
    ("macro missing argument", "def b(f, g):\n    conv f g\ninput 8x8x1\nb 2\n", 4, 1, "`b` needs `g`", "def b(f, g)"),
    (
        "macro unknown keyword",
        "def b(f, stride=1):\n    conv f 1\ninput 8x8x1\nb 2 strides=2\n",
        4,
        5,
        "`b` has no parameter `strides`",
        "did you mean `stride=`?",
    ),
    ("macro too many arguments", "def b(f):\n    conv f 1\ninput 8x8x1\nb 2 3\n", 4, 5, "`b` takes 1 arguments", None),
    (
        "macro defined twice",
        "def b(f):\n    relu\ndef b(g):\n    relu\ninput 8x8x1\n",
        3,
        5,
        "`b` is defined twice",
        None,
    ),
    ("macro named like a layer", "def conv(f):\n    relu\ninput 8x8x1\n", 1, 5, "`conv` is a built-in name", None),
    (
        "parameter hides a word",
        "def b(relu):\n    conv relu 1\ninput 8x8x1\n",
        1,
        7,
        "would hide the word `relu`",
        None,
    ),
    (
        "def inside a block",
        "input 8x8x1\nrepeat 2:\n    def b(f):\n        relu\n",
        3,
        9,
        "only allowed at the top",
        None,
    ),
    # --- shapes ---
    (
        "pool larger than input",
        "input 8x8x1\nconv 4 3 stride=3\nmaxpool 3\n",
        3,
        1,
        "maxpool 3 needs at least 3x3 input, got 2x2",
        "padding=same",
    ),
    ("kernel larger than input", "input 4x4x1\nconv 8 5\n", 2, 1, "needs at least 5x5 input, got 4x4", None),
    ("dilated kernel larger than input", "input 6x6x1\nconv 8 3 dilation=3\n", 2, 1, "needs at least 7x7 input", None),
    (
        "conv after flatten",
        "input 8x8x1\nflatten\nconv 4 3\n",
        3,
        1,
        "`conv` needs an HxWxC input, got a vector of 64",
        "flatten",
    ),
    (
        "groups mismatch",
        "input 8x8x6\nconv 8 3 groups=4\n",
        2,
        1,
        "input channels (=6) must be divisible by `groups` (=4)",
        None,
    ),
    (
        "add shape mismatch",
        "input 56x56x64\nadd:\n    conv 256 1\n    conv 256 1 stride=2\n",
        2,
        1,
        "`add` needs branches of one shape, got 56x56x256 (line 3) and 28x28x256 (line 4)",
        None,
    ),
    (
        "concat spatial mismatch",
        "input 8x8x4\nconcat:\n    conv 4 3\n    conv 4 1\n",
        2,
        1,
        "`concat` needs branches with the same spatial size",
        "padding=same",
    ),
    (
        "multiply no broadcast",
        "input 8x8x4\nmultiply:\n    conv 8 1\n    identity\n",
        2,
        1,
        "`multiply` needs shapes that broadcast",
        None,
    ),
    ("huge input", "input 100000x100000x3\n", 1, 7, "larger than 65536x65536", None),
    ("too many parameters", "input 1000x1000x64\nflatten\ndense 1000000\n", 3, 1, "parameters, more than 1e+10", "gap"),
    (
        "empty output",
        "input 8x8x1\nconv 4 3 padding=0 stride=1\nmaxpool 6\nmaxpool 2\n",
        4,
        1,
        "maxpool 2 needs at least 2x2 input, got 1x1",
        None,
    ),
    # --- inside a macro: points into the def, names the call site ---
    ("error inside a macro", BOTTLENECK, 5, 13, "maxpool 9 needs at least 9x9 input, got 4x4", None),
]


@pytest.mark.parametrize("name, text, line, column, message, hint", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_error_catalogue(name, text, line, column, message, hint):
    with pytest.raises(SpecError) as caught:
        compile_spec(text, "spec.arch")
    error = caught.value
    assert message in error.message
    assert (error.line, error.column) == (line, column)
    if hint is not None:
        assert error.hint is not None and hint in error.hint
    rendered = error.render()
    assert rendered.startswith(f"spec.arch:{line}:{column}: error: ")
    assert "^" in rendered  # the caret under the source line


def test_error_inside_macro_names_the_call_site():
    with pytest.raises(SpecError) as caught:
        compile_spec(BOTTLENECK, "spec.arch")
    rendered = caught.value.render()
    assert "note: in expansion of `bottleneck 8 stride=2` at line 10" in rendered
    assert " 5 |             maxpool 9" in rendered
    assert "10 | bottleneck 8 stride=2" in rendered


def test_nested_macro_errors_list_every_call_site():
    text = spec("""
        def inner(f):
            conv f 9
        def outer(f):
            inner 2*f
        input 8x8x1
        outer 4
    """)
    with pytest.raises(SpecError) as caught:
        compile_spec(text, "spec.arch")
    rendered = caught.value.render()
    assert rendered.index("in expansion of `inner 8` at line 4") < rendered.index("in expansion of `outer 4` at line 6")


def test_caret_spans_the_offending_word():
    with pytest.raises(SpecError) as caught:
        compile_spec("input 8x8x1\nmaxpol 2\n", "spec.arch")
    assert caught.value.render().splitlines()[2] == "   | ^^^^^^"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_excerpt_quotes_the_right_line_whatever_the_line_endings(newline):
    text = newline.join(["input 8x8x1", "# a comment", "maxpol 2", ""])
    with pytest.raises(SpecError) as caught:
        compile_spec(text, "spec.arch")
    assert caught.value.render().splitlines()[:3] == [
        "spec.arch:3:1: error: unknown layer `maxpol`",
        " 3 | maxpol 2",
        "   | ^^^^^^",
    ]


def test_errors_and_lint_cut_a_long_line_the_same_way(cli, tmp_path):
    # the same window around the caret in a compiler error and in a lint finding
    path = tmp_path / "long.arch"
    gap = " " * 30  # the caret lands at column 38: past a quarter of the window, before half of it
    path.write_text(f"input 8x8x1\ndense 1{gap}softmax   # {'x' * 80}\n")
    finding = cli("lint", str(path), "--select", "CA103").out.splitlines()
    path.write_text(f"input 8x8x1\ndense 1{gap}softmaz   # {'x' * 80}\n")
    error = cli("summarize", str(path)).err.splitlines()
    shown = [line.split("| ", 1)[1] for line in finding if line.startswith(("2 | ", "  |  "))]
    quoted = [line.split("| ", 1)[1] for line in error if line.startswith((" 2 | ", "   | "))]
    assert shown[0].replace("softmax", "softmaz") == quoted[0]
    assert shown[0].startswith("...") and shown[0].endswith("...")
    assert shown[1] == quoted[1] == " " * (shown[0].index("softmax")) + "^" * 7


# --- through the command line: exit code 2, a diagnostic on stderr, never a traceback ---------


def test_cli_spec_error_exit_code_and_format(cli, tmp_path):
    bad = tmp_path / "bad.arch"
    bad.write_text("input 8x8x1\nconv 4 3 stride=3\nmaxpool 3\n")
    result = cli("summarize", str(bad))
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(f"{bad}:3:1: error: maxpool 3 needs at least 3x3 input, got 2x2")
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.arch", "no such file"),
        (lambda p: (p / "folder.arch").mkdir() or p / "folder.arch", "is a folder"),
        (lambda p: (p / "bin.arch").write_bytes(b"\xff\xfe\x00binary") and p / "bin.arch", "is not UTF-8 text"),
    ],
    ids=["missing", "folder", "binary"],
)
def test_cli_unreadable_files(cli, tmp_path, make, message):
    target = make(tmp_path)
    result = cli("summarize", str(target))
    assert result.code == 2
    assert result.err.startswith(f"{target}: error: {message}")
    assert "Traceback" not in result.err


def test_cli_unknown_template_suggests_the_closest(cli):
    result = cli("summarize", "gap-haed")
    assert result.code == 2
    assert "did you mean the template `gap-head`?" in result.err


@pytest.mark.parametrize("value", ["32x32", "axbxc", "0x32x1", "99999999x1x1"])
def test_cli_bad_input_option(cli, value):
    result = cli("summarize", "gap-head", "--input", value)
    assert result.code == 2
    assert "error:" in result.err and "Traceback" not in result.err
