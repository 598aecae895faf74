"""Keras' own counts for the corpus: each entry's call runs in its module of the installed package,
with Keras 3 on its JAX backend, and the model it builds is measured with `count_params()`.

    KERAS_BACKEND=jax python tests/interop/keras_corpus/reference.py [ENTRY ...]   # rewrites reference.json
                                                                  # (only those entries, when named)

No TensorFlow is installed. Keras-2-era code meets Keras 3 here as `cnn-arch import --run` runs it
(`tensorflow.keras` is Keras 3; functions Keras 3 moved are found where it keeps them: keras_run's
`keras2_paths`), plus four stand-ins of this script's own, none of which builds a layer, so the
model is the package's code as written: `KerasTensor.get_shape()` as `.shape` (TensorFlow's
spelling, which keras-unet's attention gate uses), `tensorflow.math`/`expand_dims`/`compat.v1.image` as
`keras.ops` (keras-unet-collection imports them for activations and resizing the corpus' models do
not use), `ImageDataGenerator` (keras-unet imports it for data augmentation) as a class that fails
if used, and layer names holding `/` (keras-vggface's `conv1/7x7_s2`, which Keras 3 refuses) with
`_` instead. A package module that cannot be imported without TensorFlow (mtcnn's package) has its
file run alone. What still fails is recorded with its error instead of counts.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import os
import platform
import runpy
import sys
import types
from pathlib import Path

HERE = Path(__file__).parent


@contextlib.contextmanager
def stand_ins(keras):
    from keras.src.ops import operation

    shim = sys.modules["tensorflow"]
    shim.math, shim.expand_dims = keras.ops, keras.ops.expand_dims
    v1 = types.SimpleNamespace(image=keras.ops.image)
    shim.compat = types.SimpleNamespace(v1=v1)
    added = {"tensorflow.math": keras.ops, "tensorflow.compat": shim.compat, "tensorflow.compat.v1": v1}
    sys.modules.update(added)

    class ImageDataGenerator:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("ImageDataGenerator is not in Keras 3")

    keras.preprocessing.image.ImageDataGenerator = ImageDataGenerator
    keras.KerasTensor.get_shape = lambda self: TensorShape(self.shape)
    original = operation.Operation.__init__

    def named(self, name=None, **kwargs):
        original(self, name=name.replace("/", "_") if isinstance(name, str) else name, **kwargs)

    operation.Operation.__init__ = named
    try:
        yield
    finally:
        operation.Operation.__init__ = original
        for name in added:
            sys.modules.pop(name, None)


class TensorShape(tuple):
    """TensorFlow's shape object, as far as Keras-2-era model code uses it."""

    def as_list(self) -> list:
        return list(self)


def module_name(file: str) -> str:
    parts = file.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def measure(entry: dict) -> dict:
    import keras

    from archspec.interop.keras_run import keras2_paths
    from tests.interop.keras_build import installed_file, tensorflow_keras

    keras.utils.clear_session()
    with tensorflow_keras(keras), contextlib.redirect_stdout(io.StringIO()):
        keras2_paths(keras)
        with stand_ins(keras):
            try:
                namespace = dict(vars(importlib.import_module(module_name(entry["file"]))))
            except ImportError:  # the package needs TensorFlow to import: the file alone
                namespace = runpy.run_path(str(installed_file(entry)), run_name=module_name(entry["file"]))
            try:
                exec(entry["call"], namespace)
            except Exception as error:
                return {"keras_error": f"{type(error).__name__}: {error}"}
    model = namespace[entry.get("model", "model")]
    outputs = getattr(model, "outputs", None) or []
    return {
        "count_params": model.count_params(),
        "trainable": sum(math.prod(w.shape) for w in model.trainable_weights),
        "output_shape": list(outputs[0].shape[1:]) if outputs else None,
    }


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.path.insert(0, str(HERE.parents[2]))  # the repository root, for tests.interop.keras_build
    import jax
    import keras

    corpus = json.loads((HERE / "corpus.json").read_text(encoding="utf-8"))
    path = HERE / "reference.json"
    kept = json.loads(path.read_text(encoding="utf-8")) if sys.argv[1:] and path.exists() else {}
    measured, versions = kept.get("models", {}), kept.get("packages", {})
    for name, entry in corpus["files"].items():
        if sys.argv[1:] and name not in sys.argv[1:]:
            continue
        measured[name] = measure(entry)
        versions[entry["package"]] = _version(entry["package"])
        print(name, measured[name], flush=True)
    reference = {
        "about": "Written by reference.py (do not edit): Keras' count_params() of the model each corpus entry builds.",
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "packages": versions,
        "models": {name: measured[name] for name in corpus["files"] if name in measured},
    }
    path.write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
