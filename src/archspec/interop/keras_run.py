"""`cnn-arch import --run`: run a Keras script in a subprocess, with Keras on its JAX backend, and
read the model it builds through the saved-model reader (its config, as `model.save` writes it).

This runs the user's file: what static reading cannot follow (any Python at all) works, at the
cost of Keras' start-up and of whatever the script does. Training is not run: the first call to
`fit`, `evaluate` or `predict` stops the script there, and the model it was called on is the one
read. Otherwise the model is the last `keras.Model` the script's top level holds (or the one named
by `--model`). A failure of the script is reported at its own line with its own message.

The parent side (`run_script`) never imports Keras; the child side is `python -m` this module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from archspec.errors import PathError, SourceText, Span, SpecError, UserError
from archspec.train.compile_cache import QUICK_CPU_COMPILE, as_xla_flags

KERAS_INSTALL = "pip install 'cnn-arch[keras]'"
NO_KERAS = 3  # the child's exit code when Keras is not installed
SCRIPT_FAILED = 4  # ... when the script raised
# The child's XLA compiles as cnn-arch's one-off functions do, without optimizing (the weights Keras
# draws as it builds a model are thrown away): on JAX each weight's initializer compiles on its own, and
# segmentation-models' ResNet-18 U-Net ran in 6.9 s instead of 17.3 s (8.5 s with the optimization
# level alone), to the same config and count.
QUICK_XLA_FLAGS = as_xla_flags(QUICK_CPU_COMPILE)
UNKNOWN_FLAG = "Unknown flag in XLA_FLAGS"  # XLA's fatal error for a flag it does not have


def run_script(path: str, model: str | None = None, input_shape: tuple[int, ...] | None = None) -> dict:
    """Run `path` in a subprocess and return what it built: {"config": the model's config as in
    config.json, "name": the variable holding it, "count_params": Keras' count}."""
    script = Path(path)
    if not script.is_file():
        raise PathError(path, "no such file")
    with tempfile.TemporaryDirectory(prefix="cnn-arch-run-") as folder:
        result_path = Path(folder) / "model.json"
        command = [sys.executable, "-m", "archspec.interop.keras_run", str(script.resolve()), str(result_path)]
        command += [model or "", "x".join(map(str, input_shape)) if input_shape else ""]
        env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
        quick = {**env, "XLA_FLAGS": f"{env.get('XLA_FLAGS', '')} {QUICK_XLA_FLAGS}".strip()}
        try:
            for environ in (quick, env):  # an XLA without one of the flags stops at its start: then as it is
                done = subprocess.run(command, capture_output=True, text=True, env=environ, cwd=script.resolve().parent)
                if UNKNOWN_FLAG not in done.stderr:
                    break
        except OSError as error:
            raise UserError(f"cannot start Python to run {path}: {error}") from None
        if done.returncode == NO_KERAS:
            raise UserError("`--run` needs Keras to run the script", hint=f"install it: {KERAS_INSTALL}")
        if done.returncode == SCRIPT_FAILED or not result_path.exists():
            raise _script_error(path, done.stderr)
        return json.loads(result_path.read_text(encoding="utf-8"))


def read_run(path: str, model: str | None = None, input_shape: tuple[int, ...] | None = None):
    """The spec of the model script `path` builds when run (an `ImportedSpec`, layers named as
    Keras names them), and Keras' own parameter count of that model."""
    from archspec.interop.keras_saved import read_config

    built = run_script(path, model, input_shape)
    how = f"as running it builds it (`{built['name']}`, `cnn-arch import --run`)"
    return read_config(built["config"], path, input_shape, how), built["count_params"]


def _script_error(path: str, stderr: str) -> UserError:
    """The script's own error, at its own line when the child could say it (its last line is JSON)."""
    lines = stderr.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report = {}
    if not isinstance(report, dict) or "message" not in report:
        tail = "\n".join(lines[-20:])
        return UserError(f"running {path} failed", hint=f"its output ended with:\n{tail}" if tail else None)
    message = f"running the script failed: {report['message']}"
    hint = report.get("hint")
    if report.get("line"):
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        span = Span(report["line"], report.get("column") or 1)
        return SpecError(message, span, hint=hint, source=SourceText(path, text))
    return PathError(path, message, hint=hint)


# --- the child process -------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised by `fit`/`evaluate`/`predict` to stop the script at its first training call."""

    def __init__(self, model) -> None:
        self.model = model


def _child(script: str, result: str, wanted: str, input_text: str) -> int:
    try:
        import keras
    except ImportError:
        return NO_KERAS
    _tensorflow_keras(keras)
    keras2_paths(keras)
    stopped: list = []

    def stop(self, *args, **kwargs):
        data = args[0] if args else kwargs.get("x")
        shape = getattr(data, "shape", None)  # the data says the input shape of a model never built
        stopped.append((self, tuple(shape[1:]) if shape is not None and len(shape) > 1 else None))
        raise _Stop(self)

    for method in ("fit", "evaluate", "predict"):
        setattr(keras.Model, method, stop)
    sys.argv = [script]
    sys.path.insert(0, str(Path(script).parent))
    # its own namespace, so what it built is still there should it stop at `fit` or `sys.exit()`
    found: dict = {"__name__": "__main__", "__file__": script, "__builtins__": __builtins__}
    try:
        exec(compile(Path(script).read_text(encoding="utf-8"), script, "exec"), found)
    except _Stop:
        pass
    except SystemExit as error:
        if error.code not in (0, None):
            _report(error, script)
            return SCRIPT_FAILED
    except BaseException as error:  # the user's script failed: its own error, at its own line
        _report(error, script)
        return SCRIPT_FAILED
    model, name = _chosen(keras, [m for m, _ in stopped], found, wanted)
    if not model.built or not _is_functional(keras, model):
        data_shape = next((s for m, s in stopped if m is model), None)
        model = _traced(keras, model, input_text or "x".join(map(str, data_shape or ())))
    from keras.src.saving import serialization_lib

    config = serialization_lib.serialize_keras_object(model)
    Path(result).write_text(
        json.dumps({"config": config, "name": name, "count_params": model.count_params()}, default=_plain),
        encoding="utf-8",
    )
    return 0


def _report(error: BaseException, script: str) -> None:
    """The script's error as the last line of stderr (JSON), at the script's own line."""
    import traceback

    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == script]
    last = frames[-1] if frames else None
    line = last.lineno if last else getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    report = {
        "message": f"{type(error).__name__}: {error}",
        "line": line,
        "column": (last.colno + 1) if last is not None and last.colno is not None else None,
    }
    if isinstance(error, ModuleNotFoundError) and error.name and error.name.split(".")[0] == "tensorflow":
        report["hint"] = "TensorFlow is not installed; `--run` runs Keras 3 on JAX (`tf.keras` maps to it)"
    sys.stderr.write("\n" + json.dumps(report) + "\n")


