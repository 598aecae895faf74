"""The importer against Keras itself: Keras 3 builds the same files (on its numpy backend, in a
subprocess: tests/interop/keras_build.py), and its layer signatures are the ones the importer's table
assumes."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from archspec.compile import compile_spec
from archspec.interop import keras_layers
from archspec.interop.keras_import import import_keras
from tests.interop.keras_build import built_counts, keras
from tests.interop.test_keras_import import KERAS, MODELS

pytestmark = pytest.mark.slow  # importing Keras and building its models takes tens of seconds here


FILES = sorted({m[0] for m in MODELS})


@pytest.fixture(scope="module")
def built():
    """What Keras counts for every model of every file: {file: {variable: [total, trainable, shape]}}."""
    return {Path(path).name: models for path, models in built_counts([KERAS / f for f in FILES]).items()}


@pytest.mark.parametrize("file", FILES)
def test_keras_builds_the_counts_of_the_imported_spec(built, file):
    for name, total, trainable, output in [(m[1], *m[2:]) for m in MODELS if m[0] == file]:
        typed = compile_spec(import_keras((KERAS / file).read_text(), file, name).text, file)
        assert built[file][name] == [total, trainable, list(output)]
        assert (total, trainable, output) == (typed.params, typed.trainable, typed.output_shape)


@pytest.mark.parametrize("name", sorted(keras_layers.LAYERS))
def test_positional_order_is_keras_own(name):
    layer = getattr(keras().layers, name)
    parameters = [p for p in inspect.signature(layer.__init__).parameters if p not in ("self", "kwargs")]
    order = keras_layers.LAYERS[name][0]
    assert parameters[: len(order)] == list(order)
