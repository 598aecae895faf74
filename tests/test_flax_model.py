"""The Flax model built from a spec agrees with static inference: the same parameter counts
(trainable and non-trainable) and, layer by layer, the same output shapes. Checked here on randomly
generated valid specs; every template is checked in tests/test_templates.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archspec.compile import compile_spec
from archspec.flax_model import build_model
from tests.flax_counts import abstract_model, count_parameters


def assert_model_matches_inference(typed) -> None:
    model = abstract_model(typed)
    assert count_parameters(model) == (typed.trainable, typed.non_trainable)
    x = jax.ShapeDtypeStruct((2, *typed.input_shape), jnp.float32)
    for train in (False, True):
        outputs = nnx.eval_shape(lambda m, x, train=train: m.trace(x, train=train), model, x)
        assert [o.shape[1:] for o in outputs] == [i.shape for i in typed.infos]


@st.composite
def valid_specs(draw):
    """Random specs that are valid by construction: the generator tracks the tensor shape."""
    side = draw(st.integers(6, 20))
    channels = draw(st.sampled_from([1, 3, 4]))
    lines = [f"input {side}x{side}x{channels}"]
    activations = st.sampled_from(["", " relu", " bn relu", " relu6", " silu", " bn", " tanh", " gelu"])
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(
            st.sampled_from(
                [
                    "conv",
                    "dwconv",
                    "sepconv",
                    "pool",
                    "bn",
                    "act",
                    "dropout",
                    "zeropad",
                    "add",
                    "concat",
                    "se",
                    "norm2",
                    "grow",
                    "named",
                ]
            )
        )
        if choice == "conv":
            filters = draw(st.integers(1, 12))
            groups = draw(st.sampled_from([g for g in (1, 2) if channels % g == 0 and filters % g == 0]))
            kernel = draw(st.sampled_from(["1", "3", "3x1", "2"]))
            stride = draw(st.sampled_from([1, 2])) if side >= 4 else 1
            bias = draw(st.sampled_from(["", " bias=false"]))
            lines.append(
                f"conv {filters} {kernel} stride={stride} padding=same groups={groups}{bias}{draw(activations)}"
            )
            side, channels = -(-side // stride), filters
        elif choice == "dwconv":
            multiplier = draw(st.integers(1, 2))
            lines.append(f"dwconv 3 padding=same multiplier={multiplier}{draw(activations)}")
            channels *= multiplier
        elif choice == "sepconv":
            filters = draw(st.integers(1, 12))
            lines.append(f"sepconv {filters} 3 padding=same{draw(activations)}")
            channels = filters
        elif choice == "pool" and side >= 2:
            kind = draw(st.sampled_from(["maxpool", "avgpool"]))
            lines.append(f"{kind} 2")
            side //= 2
        elif choice == "bn":
            lines.append("bn")
        elif choice == "act":
            lines.append(draw(st.sampled_from(["relu", "sigmoid", "hard_swish", "leaky_relu 0.2", "lrn"])))
        elif choice == "dropout":
            lines.append(f"dropout {draw(st.sampled_from(['0.1', '0.5']))}")
        elif choice == "norm2":
            lines.append(draw(st.sampled_from(["layernorm epsilon=1e-6", "groupnorm 1", "layerscale", "droppath 0.2"])))
        elif choice == "grow":
            filters = draw(st.integers(1, 6))
            lines.append(draw(st.sampled_from([f"convtranspose {filters} 2 stride=2", f"convtranspose {filters} 3"])))
            side, channels = side * 2 if "stride" in lines[-1] else side + 2, filters
        elif choice == "named":  # a skip written with names: the tensor before two layers, added after them
            name = f"skip{len(lines)}"
            lines += [
                f"identity -> {name}",
                f"conv {channels} 3 padding=same relu",
                f"conv {channels} 1",
                "add:",
                f"    @{name}",
                "    identity",
            ]
        elif choice == "zeropad":
            lines.append("zeropad 1")
            side += 2
        elif choice == "add":
            lines += ["add:", "    identity", f"    conv {channels} 3 padding=same bn"]
        elif choice == "concat":
            extra = draw(st.integers(1, 6))
            lines += [
                "concat:",
                "    identity",
                "    branch:",
                f"        conv {extra} 1 relu",
                f"        conv {extra} 3 padding=same",
            ]
            channels += extra
        elif choice == "se":
            lines += [
                "multiply:",
                "    identity",
                "    branch:",
                "        gap keepdims=true",
                f"        conv {max(1, channels // 2)} 1 relu",
                f"        conv {channels} 1 sigmoid",
            ]
    head = draw(st.sampled_from(["gap", "flatten", "gmp"]))
    units = draw(st.integers(1, 10))
    lines += [head, f"dense {units}{draw(st.sampled_from(['', ' softmax', ' bn relu']))}"]
    return "\n".join(lines) + "\n"


@pytest.mark.slow  # compiles Flax models: seconds each
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_specs())
def test_random_specs_build_as_inferred(text):
    assert_model_matches_inference(compile_spec(text, "random.arch"))


@pytest.mark.slow  # compiles Flax models: seconds each
def test_forward_pass_runs_and_logits_skip_the_softmax():
    typed = compile_spec("input 8x8x1\nconv 4 3 bn relu\ndropout 0.5\ngap\ndense 3 softmax\n")
    model = build_model(typed, seed=0)
    x = jnp.asarray(np.random.default_rng(0).random((5, 8, 8, 1)), jnp.float32)
    probabilities = model(x)
    logits = model(x, logits=True)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(jax.nn.softmax(logits), probabilities, rtol=1e-5)
    assert model.head_activation == "softmax"
    # training mode updates the BatchNorm statistics; evaluation does not
    before = model.layers["bn_2"].mean[...].copy()
    model(x)
    np.testing.assert_array_equal(model.layers["bn_2"].mean[...], before)
    model(x, train=True)
    assert not np.array_equal(model.layers["bn_2"].mean[...], before)


def test_same_seed_same_weights():
    typed = compile_spec("input 8x8x1\nconv 4 3\ngap\ndense 3\n")
    first, second = build_model(typed, seed=3), build_model(typed, seed=3)
    for a, b in zip(jax.tree.leaves(nnx.state(first, nnx.Param)), jax.tree.leaves(nnx.state(second, nnx.Param))):
        np.testing.assert_array_equal(a, b)
