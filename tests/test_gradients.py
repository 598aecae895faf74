"""archspec.gradients against JAX's own: the convolution (output, input and weight gradients) equals
`lax.conv_general_dilated` and its `jax.vjp`, and max pooling equals `nnx.max_pool`'s, on random
shapes with strides, dilation, padding modes, groups, depthwise multipliers and tied maxima."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from archspec import gradients

# Every example compiles a few small functions: few examples, reproducible ones.
EXAMPLES = settings(max_examples=12, deadline=None, derandomize=True)


@st.composite
def convolutions(draw):
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    size = (draw(st.integers(extent[0], 7)), draw(st.integers(extent[1], 7)))
    groups = {"dense": 1, "grouped": 2, "depthwise": draw(st.integers(1, 3))}[kind]
    channels = groups * (1 if kind == "depthwise" else draw(st.integers(1, 3)))
    filters = channels * draw(st.integers(1, 2)) if kind == "depthwise" else groups * draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["SAME", "VALID", "explicit"]))
    if mode == "explicit":
        pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    else:
        pads = tuple(tuple(pair) for pair in lax.padtype_to_pads(size, extent, strides, mode))
    batch = draw(st.integers(1, 3))
    return (batch, *size, channels), (*kernel, channels // groups, filters), strides, pads, dilation, groups


def _close(ours, reference) -> None:
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5 * (1 + float(jnp.max(jnp.abs(reference)))))


@EXAMPLES
@given(convolutions(), st.integers(0, 2**31 - 1))
def test_convolution_and_its_gradients_equal_lax(case, seed):
    x_shape, w_shape, strides, pads, dilation, groups = case
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=x_shape), jnp.float32)
    w = jnp.asarray(rng.normal(size=w_shape), jnp.float32)

    def reference(x, w):
        return lax.conv_general_dilated(
            x, w, strides, pads, rhs_dilation=dilation, dimension_numbers=gradients.NHWC, feature_group_count=groups
        )

    def ours(x, w):
        return gradients.conv_general_dilated(
            x, w, strides, pads, rhs_dilation=dilation, dimension_numbers=gradients.NHWC, feature_group_count=groups
        )

    def output_and_gradients(conv):  # one compiled function per example, not one per operation
        return jax.jit(lambda x, w, g: (conv(x, w), jax.vjp(conv, x, w)[1](g)))

    g = jnp.asarray(rng.normal(size=jax.eval_shape(reference, x, w).shape), jnp.float32)
    expected, expected_grads = output_and_gradients(reference)(x, w, g)
    result, grads = output_and_gradients(ours)(x, w, g)
    _close(result, expected)
    for mine, theirs in zip(grads, expected_grads):
        _close(mine, theirs)


@EXAMPLES
@given(
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.sampled_from(["SAME", "VALID"]),
    st.integers(0, 2**31 - 1),
)
def test_max_pool_and_its_gradient_equal_flax(size, strides, padding, seed):
    rng = np.random.default_rng(seed)
    # Small integers: many windows hold their maximum twice, and the first one must take the gradient.
    x = jnp.asarray(rng.integers(0, 3, size=(2, size[0] + 3, size[1] + 2, 3)), jnp.float32)

    def output_and_gradient(pool):
        return jax.jit(
            lambda x, g: (
                pool(x, size, strides, padding),
                jax.vjp(lambda x: pool(x, size, strides, padding), x)[1](g)[0],
            )
        )

    g = jnp.asarray(
        rng.normal(size=jax.eval_shape(lambda x: nnx.max_pool(x, size, strides, padding), x).shape), jnp.float32
    )
    expected, expected_grad = output_and_gradient(nnx.max_pool)(x, g)
    result, grad = output_and_gradient(gradients.max_pool)(x, g)
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_allclose(grad, expected_grad, atol=1e-6)


def test_the_rules_are_the_cpus_and_plain_lax_can_be_asked_for():
    x, w = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 1, 2))

    def traced() -> str:  # a new function each time: JAX caches a function's trace
        def depthwise(x, w):
            return gradients.conv_general_dilated(
                x, w, (1, 1), "SAME", dimension_numbers=gradients.NHWC, feature_group_count=2
            )

        return str(jax.make_jaxpr(depthwise)(x, w))

    assert "conv_general_dilated" not in traced()  # the taps, not XLA's convolution
    with gradients.plain_lax():
        assert "conv_general_dilated" in traced()


def test_a_bf16_depthwise_convolution_stays_bf16_and_near_float32():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 6, 6, 4)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 1, 4)), jnp.float32)

    @jax.jit
    def depthwise(x, w):
        return gradients.conv_general_dilated(
            x, w, (2, 2), "SAME", dimension_numbers=gradients.NHWC, feature_group_count=4
        )

    low = depthwise(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16))
    assert low.dtype == jnp.bfloat16
    np.testing.assert_allclose(low.astype(jnp.float32), depthwise(x, w), atol=0.1)
