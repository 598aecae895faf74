"""Named tensors (`-> name`, `@name`): two-input cells, long skips and reuse give the graph Keras builds
from the same drawing (counts and shapes), the Flax model applies every input, the summary lists a row's
named inputs, and every mistake is reported at its line and column."""

from __future__ import annotations

import json

import pytest

from archspec.compile import compile_spec
from archspec.errors import SpecError
from tests.conftest import spec

# A NASNet-style cell: it reads the stream (the previous cell) and `prev` (the one before), and reuses
# an intermediate sum (`y`) in a later branch.
CELL = spec(
    """
    def cell(f, prev):
        conv f 1 -> x
        concat:
            add:
                @x
                branch:
                    @prev
                    conv f 1 padding=same
            add -> y:
                branch:
                    @x
                    sepconv f 3 padding=same
                branch:
                    @prev
                    conv f 1 padding=same
            branch:
                @y
                sepconv f 5 padding=same

    input 32x32x3 -> img
    conv 16 3 padding=same -> c0
    conv 16 3 padding=same -> c1
    cell 16 prev=@c0 -> c2
    cell 16 prev=@c1 -> c3
    cell 24 @c2
    gap
    dense 10 softmax
    """
)

# A small U-Net: the decoder concatenates the encoder's tensors, named where they are made.
UNET = spec(
    """
    input 32x32x1
    conv 8 3 padding=same relu -> e1
    maxpool 2
    conv 16 3 padding=same relu -> e2
    maxpool 2
    conv 32 3 padding=same relu
    convtranspose 16 2 stride=2
    concat:
        identity
        @e2
    conv 16 3 padding=same relu
    convtranspose 8 2 stride=2
    concat:
        identity
        @e1
    conv 2 1 softmax
    """
)

# DenseNet's dense block as drawn: every layer reads the concatenation of all the earlier ones.
DENSE = spec(
    """
    input 16x16x8 -> x0
    conv 4 3 padding=same -> x1
    concat -> d1:
        @x0
        @x1
    conv 4 3 padding=same -> x2
    concat:
        @x0
        @x1
        @x2
    """
)


def keras_cell_model(keras):
    layers = keras.layers

    def cell(stream, prev, f):
        x = layers.Conv2D(f, 1)(stream)
        a = layers.Add()([x, layers.Conv2D(f, 1, padding="same")(prev)])
        y = layers.Add()([layers.SeparableConv2D(f, 3, padding="same")(x), layers.Conv2D(f, 1, padding="same")(prev)])
        z = layers.SeparableConv2D(f, 5, padding="same")(y)
        return layers.Concatenate()([a, y, z])

    image = keras.Input((32, 32, 3))
    c0 = layers.Conv2D(16, 3, padding="same")(image)
    c1 = layers.Conv2D(16, 3, padding="same")(c0)
    c2 = cell(c1, c0, 16)
    c3 = cell(c2, c1, 16)
    c4 = cell(c3, c2, 24)
    out = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(c4))
    return keras.Model(image, out), {"c2": c2, "c3": c3, "c4": c4}


def keras_unet_model(keras):
    layers = keras.layers
    image = keras.Input((32, 32, 1))
    e1 = layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    e2 = layers.Conv2D(16, 3, padding="same", activation="relu")(layers.MaxPooling2D(2)(e1))
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(layers.MaxPooling2D(2)(e2))
    x = layers.Concatenate()([layers.Conv2DTranspose(16, 2, strides=2)(x), e2])
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.Concatenate()([layers.Conv2DTranspose(8, 2, strides=2)(x), e1])
    return keras.Model(image, layers.Conv2D(2, 1, activation="softmax")(x))


# --- the graph equals Keras' ---------------------------------------------------------------

