"""Blocks, repeats and macros: expansion, inference through merges, and the nested summary."""

from __future__ import annotations

import json

from archspec.summary import summarize
from tests.conftest import spec

RESNET_STAGE = """
def bottleneck(f, stride=1):
    add:
        branch:
            conv f 1 stride=stride bn relu
            conv f 3 padding=same bn relu
            conv 4*f 1 bn
        branch:
            conv 4*f 1 stride=stride bn
    relu

input 56x56x64
bottleneck 64
bottleneck 128 stride=2
"""


def kinds(typed):
    return [n.kind for n in typed.graph.nodes]


def test_keras_conv_block_counts(compile_text):
    typed = compile_text(RESNET_STAGE)
    first = sum(
        i.params
        for n, i in zip(typed.graph.nodes, typed.infos)
        if n.origins[:1] and n.origins[0].call == "bottleneck 64"
    )
    # Keras ResNet-50 conv2_block1: 4,160+256 + 36,928+256 + 16,640+1,024 + shortcut 16,640+1,024
    assert first == 76_928
    assert typed.output_shape == (28, 28, 512)


def test_add_merges_the_branch_outputs(compile_text):
    typed = compile_text(RESNET_STAGE)
    adds = [n for n in typed.graph.nodes if n.kind == "add"]
    assert len(adds) == 2
    for add in adds:
        assert len(add.inputs) == 2
        assert add.attrs["branches"] == ("line 3", "line 7")


def test_identity_branch_reuses_the_block_input(compile_text):
    typed = compile_text("""
        input 8x8x4
        conv 4 3 padding=same
        add:
            identity
            conv 4 3 padding=same
    """)
    add = typed.graph.nodes[-1]
    assert add.kind == "add" and add.inputs == (1, 2)


def test_concat_sums_channels(compile_text):
    typed = compile_text("""
        input 28x28x192
        concat:
            conv 64 1
            branch:
                conv 96 1
                conv 128 3 padding=same
            branch:
                conv 16 1
                conv 32 5 padding=same
            branch:
                maxpool 3 stride=1 padding=same
                conv 32 1
    """)
    assert typed.output_shape == (28, 28, 256)  # GoogLeNet inception (3a)


def test_multiply_broadcasts_squeeze_excite(compile_text):
    typed = compile_text("""
        input 14x14x32
        multiply:
            identity
            branch:
                gap keepdims=true
                conv 8 1 relu
                conv 32 1 sigmoid
    """)
    assert typed.output_shape == (14, 14, 32)
    assert typed.params == (32 * 8 + 8) + (8 * 32 + 32)


def test_receptive_field_is_the_largest_over_all_paths(compile_text):
    typed = compile_text("""
        input 32x32x3
        add:
            conv 8 1
            branch:
                conv 8 3 padding=same
                conv 8 3 padding=same
    """)
    assert typed.infos[-1].receptive_field == (5, 5)


def test_repeat_block_and_trailing_repeat(compile_text):
    typed = compile_text("""
        input 32x32x3
        conv 8 3 padding=same relu x2
        repeat 3:
            conv 8 3 padding=same
            bn
    """)
    assert kinds(typed) == ["input"] + ["conv", "relu"] * 2 + ["conv", "bn"] * 3
    assert typed.infos[-1].receptive_field == (11, 11)


def test_macro_defaults_may_use_earlier_parameters_and_words(compile_text):
    typed = compile_text("""
        def block(f, expand=4*f, act=relu6):
            conv expand 1 act
            conv f 1
        input 8x8x4
        block 8
        block 8 act=silu
    """)
    assert [n.kind for n in typed.graph.nodes] == ["input", "conv", "relu6", "conv", "conv", "silu", "conv"]
    assert typed.infos[1].shape == (8, 8, 32)


def test_defs_may_come_after_input_and_call_each_other(compile_text):
    typed = compile_text("""
        input 8x8x4
        def outer(f):
            inner f
            inner 2*f
        def inner(f):
            conv f 1
        outer 3
    """)
    assert [i.shape[-1] for i in typed.infos[1:]] == [3, 6]


def test_expressions_and_functions(compile_text):
    typed = compile_text("""
        def se(c, ratio=0.25):
            conv max(1, int(c*ratio)) 1
            conv make_divisible(c*1.4, 8) 1
            conv (c + 7) // 8 * 8 - c % 3 1
        input 4x4x4
        se 30
    """)
    assert [i.shape[-1] for i in typed.infos[1:]] == [7, 40, 32 - 0]


def test_make_divisible_matches_keras():
    from archspec.expr import make_divisible

    # values from MobileNetV2 width multipliers
    assert [make_divisible(32 * a) for a in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)] == [16, 16, 24, 32, 40, 48]
    assert make_divisible(1280 * 1.4) == 1792


def test_summary_rows_nest_blocks_and_fold_with_depth(compile_text):
    typed = compile_text(RESNET_STAGE)
    summary = summarize(typed, "stage")
    top = summary.folded(1)
    assert [(r.label, r.group) for r in top] == [
        ("input 56x56x64", False),
        ("bottleneck 64", True),
        ("bottleneck 128 stride=2", True),
    ]
    assert sum(r.params for r in top) == typed.params
    assert top[2].shape == (28, 28, 512)
    # depth 2: each call shows its add block and its closing relu
    second = [r.label for r in summary.folded(2) if r.depth == 2]
    assert second == ["add", "relu", "add", "relu"]
    # all rows: the merge node is carried by its block row, never listed twice
    assert sum(1 for r in summary.rows if r.type == "Add") == 2
    leaf_params = sum(r.params for r in summary.rows if not r.group)
    assert leaf_params == typed.params


def test_depth_option_on_the_command_line(cli, tmp_path):
    path = tmp_path / "stage.arch"
    path.write_text(spec(RESNET_STAGE))
    rows = json.loads(cli("summarize", str(path), "--format", "json", "--depth", "1").out)["layers"]
    assert [row["label"] for row in rows] == ["input 56x56x64", "bottleneck 64", "bottleneck 128 stride=2"]
    table = cli("summarize", str(path), "--depth", "1").out
    assert "bottleneck 128 stride=2" in table and "conv 128" not in table
