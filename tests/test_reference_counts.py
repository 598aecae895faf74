"""The project's first acceptance test: the DESIGN table's models, layer by layer, and the dense-head
numbers. (Every template's totals, in the API and in `summarize --format json`, are checked against
their references in tests/test_templates.py.)"""

from __future__ import annotations

import json

from archspec.compile import compile_spec
from archspec.templates import path

# Keras' per-layer output shapes for the flatten-head model (batch dimension dropped).
KERAS_FLATTEN_HEAD_SHAPES = [
    (222, 222, 32),
    (220, 220, 32),
    (110, 110, 32),
    (110, 110, 32),
    (108, 108, 64),
    (106, 106, 64),
    (53, 53, 64),
    (53, 53, 64),
    (179776,),
    (179776,),
    (64,),
    (32,),
    (10,),
]


def typed_template(name: str):
    return compile_spec(path(name).read_text(), name)


def test_flatten_head_layer_shapes_match_keras():
    typed = typed_template("flatten-head")
    # Keras folds activations into their conv/dense layer; compare the layers Keras lists.
    shapes = [
        info.shape
        for node, info in zip(typed.graph.nodes, typed.infos)
        if node.kind not in ("input", "relu", "softmax")
    ]
    assert shapes == KERAS_FLATTEN_HEAD_SHAPES


def test_flatten_output_is_179776_in_json(cli):
    layers = json.loads(cli("summarize", "flatten-head", "--format", "json").out)["layers"]
    flatten = next(layer for layer in layers if layer["label"] == "flatten")
    assert flatten["shape"] == [179776]
    assert flatten["line"] == 12


def test_lenet5_shapes_match_the_paper():
    typed = typed_template("lenet5")
    convs_and_pools = [
        info.shape for node, info in zip(typed.graph.nodes, typed.infos) if node.kind in ("conv", "avgpool", "flatten")
    ]
    assert convs_and_pools == [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16), (400,)]


def test_flatten_head_dense_share_and_gap_alternative(cli):
    data = json.loads(cli("summarize", "flatten-head", "--format", "json").out)
    head = data["dense_head"]
    assert head["params"] == 11_508_138
    assert round(head["share"], 3) == 0.994
    assert head["params_with_gap"] == 72_522
    assert head["params_lean"] == 66_602
    assert head["suggest_gap"] is True


def test_summary_ends_with_the_gap_suggestion(cli):
    out = cli("summarize", "flatten-head").out
    last = out.strip().splitlines()[-1]
    assert "replace `flatten` at line 12 with `gap`" in " ".join(out.split())
    assert "72,522" in last or "72,522" in out.strip().splitlines()[-2]


def test_threshold_option_controls_the_suggestion(cli):
    assert "Suggestion" not in cli("summarize", "flatten-head", "--dense-share-threshold", "0.999").out
    # gap-head has no flatten at all: never a suggestion
    assert "Suggestion" not in cli("summarize", "gap-head", "--dense-share-threshold", "0").out
    assert "Suggestion" in cli("summarize", "lenet5", "--dense-share-threshold", "0.5").out


def test_no_gap_suggestion_when_the_map_reaching_flatten_is_1x1(cli):
    # lenet5 at 16x16 reaches flatten with a 1x1x16 map: gap would leave the same 15,626 params
    one_by_one = json.loads(cli("summarize", "lenet5", "--input", "16x16x1", "--format", "json").out)["dense_head"]
    assert one_by_one["share"] > 0.5 and one_by_one["params_with_gap"] == 15_626
    assert one_by_one["suggest_gap"] is False
    assert "Suggestion" not in cli("summarize", "lenet5", "--input", "16x16x1").out
    assert "CA101" not in cli("lint", "lenet5", "--input", "16x16x1").out
    # the near miss: at 20x20 the map is 2x2, and gap saves a quarter of the parameters
    out = cli("summarize", "lenet5", "--input", "20x20x1").out
    assert "15,626 params instead of 21,386 (26.9% fewer)" in out
    assert "CA101" in cli("lint", "lenet5", "--input", "20x20x1").out