def _chosen(keras, stopped: list, found: dict, wanted: str):
    models = {k: v for k, v in found.items() if isinstance(v, keras.Model) and not k.startswith("_")}
    if wanted:
        if wanted not in models:
            _fail(f"the script's top level holds no keras.Model named `{wanted}`", models)
        return models[wanted], wanted
    if stopped:
        model = stopped[0]
        return model, next((k for k, v in models.items() if v is model), model.name)
    if not models:
        _fail("the script built no keras.Model at its top level (nor called `fit` on one)", models)
    name = list(models)[-1]
    return models[name], name


def _fail(message: str, models: dict) -> None:
    hint = f"models: {', '.join(models)}" if models else "assign the model to a variable at the top level"
    sys.stderr.write("\n" + json.dumps({"message": message, "hint": hint}) + "\n")
    raise SystemExit(SCRIPT_FAILED)


def _is_functional(keras, model) -> bool:
    return isinstance(model, (keras.Sequential, keras.src.models.functional.Functional))


def _traced(keras, model, input_text: str):
    """A subclassed model as a functional one: its `call` applied to a symbolic input, so each layer
    it uses is a node of the graph."""
    shape = tuple(int(d) for d in input_text.split("x")) if input_text else _built_shape(model)
    if shape is None:
        _fail("the model is a subclass that was never built, so its input shape is unknown", {})
    inputs = keras.Input(shape=shape)
    original = keras.layers.Layer.__call__
    keras.layers.Layer.__call__ = _open_call(keras, original)
    try:
        # `call` itself, not `model(...)`: each layer it applies becomes a node (calling the model
        # would make it one opaque node)
        outputs = model.call(inputs) if not isinstance(model, keras.Sequential) else model(inputs)
    finally:
        keras.layers.Layer.__call__ = original
    return keras.Model(inputs, outputs, name=model.name)


