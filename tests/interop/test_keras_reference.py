"""The importer against Keras itself: Keras 3 builds the same files (on its numpy backend, in a
subprocess: tests/interop/keras_build.py), and its layer signatures are the ones the layer kinds
assume (`keras_positional`)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from archspec.compile import compile_spec
from archspec.interop.keras_graph import keras_kinds
from archspec.interop.keras_import import import_keras
from tests.interop.keras_build import built_counts, keras
from tests.interop.test_keras_import import KERAS, MODELS

pytestmark = pytest.mark.slow  # importing Keras and building its models takes tens of seconds here


FILES = sorted({m[0] for m in MODELS})


@pytest.fixture(scope="module")
def built():
    """What Keras counts for every model of every file: {file: {variable: [total, trainable, shape]}}."""
    return {
        Path(path).relative_to(KERAS).as_posix(): models
        for path, models in built_counts([KERAS / f for f in FILES]).items()
    }


@pytest.mark.parametrize("file", FILES)
def test_keras_builds_the_counts_of_the_imported_spec(built, file):
    for name, total, trainable, output in [(m[1], *m[2:]) for m in MODELS if m[0] == file]:
        typed = compile_spec(import_keras((KERAS / file).read_text(), str(KERAS / file), name).text, file)
        assert built[file][name] == [total, trainable, list(output)]
        assert (total, trainable, output) == (typed.params, typed.trainable, typed.output_shape)


# Classes a kind reads that are not in keras.layers: the ConvNeXt layer scale (keras.applications),
# the classes `cnn-arch export --to keras` writes (`lrn`, `shuffle`, `droppath`), and the slicing
# operation of `x[..., a:b]`.
NOT_LAYERS = {"LayerScale", "LocalResponseNorm", "ChannelShuffle", "DropPath", "GetItem"}


@pytest.mark.parametrize("name", sorted(set(keras_kinds()) - NOT_LAYERS))
def test_positional_order_is_keras_own(name):
    layer = getattr(keras().layers, name)
    parameters = [p for p in inspect.signature(layer.__init__).parameters if p not in ("self", "kwargs")]
    order = keras_kinds()[name].keras_parameters(name)
    assert parameters[: len(order)] == list(order)


def test_layer_scale_positional_order_is_keras_own():
    from keras.src.applications.convnext import LayerScale

    parameters = [p for p in inspect.signature(LayerScale.__init__).parameters if p not in ("self", "kwargs")]
    assert parameters == list(keras_kinds()["LayerScale"].keras_parameters("LayerScale"))


# Keras layers as Keras builds them (their `get_config()`), the input shape, and the spec line each
# kind's `read_keras` makes of it: every class a kind reads from keras.layers, with its arguments.
KERAS_LAYERS = [
    (
        "Conv2D(8, (3, 5), strides=2, padding='same', groups=2, use_bias=False, activation='relu')",
        (9, 9, 4),
        "conv 8 3x5 stride=2 padding=same groups=2 bias=false relu",
    ),
    ("Conv2D(4, 3, dilation_rate=2)", (9, 9, 4), "conv 4 3 dilation=2"),
    ("DepthwiseConv2D(3, depth_multiplier=2, activation='relu6')", (9, 9, 4), "dwconv 3 multiplier=2 relu6"),
    (
        "SeparableConv2D(6, 3, strides=(2, 1), padding='same', activation='swish')",
        (9, 9, 4),
        "sepconv 6 3 stride=2x1 padding=same silu",
    ),
    (
        "Conv2DTranspose(5, 2, strides=2, padding='same', use_bias=False)",
        (9, 9, 4),
        "convtranspose 5 2 stride=2 padding=same bias=false",
    ),
    ("Dense(7, activation='gelu', use_bias=False)", (4,), "dense 7 bias=false gelu"),
    ("MaxPooling2D(3, strides=2, padding='same')", (9, 9, 4), "maxpool 3 stride=2 padding=same"),
    ("AveragePooling2D(2)", (9, 9, 4), "avgpool 2"),
    ("GlobalAveragePooling2D(keepdims=True)", (9, 9, 4), "gap keepdims=true"),
    ("GlobalMaxPooling2D()", (9, 9, 4), "gmp"),
    ("Flatten()", (9, 9, 4), "flatten"),
    ("Dropout(0.25)", (4,), "dropout 0.25"),
    ("Dropout(0.1, noise_shape=(None, 1, 1, 1))", (9, 9, 4), "droppath 0.1"),
    (
        "BatchNormalization(momentum=0.9, epsilon=1e-5, scale=False)",
        (9, 9, 4),
        "bn momentum=0.9 epsilon=1e-05 scale=false",
    ),
    ("LayerNormalization(epsilon=1e-6)", (9, 9, 4), "layernorm epsilon=1e-06"),
    ("GroupNormalization(2, center=False)", (9, 9, 4), "groupnorm 2 center=false"),
    ("Normalization()", (9, 9, 4), "normalize"),
    ("Rescaling(1 / 127.5, offset=-1)", (9, 9, 4), "rescale 0.00784313725490196 offset=-1.0"),
    ("Activation('hard_silu')", (4,), "hard_swish"),
    ("Activation('linear')", (4,), "linear"),
    ("ReLU(max_value=6.0)", (4,), "relu6"),
    ("ReLU(negative_slope=0.1)", (4,), "leaky_relu 0.1"),
    ("LeakyReLU(0.2)", (4,), "leaky_relu 0.2"),
    ("ELU()", (4,), "elu"),
    ("Softmax()", (4,), "softmax"),
    ("ZeroPadding2D(((1, 2), (3, 4)))", (9, 9, 4), "zeropad 1x2x3x4"),
    ("Cropping2D((1, 2))", (9, 9, 4), "crop 1x2"),
    ("UpSampling2D(2, interpolation='bilinear')", (9, 9, 4), "upsample 2 method=bilinear"),
    ("Add()", (9, 9, 4), "add"),
    ("Multiply()", (9, 9, 4), "multiply"),
    ("Concatenate()", (9, 9, 4), "concat"),
]


@pytest.mark.parametrize(("code", "shape", "line"), KERAS_LAYERS)
def test_each_kind_reads_the_config_keras_gives(code, shape, line):
    from archspec.interop.keras_graph import _texts

    layer = eval(f"layers.{code}", {"layers": keras().layers})
    config = layer.get_config()
    kind = keras_kinds()[type(layer).__name__]
    nodes = kind.read_keras(type(layer).__name__, config, [shape])
    assert _texts(tuple(nodes)) == [line]


def test_layer_scale_reads_the_config_keras_gives():
    from keras.src.applications.convnext import LayerScale

    config = LayerScale(1e-6, 4).get_config()
    assert keras_kinds()["LayerScale"].read_keras("LayerScale", config, [(9, 9, 4)]) == [("layerscale", {"init": 1e-6})]
