"""Keras' own counts for the corpus: each script is run with Keras 3 on its JAX backend (as written:
this module never reads it), and the model it holds is measured with `count_params()`; its config
is kept too (configs/, as `model.save` would write it) for the saved-model reader's side of the test.

    KERAS_BACKEND=jax python tests/interop/keras_corpus/reference.py   # rewrites reference.json

`tensorflow.keras` imports resolve to Keras 3 (no TensorFlow is installed); a subclassed model is
called on an input of the shape corpus.json gives.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import os
import platform
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent
CONFIGS = HERE / "configs"  # each functional or Sequential model's config, as Keras saves it


def measure(path: Path, entry: dict) -> dict:
    import keras

    from tests.interop.keras_build import tensorflow_keras

    keras.utils.clear_session()
    with tensorflow_keras(keras), contextlib.redirect_stdout(io.StringIO()):
        found = runpy.run_path(str(path), run_name="__main__")
    models = {k: v for k, v in found.items() if isinstance(v, keras.Model)}
    name = entry.get("model") or list(models)[-1]
    model = models[name]
    if getattr(model, "inputs", None):
        output = model.outputs[0].shape
    else:  # a subclassed model: called on an input, as its guide builds one
        shape = tuple(int(d) for d in entry["input"].split("x"))
        output = model(keras.Input(shape=shape)).shape
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    if isinstance(model, (keras.Sequential, keras.src.models.functional.Functional)):
        save_config(model, CONFIGS / f"{path.stem}.json.gz")
    return {
        "model": name,
        "count_params": model.count_params(),
        "trainable": trainable,
        "output_shape": list(output[1:]),
    }


def save_config(model, path: Path) -> None:
    """The model's config.json, as `model.save` writes it (Keras' own serializer), gzipped."""
    from keras.src.saving import serialization_lib

    text = json.dumps(serialization_lib.serialize_keras_object(model), sort_keys=True)
    path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.path.insert(0, str(HERE.parents[2]))  # the repository root, for tests.interop.keras_build
    import jax
    import keras

    corpus = json.loads((HERE / "corpus.json").read_text(encoding="utf-8"))
    CONFIGS.mkdir(exist_ok=True)
    measured = {}
    for file, entry in corpus["files"].items():
        measured[file] = measure(HERE / file, entry)
        print(file, measured[file]["count_params"], flush=True)
    reference = {
        "about": "Written by reference.py (do not edit): Keras' count_params() of each corpus script's model.",
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "models": measured,
    }
    (HERE / "reference.json").write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
