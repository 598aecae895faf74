"""The layer kinds are the one home of layer facts: every kind states its traits, and the layer
table of docs/spec-language.md is generated from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from archspec.layer_table import layer_table, with_table
from archspec.layers import REGISTRY, TRAILING_WORDS
from archspec.layers.base import REQUIRED

DOCS = Path(__file__).parents[1] / "docs" / "spec-language.md"


def test_docs_layer_table_is_generated_from_the_kinds():
    page = DOCS.read_text(encoding="utf-8")
    assert with_table(page) == page, "regenerate it: python -m archspec.layer_table docs/spec-language.md"
    for name in REGISTRY:
        assert f"| `{name}" in layer_table()


@pytest.mark.parametrize("name", REGISTRY)
def test_every_kind_states_its_family_keras_name_and_summary(name):
    kind = REGISTRY[name]
    assert kind.family and kind.keras_name and kind.summary
    if kind.width_arg is not None:
        assert kind.width_arg in {a.name for a in kind.args}


def _attrs(kind, shape=(8, 8, 4), **given) -> dict:
    """Arguments a kind accepts on an 8x8x4 input: its defaults, with small values for required ones."""
    required = {"filters": 8, "kernel": (3, 3), "units": 8, "size": (2, 2), "shape": shape, "rate": 0.5}
    required.update({"scale": 1.0, "padding": (0, 0, 0, 0), "groups": 2, "cropping": (1, 1, 1, 1), "range": (0, 2)})
    attrs = {a.name: required[a.name] if a.default is REQUIRED else a.default for a in kind.args}
    attrs["branches"] = ("line 1", "line 2")
    return {**attrs, **given}


def _trainable(kind, attrs, shape=(8, 8, 4)) -> tuple[int, tuple[int, ...]]:
    inputs = [shape, shape] if kind.family == "merge" else [shape]
    output = kind.output_shape(attrs, inputs)
    return kind.param_count(attrs, inputs, output)[0], output


@pytest.mark.parametrize("name", [n for n, k in REGISTRY.items() if k.has_kernel])
def test_a_kind_with_a_kernel_takes_a_bias_of_one_value_per_output_channel(name):
    # what lint's rules assume of `has_kernel` (CA302 reads `bias` and counts a bias per channel);
    # a kind with parameters but no kernel (bn, layernorm, layerscale) does not set it
    kind = REGISTRY[name]
    assert "bias" in {a.name for a in kind.args}
    with_bias, output = _trainable(kind, _attrs(kind, bias=True))
    without, _ = _trainable(kind, _attrs(kind, bias=False))
    assert with_bias - without == output[-1] and without > 0


@pytest.mark.parametrize("name", REGISTRY)
def test_the_traits_lint_asks_are_consistent(name):
    kind = REGISTRY[name]
    if kind.full_kernel:
        assert kind.has_kernel and not kind.depthwise
    if kind.sums_to_one:
        assert kind.probability_output
    if kind.residual:
        assert kind.family == "merge"
    trainable, _ = _trainable(kind, _attrs(kind))
    if kind.has_kernel:
        assert trainable > 0


def test_kinds_with_parameters_but_no_kernel_are_left_out_by_the_bias_rule(compile_text):
    from archspec.lint import Settings, lint_source

    for layer in ("bn", "layernorm", "layerscale", "groupnorm 2"):
        text = f"input 8x8x4\n{layer}\nbn\ngap\ndense 2 softmax\n"
        assert not [f for f in lint_source(text, "t.arch", Settings.default()) if f.code == "CA302"], layer


def test_probability_and_trailing_traits():
    assert {n for n, k in REGISTRY.items() if k.probability_output} >= {"softmax", "sigmoid"}
    assert not REGISTRY["relu"].probability_output
    assert {"bn", "relu", "softmax", "linear"} <= TRAILING_WORDS and "dropout" not in TRAILING_WORDS
    assert not REGISTRY["maxpool"].linear and REGISTRY["avgpool"].linear
