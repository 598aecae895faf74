"""The layer kinds ConvNeXt, U-Net and ShuffleNet need: their counts equal Keras' own `count_params`,
their Flax outputs equal the Keras layer's on the same weights (Keras 3, JAX backend), their
mistakes are reported at the spec's line and column, and torchvision's channel shuffle order."""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"  # Keras 3 on JAX, before keras is imported: no TensorFlow needed

import jax.numpy as jnp
import keras
import numpy as np
import pytest

from archspec.compile import compile_spec
from archspec.errors import SpecError
from archspec.flax_model import build_model
from tests.test_flax_model import assert_model_matches_inference

RNG = np.random.default_rng(0)

# spec line, the Keras layer, and how its weights map onto the Flax module's variables
KERAS_CASES = [
    ("layernorm", lambda: keras.layers.LayerNormalization(), ("scale", "bias")),
    ("layernorm epsilon=1e-6", lambda: keras.layers.LayerNormalization(epsilon=1e-6), ("scale", "bias")),
    ("groupnorm 4", lambda: keras.layers.GroupNormalization(groups=4), ("scale", "bias")),
    ("groupnorm 1 epsilon=1e-5", lambda: keras.layers.GroupNormalization(groups=1, epsilon=1e-5), ("scale", "bias")),
    ("convtranspose 6 3 stride=2", lambda: keras.layers.Conv2DTranspose(6, 3, strides=2), ("kernel", "bias")),
    (
        "convtranspose 6 3 stride=2 padding=same",
        lambda: keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same"),
        ("kernel", "bias"),
    ),
    ("convtranspose 5 2 stride=2", lambda: keras.layers.Conv2DTranspose(5, 2, strides=2), ("kernel", "bias")),
    (
        "convtranspose 4 4x3 stride=2x3 padding=same bias=false",
        lambda: keras.layers.Conv2DTranspose(4, (4, 3), strides=(2, 3), padding="same", use_bias=False),
        ("kernel",),
    ),
    ("convtranspose 3 1", lambda: keras.layers.Conv2DTranspose(3, 1), ("kernel", "bias")),
    ("upsample 2", lambda: keras.layers.UpSampling2D(2), ()),
    ("upsample 2x3", lambda: keras.layers.UpSampling2D((2, 3)), ()),
    ("upsample 2 method=bilinear", lambda: keras.layers.UpSampling2D(2, interpolation="bilinear"), ()),
    ("upsample 3 method=bilinear", lambda: keras.layers.UpSampling2D(3, interpolation="bilinear"), ()),
    ("crop 1", lambda: keras.layers.Cropping2D(1), ()),
    ("crop 1x2", lambda: keras.layers.Cropping2D((1, 2)), ()),
    ("crop 0x1x2x3", lambda: keras.layers.Cropping2D(((0, 1), (2, 3))), ()),
    ("gelu", lambda: keras.layers.Activation("gelu"), ()),  # ConvNeXt's: the exact erf form, not the tanh one
]


@pytest.mark.slow  # compiles Flax models: seconds each
@pytest.mark.parametrize("side", [7, 8])
@pytest.mark.parametrize(("line", "make", "names"), KERAS_CASES, ids=[c[0] for c in KERAS_CASES])
def test_flax_layer_equals_keras_on_the_same_weights(line, make, names, side):
    channels = 8
    typed = compile_spec(f"input {side}x{side + 2}x{channels}\n{line}\n")
    reference = make()
    x = RNG.normal(size=(3, side, side + 2, channels)).astype(np.float32)
    reference.build(x.shape)
    # counts: the summary's trainable parameters are Keras' own count, and the shapes agree
    assert typed.trainable == reference.count_params()
    assert typed.output_shape == tuple(reference.compute_output_shape(x.shape)[1:])
    weights = [RNG.normal(size=w.shape).astype(np.float32) for w in reference.get_weights()]
    reference.set_weights(weights)
    model = build_model(typed)
    module = model.layers[f"{typed.graph.nodes[1].kind}_1"] if names else None
    for name, value in zip(names, weights):
        variable = getattr(module, name)
        assert variable[...].shape == value.shape
        variable[...] = jnp.asarray(value)
    expected = np.asarray(reference(x))
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), expected, atol=2e-5, rtol=1e-5)


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        compile_spec(text, "bad.arch")
    return caught.value


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("input 8x8x6\ngroupnorm 4\n", "input channels (=6) must be divisible by `groups` (=4)", 2, 1),
        ("input 8x8x6\nshuffle 4\n", "input channels (=6) must be divisible by `groups` (=4)", 2, 1),
        ("input 8x8x6\ncrop 4\n", "`crop 4` removes 8x8 of a 8x8x6 input, leaving nothing", 2, 1),
        ("input 8x8x6\ncrop 0x0x3x5\n", "removes 0x8", 2, 1),
        ("input 8x8x6\nchannels 2:8\n", "`channels 2:8` needs 8 channels", 2, 1),
        ("input 8x8x6\nchannels 4:2\n", "the range `4:2` is empty", 2, 10),
        ("input 8x8x6\nchannels 2\n", "`range` must be a range A:B, got `2`", 2, 10),
        ("input 8x8x6\nchannels 0:1.5\n", "must be a whole number", 2, 10),
        ("input 8x8x6\nconv 4 3:5\n", "`kernel` must be a whole number, got `3:5`", 2, 8),
        ("input 8x8x6\nupsample 2 method=cubic\n", "`method` must be nearest or bilinear, got `cubic`", 2, 19),
        ("input 8x8x6\nconvtranspose 4 3 padding=2\n", "`padding` must be valid or same", 2, 27),
        ("input 8x8x6\ndroppath 1\n", "`rate` (=1) must be at least 0 and below 1", 2, 10),
        ("input 8x8x6\nlayernorm epsilon=0\n", "`epsilon` (=0) must be above 0", 2, 19),
        ("input 8x8x6\nflatten\nconvtranspose 4 3\n", "`convtranspose` needs an HxWxC input", 3, 1),
        ("input 8x8x6\nchannels :3\n", "a range `A:B` needs a start before the `:`", 2, 11),
    ],
)
def test_mistakes_are_reported_at_their_line_and_column(text, message, line, column):
    error = _error(text)
    assert message in error.message
    assert (error.span.line, error.span.column) == (line, column)