def _open_call(keras, original):
    """`Layer.__call__` that opens the user's own layer classes: one whose weights all belong to the
    Keras layers it holds runs its `call`, so those layers become nodes; any other is applied as is
    (and the reader refuses it by its class name)."""

    def call(self, *args, **kwargs):
        if type(self).__module__.startswith("keras.") or not args or not keras.KerasTensor.__instancecheck__(args[0]):
            return original(self, *args, **kwargs)
        try:
            if not self.built:
                self.build(args[0].shape)
            inner = {id(w) for layer in self._flatten_layers(include_self=False) for w in layer.weights}
        except Exception:  # a layer this cannot open is applied as is
            return original(self, *args, **kwargs)
        if any(id(w) not in inner for w in self.weights):  # weights of its own: not layers of the spec
            return original(self, *args, **kwargs)
        return self.call(*args, **kwargs)

    return call


def _built_shape(model):
    config = model.get_build_config() if hasattr(model, "get_build_config") else None
    shape = (config or {}).get("input_shape")
    if isinstance(shape, (list, tuple)) and len(shape) > 1 and all(isinstance(d, int) for d in shape[1:]):
        return tuple(shape[1:])
    return None


def _tensorflow_keras(keras) -> None:
    """`import tensorflow as tf; tf.keras...` and `from tensorflow.keras import layers` resolve to
    Keras 3 when TensorFlow is not installed (anything else of TensorFlow fails as it would)."""
    import importlib.util
    import types

    if importlib.util.find_spec("tensorflow") is not None:
        return
    from keras.src.utils import module_utils

    module_utils.tensorflow.available  # noqa: B018  (Keras settles "no TensorFlow" before the stand-in exists)
    shim = types.ModuleType("tensorflow")
    shim.keras = keras
    shim.__path__ = []  # a package, so `tensorflow.keras.layers` imports
    sys.modules.update({"tensorflow": shim, "tensorflow.keras": keras})
    for name in ("layers", "models", "applications", "backend", "activations", "regularizers", "initializers"):
        if hasattr(keras, name):
            sys.modules[f"tensorflow.keras.{name}"] = getattr(keras, name)


# Keras 2 functions Keras 3 kept under another path: (module, name) -> where Keras 3 has it.
KERAS2_PATHS = {
    ("keras.engine.topology", "get_source_inputs"): "utils.get_source_inputs",
    ("keras.engine", "get_source_inputs"): "utils.get_source_inputs",
    ("keras.utils.layer_utils", "get_source_inputs"): "utils.get_source_inputs",
    ("keras.utils.data_utils", "get_file"): "utils.get_file",
    ("keras.utils.generic_utils", "get_custom_objects"): "utils.get_custom_objects",
    ("keras.backend", "int_shape"): "ops.shape",
}


def keras2_paths(keras) -> None:
    """Keras-2-era scripts import functions from modules Keras 3 removed (`keras.engine.topology`,
    `keras.utils.generic_utils`): those imports find the same function where Keras 3 keeps it. Only
    functions Keras 3 still has are aliased; anything else fails as it would."""
    import types

    for (module, name), target in sorted(KERAS2_PATHS.items(), key=lambda item: item[0][0].count(".")):
        owner, attribute = target.split(".")
        function = getattr(getattr(keras, owner), attribute)
        found = sys.modules.get(module)
        if found is None:
            found = sys.modules[module] = types.ModuleType(module)
            parent, _, child = module.rpartition(".")
            setattr(sys.modules.get(parent) or keras, child, found)
        if not hasattr(found, name):
            setattr(found, name, function)


def _plain(value):
    """JSON for what Keras' config holds besides JSON values (tuples are lists already)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:5]))
