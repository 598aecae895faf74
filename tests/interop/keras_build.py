"""Keras 3 on the JAX backend (no TensorFlow), for the tests that build the same code with Keras."""

from __future__ import annotations

import contextlib
import io
import math
import os
import runpy
import sys
import types


def keras():
    """Keras, imported with the JAX backend; `tensorflow.keras` imports resolve to it."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras as module

    assert module.backend.backend() == "jax"
    shim = types.ModuleType("tensorflow")
    shim.keras = module
    sys.modules.setdefault("tensorflow", shim)
    sys.modules.setdefault("tensorflow.keras", module)
    sys.modules.setdefault("tensorflow.keras.layers", module.layers)
    return module


def run_file(path) -> dict:
    """Run a Keras model file (its `model.summary()` output swallowed) and return its globals."""
    keras()
    with contextlib.redirect_stdout(io.StringIO()):
        return runpy.run_path(str(path))


def counts(model) -> tuple[int, int, tuple]:
    """(total, trainable, output shape without the batch) as Keras reports them."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return model.count_params(), trainable, tuple(model.outputs[0].shape[1:])