# Keras builds both models on its numpy backend in a subprocess (the same layers and shapes as on JAX,
# whose initializers compile an XLA program per weight shape) and prints their counts and shapes.
_KERAS_SHAPES = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "numpy"
sys.path.insert(0, sys.argv[1])
import keras
from tests.test_named_tensors import keras_cell_model, keras_unet_model
cell, cells = keras_cell_model(keras)
unet = keras_unet_model(keras)
print(json.dumps({
    "cell": [cell.count_params(), {k: list(v.shape[1:]) for k, v in cells.items()}],
    "unet": [unet.count_params(), list(unet.output.shape[1:])],
}))
"""


@pytest.fixture(scope="module")
def keras_built():
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    done = subprocess.run([sys.executable, "-c", _KERAS_SHAPES, str(root)], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow  # a subprocess imports Keras
def test_two_input_cell_counts_and_shapes_equal_keras(keras_built):
    typed = compile_spec(CELL, "cell.arch")
    params, cells = keras_built["cell"]
    assert typed.params == params
    calls = [s for s in typed.graph.scopes if s.kind == "call"]
    last = {
        s.id: max(n.id for n in typed.graph.nodes if s.id in [c.id for c in typed.graph.scope_chain(n.scope)])
        for s in calls
    }
    shapes = [typed.infos[last[s.id]].shape for s in calls]
    assert shapes == [tuple(cells[k]) for k in ("c2", "c3", "c4")]
    assert typed.output_shape == (10,)


@pytest.mark.slow  # a subprocess imports Keras
def test_unet_long_skips_equal_keras(keras_built):
    typed = compile_spec(UNET, "unet.arch")
    params, output = keras_built["unet"]
    assert typed.params == params
    assert typed.output_shape == tuple(output) == (32, 32, 2)
    concats = [n for n in typed.graph.nodes if n.kind == "concat"]
    # each concat joins the upsampled stream and the encoder tensor of its size (lines 4 and 2)
    assert [[typed.graph.nodes[i].line for i in n.inputs] for n in concats] == [[7, 4], [12, 2]]
    assert [typed.infos[n.id].shape for n in concats] == [(16, 16, 32), (32, 32, 16)]


def test_dense_block_reuses_every_earlier_tensor():
    typed = compile_spec(DENSE, "dense.arch")
    last = typed.graph.output
    assert last.kind == "concat" and [typed.graph.nodes[i].line for i in last.inputs] == [1, 2, 6]
    assert typed.output_shape == (16, 16, 16)
    # the first concat (`-> d1`) is named but never read by name: the next line reads it as the stream
    assert typed.infos[2].shape == (16, 16, 12) and typed.graph.nodes[3].inputs == (2,)


def test_receptive_field_is_taken_over_every_path():
    typed = compile_spec(UNET, "unet.arch")
    by_line = {n.line: typed.infos[n.id] for n in typed.graph.nodes}
    concat = next(n for n in typed.graph.nodes if n.kind == "concat")
    # the concat's first input (the deep path) sees more than the skip (@e2, line 4): the deeper wins
    deep, skip = (typed.infos[i].receptive_field for i in concat.inputs)
    assert deep[0] > skip[0]
    assert typed.infos[concat.id].receptive_field == deep
    assert by_line[2].receptive_field == (3, 3)


def test_a_name_read_in_a_repeat_and_carried_through_a_loop():
    # Keras' NASNet loop `x, p = cell(x, p)`: a name read, then given again, each round
    text = spec(
        """
        def mix(f, prev):
            add:
                conv f 1
                branch:
                    @prev
                    conv f 1
        input 8x8x4 -> p
        conv 4 1 -> x
        repeat 3:
            mix 4 prev=@p -> y
            @x -> p
            @y -> x
        """
    )
    typed = compile_spec(text, "loop.arch")
    adds = [n for n in typed.graph.nodes if n.kind == "add"]
    assert len(adds) == 3
    # round 2 reads round 1's input (x, node 1) as prev; round 3 reads round 1's output
    prevs = [typed.graph.nodes[typed.graph.nodes[a.inputs[1]].inputs[0]].id for a in adds]
    assert prevs == [0, 1, adds[0].id]


def test_repeat_names_its_last_round_and_macro_names_are_local():
    text = spec(
        """
        def block(f):
            conv f 3 padding=same -> t
            add:
                @t
                conv f 1
        input 8x8x4
        repeat 2:
            conv 4 1 -> last
        block 4 -> t
        block 4
        add:
            @last
            @t
            identity
        """
    )
    typed = compile_spec(text, "names.arch")
    final = typed.graph.output
    # `@t` at the top level is the first call's output, not the `t` inside either call
    assert [typed.graph.nodes[i].kind for i in final.inputs] == ["conv", "add", "add"]
    assert final.inputs[0] == 2  # the second round of the repeat


# --- errors with line and column -----------------------------------------------------------

ERRORS = [
    ("input 8x8x3\nconv 4 3 -> feat\n@faet\n", 3, 1, "unknown tensor `@faet`", "did you mean `@feat`?"),
    ("input 8x8x3\n@later\nconv 4 3 -> later\n", 2, 1, "`@later` is read before it is defined", "at line 3"),
    ("input 8x8x3\nconv 4 3 -> a\nconv 4 3 -> a\n", 3, 13, "`a` already names the tensor named at line 2", None),
    (
        "input 8x8x3\nconv 4 3 -> a\nconv 4 3 -> b\nadd:\n    @a\n    @b\n",
        4,
        1,
        "got 6x6x4 (@a, named at line 2) and 4x4x4 (@b, named at line 3)",
        None,
    ),
    (
        "input 8x8x3\nconv 4 3 -> a\nconcat:\n    @a\n    branch:\n        @a\n        maxpool 2\n",
        3,
        1,
        "6x6x4 (@a, named at line 2) and 3x3x4 (line 5)",
        None,
    ),
    (
        "def f(c):\n    add:\n        @x\n        identity\ninput 8x8x3\nconv 4 3 -> x\nf 4\n",
        3,
        9,
        "unknown tensor `@x`",
        "call it with `x=@x`",
    ),
    ("input 8x8x3 -> img\nconv 4 3 -> a\nconv 4 3\n@a\n", 3, 1, "the output of `conv 4 3x3` is never used", None),
    ("input 8x8x3 -> img\nconv 4 @img\n", 2, 8, "a tensor (`@img`) can only be the argument of a macro", None),
    (
        "def f(p):\n    conv p 3\ninput 8x8x3 -> img\nf @img\n",
        2,
        10,
        "`filters` must be a whole number, got `@img`",
        None,
    ),
    ("input 8x8x3\n@nothing\n", 2, 1, "unknown tensor `@nothing`", "a line ending in `-> name`"),
    ("input 8x8x3 -> a\nconv 4 3 @ a\n", 2, 10, "unexpected character `@`", "`@name`, without a space"),
    ("input 8x8x3\nadd: -> s\n    identity\n    identity\n", 2, 6, "unexpected `->`", "`add -> s:`"),
    ("input 8x8x3\nif true -> a:\n    identity\n", 2, 12, "an `if:` block cannot be named", None),
    ("input 8x8x3\nconv 4 3 ->\n", 2, 12, "unexpected end of line", "expected a name"),
    ("input 8x8x3 -> a\n@a conv 4 3\n", 2, 4, "unexpected `conv`", None),
    (
        "def f(c, p=2):\n    @p\ninput 8x8x3\nf 4\n",
        2,
        5,
        "unknown tensor `@p`",
        "`p` is a parameter of `f` holding `2`, not a tensor",
    ),
]


@pytest.mark.parametrize("text, line, column, message, hint", ERRORS)
def test_named_tensor_mistakes_are_located(text, line, column, message, hint):
    with pytest.raises(SpecError) as caught:
        compile_spec(text, "bad.arch")
    error = caught.value
    assert (error.span.line, error.span.column) == (line, column), error.render()
    assert message in error.message
    if hint is not None:
        assert hint in (error.hint or "")
    assert error.render().startswith(f"bad.arch:{line}:{column}:")


def test_error_inside_a_macro_names_the_call_site(cli, tmp_path):
    path = tmp_path / "bad.arch"
    path.write_text("def f(c):\n    add:\n        @x\n        identity\ninput 8x8x3\nconv 4 3 -> x\nf 4\n")
    result = cli("summarize", str(path))
    assert result.code == 2
    assert "bad.arch:3:9: error: unknown tensor `@x`" in result.err
    assert "in expansion of `f 4` at line 7" in result.err
    assert "Traceback" not in result.err


# --- summary, lint, export -----------------------------------------------------------------


def test_summary_lists_every_named_input(cli, tmp_path):
    path = tmp_path / "cell.arch"
    path.write_text(CELL)
    result = cli("summarize", str(path), "--output-format", "json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)["layers"]
    labels = [r["label"] for r in rows]
    assert "cell 16 prev=@c0 -> c2" in labels and "conv 16 3x3 same -> c0" in labels
    # the first layer of a branch that starts from `@prev` lists where it reads from
    reads = [r["connected_to"] for r in rows if r["connected_to"] and r["type"] == "Conv2D"]
    assert reads[0] == ["@c0 (conv 16 3x3 same @21)"]
    concat = next(r for r in rows if r["type"] == "Concat")
    assert len(concat["connected_to"]) == 3 and concat["connected_to"][1].startswith("@y (add")
    folded = json.loads(cli("summarize", str(path), "--output-format", "json", "--depth", "1").out)["layers"]
    assert [r["label"] for r in folded][3:6] == ["cell 16 prev=@c0 -> c2", "cell 16 prev=@c1 -> c3", "cell 24 @c2"]
    assert sum(r["params"] for r in folded) == json.loads(result.out)["totals"]["params"]


def test_lint_runs_on_named_tensors():
    from archspec.lint.config import Settings
    from archspec.lint.engine import RULES, lint_source

    for text in (CELL, UNET, DENSE):
        findings = lint_source(text, "named.arch", Settings(frozenset(RULES)))
        assert all(f.span.line >= 1 for f in findings)


# --- the Flax model ------------------------------------------------------------------------


@pytest.mark.slow  # compiles Flax models: seconds each
@pytest.mark.parametrize("text", [CELL, UNET, DENSE], ids=["cell", "unet", "dense"])
def test_flax_model_matches_inferred_counts_and_shapes(text):
    from tests.test_flax_model import assert_model_matches_inference

    assert_model_matches_inference(compile_spec(text, "named.arch"))


@pytest.mark.slow  # runs a Flax model
def test_flax_applies_every_input_of_a_merge():
    import jax.numpy as jnp
    import numpy as np

    from archspec.flax_model import build_model

    text = "input 4x4x2 -> img\nconv 2 1 -> a\nconv 2 1 -> b\nadd:\n    @a\n    @img\n    @b\n"
    typed = compile_spec(text)
    x = jnp.asarray(np.random.default_rng(0).random((3, 4, 4, 2)), jnp.float32)
    values = build_model(typed).trace(x)
    np.testing.assert_allclose(values[-1], values[1] + x + values[2], rtol=1e-6)


def test_the_docs_example_compiles():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "spec-language.md").read_text(encoding="utf-8")
    section = text[text.index("## Named tensors") : text.index("## Expressions")]
    example = re.findall(r"```\n(.*?)```", section, re.S)[0]
    typed = compile_spec(example, "docs.arch")
    assert typed.output_shape == (32, 32, 48)
    assert len([n for n in typed.graph.nodes if n.kind == "concat"]) == 3


def test_lint_fix_adds_a_word_before_the_name(cli, tmp_path):
    path = tmp_path / "fix.arch"
    path.write_text(
        "input 32x32x3\nconv 16 3 padding=same -> a\nconv 16 3 padding=same -> b\nadd:\n    @a\n    @b\nrelu\n"
    )
    result = cli("lint", "--fix", "--unsafe-fixes", "--select", "CA401", str(path))
    assert "Fixed" in result.out + result.err
    assert path.read_text().split("\n")[1] == "conv 16 3 padding=same relu -> a"
    compile_spec(path.read_text(), "fix.arch")


def test_branch_and_repeat_blocks_name_their_outputs():
    text = spec(
        """
        input 8x8x4
        concat:
            branch -> b:
                conv 2 1
            identity
        repeat 2 -> r:
            conv 6 1
        add:
            @r
            branch:
                @b
                conv 6 1
        """
    )
    typed = compile_spec(text, "blocks.arch")
    nodes = typed.graph.nodes
    final = typed.graph.output
    assert nodes[final.inputs[0]].line == 7 and nodes[final.inputs[0]].inputs == (nodes[final.inputs[0]].id - 1,)
    branch_conv = nodes[final.inputs[1]]
    assert nodes[branch_conv.inputs[0]].line == 4  # `@b` is the branch's conv, not the concat
    assert typed.output_shape == (8, 8, 6)


def test_a_folded_cell_row_lists_both_cells_it_reads(cli):
    rows = json.loads(cli("summarize", "nasnet-mobile", "--output-format", "json", "--depth", "1").out)["layers"]
    cell = next(r for r in rows if r["label"] == "normal 44 prev=@s2 -> n1")
    assert [c.split(" ")[0] for c in cell["connected_to"]] == ["@s2", "@n0"]  # prev, then the stream


def test_the_streams_sizes_and_conditions_read_the_tensor_continued_from():
    text = spec(
        """
        input 8x8x4 -> img
        conv 6 1 -> a
        @img
        conv channels*2 1                 # img's 4 channels: 8 filters
        concat:
            identity
            @a
        if channels == 14:
            conv 2 1 -> small
        else:
            conv 3 1 -> small
        add:
            @small
            conv 2 1
        """
    )
    typed = compile_spec(text, "lang.arch")
    assert [typed.infos[n.id].shape[-1] for n in typed.graph.nodes if n.kind == "conv"][:3] == [6, 8, 2]
    assert typed.output_shape == (8, 8, 2)
