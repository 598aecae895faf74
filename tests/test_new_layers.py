"""The layer kinds ConvNeXt, U-Net and ShuffleNet need: their counts equal Keras' own `count_params`,
their Flax outputs equal the Keras layer's on the same weights (Keras 3, JAX backend), their
mistakes are reported at the spec's line and column, and torchvision's channel shuffle order."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras 3 on JAX: no TensorFlow needed

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
    ("layernorm", lambda: keras.layers.LayerNormalization(epsilon=1e-3), ("scale", "bias")),
    ("layernorm epsilon=1e-6", lambda: keras.layers.LayerNormalization(epsilon=1e-6), ("scale", "bias")),
    ("groupnorm 4", lambda: keras.layers.GroupNormalization(groups=4, epsilon=1e-3), ("scale", "bias")),
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
]


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