def test_groupnorm_error_inside_a_macro_names_the_call():
    error = _error("def block(g):\n    groupnorm g\ninput 8x8x6\nblock 4\n")
    assert error.span.line == 2 and "line 4" in error.render()


def test_channel_shuffle_follows_torchvision():
    # torchvision.models.shufflenetv2.channel_shuffle on NCHW: view(b, g, c/g, h, w) -> transpose(1, 2)
    x = RNG.normal(size=(2, 3, 3, 12)).astype(np.float32)
    typed = compile_spec("input 3x3x12\nshuffle 3\n")
    nchw = x.transpose(0, 3, 1, 2)
    expected = nchw.reshape(2, 3, 4, 3, 3).transpose(0, 2, 1, 3, 4).reshape(2, 12, 3, 3).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(np.asarray(build_model(typed)(jnp.asarray(x))), expected)


def test_channels_selects_the_range_python_style():
    x = RNG.normal(size=(2, 3, 3, 12)).astype(np.float32)
    typed = compile_spec("def half(c):\n    channels c//2:c\ninput 3x3x12\nhalf 12\n")
    assert typed.output_shape == (3, 3, 6)
    np.testing.assert_array_equal(np.asarray(build_model(typed)(jnp.asarray(x))), x[..., 6:12])


def test_droppath_drops_whole_examples_in_training_only():
    typed = compile_spec("input 4x4x3\ndroppath 0.5\n")
    model = build_model(typed, seed=1)
    x = jnp.ones((256, 4, 4, 3))
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(x))  # inference: the identity
    out = np.asarray(model(x, train=True))
    per_example = out.reshape(256, -1)
    # each example is all dropped or all kept, kept ones scaled by 1 / (1 - P)
    assert set(np.unique(per_example)) <= {0.0, 2.0}
    assert all(len(np.unique(row)) == 1 for row in per_example)
    assert 0.3 < (per_example[:, 0] == 0).mean() < 0.7


def test_layerscale_starts_at_init_and_counts_one_per_channel():
    typed = compile_spec("input 4x4x5\nlayerscale init=0.25\n")
    assert (typed.trainable, typed.non_trainable) == (5, 0)
    x = jnp.ones((1, 4, 4, 5))
    np.testing.assert_allclose(np.asarray(build_model(typed)(x)), 0.25)


def test_convnext_block_counts_like_keras():
    # one ConvNeXt-T stage-1 block (Keras ConvNeXtTiny): dwconv 7, layernorm, 4x MLP, layer scale, residual
    spec = (
        "input 56x56x96\n"
        "add:\n"
        "    identity\n"
        "    branch:\n"
        "        dwconv 7 padding=same\n"
        "        layernorm epsilon=1e-6\n"
        "        conv 384 1 gelu\n"
        "        conv 96 1\n"
        "        layerscale init=1e-6\n"
        "        droppath 0.1\n"
    )
    typed = compile_spec(spec)
    block = keras.Sequential(
        [
            keras.Input((56, 56, 96)),
            keras.layers.DepthwiseConv2D(7, padding="same"),
            keras.layers.LayerNormalization(epsilon=1e-6),
            keras.layers.Dense(384, activation="gelu"),
            keras.layers.Dense(96),
        ]
    )
    assert typed.trainable == block.count_params() + 96  # + gamma of the layer scale
    assert_model_matches_inference(typed)


FLAX_SPECS = [
    "input 6x6x8\ngap\ngroupnorm 2\nlayerscale\ndroppath 0.3\nshuffle 4\nchannels 1:5\ndense 2\n",  # on vectors
    "input 9x9x8\nlayernorm epsilon=1e-6\ngroupnorm 4 center=false\nlayerscale\ndroppath 0.2\ngap\ndense 3\n",
    "input 8x8x3\nconv 8 3 stride=2 padding=same relu\nconvtranspose 4 2 stride=2 bn relu\nupsample 2\n"
    "upsample 2 method=bilinear\ncrop 1x2x0x3\nconvtranspose 2 3 padding=same bias=false\n",
    "input 6x6x16\nconcat:\n    channels 0:8\n    branch:\n        channels 8:16\n        conv 8 1 relu\n"
    "shuffle 2\nchannels 4:12\nlayernorm\nflatten\ndense 2\n",
]


@pytest.mark.parametrize("text", FLAX_SPECS)
def test_flax_model_of_the_new_kinds_matches_inference(text):
    assert_model_matches_inference(compile_spec(text))
