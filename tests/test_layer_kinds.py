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


@pytest.mark.parametrize("name", REGISTRY)
def test_a_kind_has_weights_exactly_when_it_counts_trainable_parameters(name):
    # the trait the lint rules ask ("a weight layer") agrees with the kind's own parameter rule
    kind = REGISTRY[name]
    shape = (8, 8, 4)
    required = {"filters": 8, "kernel": (3, 3), "units": 8, "size": (2, 2), "shape": shape, "rate": 0.5}
    required.update({"scale": 1.0, "padding": (0, 0, 0, 0), "groups": 2, "cropping": (1, 1, 1, 1), "range": (0, 2)})
    attrs = {a.name: required[a.name] if a.default is REQUIRED else a.default for a in kind.args}
    attrs["branches"] = ("line 1", "line 2")
    inputs = [shape, shape] if kind.family == "merge" else [shape]
    output = kind.output_shape(attrs, inputs)
    trainable, _ = kind.param_count(attrs, inputs, output)
    assert kind.has_weights == (trainable > 0 and kind.family != "norm")


def test_probability_and_trailing_traits():
    assert {n for n, k in REGISTRY.items() if k.probability_output} >= {"softmax", "sigmoid"}
    assert not REGISTRY["relu"].probability_output
    assert {"bn", "relu", "softmax", "linear"} <= TRAILING_WORDS and "dropout" not in TRAILING_WORDS
    assert not REGISTRY["maxpool"].linear and REGISTRY["avgpool"].linear
