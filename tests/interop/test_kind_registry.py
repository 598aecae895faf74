"""Every layer kind is translated by every reader and writer, or refused there by name with the
reason its module records (`LayerKind.refusals`); and every kind's spec text reads back to itself."""

from __future__ import annotations

import pytest

from archspec import templates
from archspec.compile import compile_spec
from archspec.layers import FRAMEWORKS, REGISTRY, LayerKind
from archspec.layers.base import value_text

# direction -> (the framework key of `refusals`, the method a kind overrides to translate it)
DIRECTIONS = {
    "keras write": ("keras", "keras_code"),
    "keras read": ("keras", "read_keras"),
    "onnx read": ("onnx", "read_onnx"),
    "pytorch write": ("pytorch", "pytorch_code"),
    "flax write": ("flax", "flax_code"),
}
# Directions whose code is not merged yet (the lead removes each mark when its reader lands; strict,
# so a direction that becomes complete fails here until its mark goes).
PENDING = {}


def _overrides(kind: LayerKind, method: str) -> bool:
    return getattr(type(kind), method) is not getattr(LayerKind, method)


@pytest.mark.parametrize(
    "direction",
    [
        pytest.param(d, marks=pytest.mark.xfail(strict=True, reason=PENDING[d])) if d in PENDING else d
        for d in DIRECTIONS
    ],
)
def test_every_kind_is_translated_or_refused_with_a_reason(direction):
    framework, method = DIRECTIONS[direction]
    missing, both = [], []
    for name, kind in REGISTRY.items():
        translated, refused = _overrides(kind, method), bool(kind.refusals.get(framework))
        if not translated and not refused:
            missing.append(name)
        if translated and refused:
            both.append(name)
    assert not missing, f"{direction}: neither translated nor refused: {', '.join(missing)}"
    assert not both, f"{direction}: translated and refused at once: {', '.join(both)}"


def test_refusals_name_a_framework_and_give_a_reason():
    for name, kind in REGISTRY.items():
        for framework, reason in kind.refusals.items():
            assert framework in FRAMEWORKS, f"{name}: unknown framework {framework!r}"
            assert isinstance(reason, str) and len(reason) > 20, f"{name}: give the reason {framework} refuses"


@pytest.mark.parametrize("name", templates.names())
def test_every_node_of_a_template_reads_back_from_its_spec_text(name):
    typed = compile_spec(templates.path(name).read_text(encoding="utf-8"), name)
    for node in typed.graph.nodes:
        if node.layer.family == "merge":  # a block header: its branches are lines of their own
            continue
        text = node.layer.spec_text(node.attrs)
        if node.kind == "input":
            back = compile_spec(text + "\n").graph.nodes[0]
        else:
            back = compile_spec(f"input {value_text(typed.infos[node.inputs[0]].shape)}\n{text}\n").graph.nodes[1]
        assert (back.kind, back.attrs) == (node.kind, node.attrs), text
