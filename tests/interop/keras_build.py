"""Keras 3 on the JAX backend (no TensorFlow), for the tests that build the same code with Keras."""

from __future__ import annotations

import contextlib
import io
import math
import os
import runpy
import sys
import types
from pathlib import Path


def keras():
    """Keras, imported with the JAX backend (in a process that has not imported it with another)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras as module

    assert module.backend.backend() == "jax"
    return module


@contextlib.contextmanager
def tensorflow_keras(module):
    """`tensorflow.keras` imports resolve to Keras 3 while the block runs, and only then: a stand-in
    `tensorflow` left in sys.modules makes other libraries (orbax's etils) think TensorFlow is there."""
    shim = types.ModuleType("tensorflow")
    shim.keras = module
    added = {"tensorflow": shim, "tensorflow.keras": module, "tensorflow.keras.layers": module.layers}
    added = {name: value for name, value in added.items() if name not in sys.modules}
    sys.modules.update(added)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def run_file(path, module=None) -> dict:
    """Run a Keras model file as a script with `module` (default: Keras on JAX) as its `keras` and
    `tensorflow.keras` (its folder first on the path, for the modules beside it; its `model.summary()`
    output swallowed) and return its globals."""
    folder = str(Path(path).parent)
    before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        with tensorflow_keras(module or keras()), contextlib.redirect_stdout(io.StringIO()):
            return runpy.run_path(str(path))
    finally:
        sys.path.remove(folder)
        for name in set(sys.modules) - before:  # the script's own modules, not Keras' or JAX's
            if getattr(sys.modules[name], "__file__", None) and sys.modules[name].__file__.startswith(folder):
                del sys.modules[name]


def counts(model, output=None) -> tuple[int, int, tuple]:
    """(total, trainable, output shape without the batch) as Keras reports them; `output`: the
    tensor a subclassed model (which has no `outputs`) gave when the script called it on an input."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    output = output if output is not None else model.outputs[0]
    return model.count_params(), trainable, tuple(output.shape[1:])


def installed_file(entry: dict) -> Path:
    """The file of a corpus entry (keras_corpus/corpus.json) in the installed package: located, not
    imported (`find_spec` of a top-level name runs none of its code)."""
    import importlib.util

    top = entry["file"].split("/")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        raise LookupError(f"{entry['package']} is not installed (pip install -e '.[test]')")
    return Path(spec.origin).parent.parent / entry["file"]


def corpus_text(entry: dict) -> str:
    """The entry's file as installed, with the call that builds its model appended."""
    text = installed_file(entry).read_text(encoding="utf-8")
    return f"{text.rstrip()}\n\n\n# the call of tests/interop/keras_corpus/corpus.json\n{entry['call']}\n"


# Runs Keras files on Keras' numpy backend and prints the counts of every model each one builds.
_COUNTS = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "numpy"
sys.path.insert(0, sys.argv[1])
import keras
from tests.interop.keras_build import counts, run_file
assert keras.backend.backend() == "numpy"
found = {}
for path in sys.argv[2:]:
    built = run_file(path, keras)
    outputs = built.get("outputs")  # what a subclassed model gave when the script called it
    found[path] = {name: counts(value, outputs) for name, value in built.items() if isinstance(value, keras.Model)}
print(json.dumps(found))
"""


def built_counts(paths) -> dict[str, dict[str, list]]:
    """{path: {variable: [total, trainable, output shape]}} of the Keras models each file builds, as
    Keras builds them on its numpy backend, in a subprocess: the same layers and counts as on JAX,
    whose initializers compile an XLA program per weight shape (tens of seconds for a few models)."""
    import json
    import subprocess

    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _COUNTS, str(root), *map(str, paths)], capture_output=True, text=True, cwd=root
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])
