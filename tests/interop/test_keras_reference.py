"""The importer against Keras itself: Keras 3 (JAX backend) builds the same files, and its layer
signatures are the ones the layer kinds assume (`keras_positional`)."""

from __future__ import annotations

import inspect

import pytest

from archspec.compile import compile_spec
from archspec.interop.keras_graph import keras_kinds
from archspec.interop.keras_import import import_keras
from tests.interop.keras_build import counts, keras, run_file
from tests.interop.test_keras_import import KERAS, MODELS

pytestmark = pytest.mark.slow  # importing Keras and building its models takes tens of seconds here


@pytest.mark.parametrize("file", sorted({m[0] for m in MODELS}))
def test_keras_builds_the_counts_of_the_imported_spec(file):
    built = run_file(KERAS / file)
    for name, total, trainable, output in [(m[1], *m[2:]) for m in MODELS if m[0] == file]:
        typed = compile_spec(import_keras((KERAS / file).read_text(), file, name).text, file)
        measured = counts(built[name], built.get("outputs"))
        assert measured == (total, trainable, output) == (typed.params, typed.trainable, typed.output_shape)


# Classes a kind reads that are not in keras.layers: the ConvNeXt layer scale (keras.applications),
# the class `cnn-arch export --to keras` writes for `lrn`, and the slicing operation of `x[..., a:b]`.
NOT_LAYERS = {"LayerScale", "LocalResponseNorm", "GetItem"}


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
