"""Saved Keras models read as data: a `.keras` file (a zip holding `config.json`) or an `.h5` file
(its `model_config` attribute, through h5py). Nothing is imported from Keras or TensorFlow and no
code runs: the model's config is JSON, read layer by layer into the layer graph.

Read: Sequential and functional models (Keras 3, and Keras 2 / tf.keras layouts), models used as
layers (a Keras application as a backbone), `keras.ops` on tensors that a spec layer says
(`x + y`, `x * 0.5`, `x[..., :16]`). What the spec cannot say is refused naming the Keras layer.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from archspec.errors import PathError, SourceText, Span, UserError
from archspec.interop.imported import ImportedSpec
from archspec.interop.keras_graph import ACTIVATION_FUNCTIONS, LayerGraph, keras_kinds, write_spec
from archspec.layers import Untranslatable

KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")
MODEL_CLASSES = frozenset({"Functional", "Model", "Sequential"})
H5_INSTALL = "pip install 'cnn-arch[h5]'"
# `keras.ops` functions of one tensor and one number that a `rescale` line says: x*scale + offset.
CONSTANT_OPS = {
    "Add": lambda c: (1.0, c),
    "Subtract": lambda c: (1.0, -c),
    "Multiply": lambda c: (c, 0.0),
    "Divide": lambda c: (1.0 / c, 0.0),
    "TrueDivide": lambda c: (1.0 / c, 0.0),
}


def is_saved_model(name: str) -> bool:
    return name.lower().endswith(KERAS_SUFFIXES + H5_SUFFIXES)


def read_saved(path: str, input_shape: tuple[int, ...] | None = None) -> ImportedSpec:
    """The spec of the Keras model saved in `path` (`.keras` or `.h5`). `input_shape` (HxWxC)
    replaces its input shape. Raises `PathError` naming the Keras layer the spec cannot say."""
    return read_config(load_config(path), path, input_shape)


def read_config(config: dict, path: str, input_shape: tuple[int, ...] | None = None, how: str = "") -> ImportedSpec:
    """The spec of a model config (`config.json`'s content) read from `path`; `how` says how the
    config was obtained, for the spec's first line (default: read from the file)."""
    reader = _Reader(path, input_shape)
    try:
        outputs = reader.model(config, "", None)
        reader.current = ""  # what follows is about the whole model
        if len(outputs) != 1:
            names = ", ".join(reader.graph.describe(i) for i in outputs)
            raise Untranslatable(None, f"the model has {len(outputs)} outputs ({names}); a spec has one")
        inner = config.get("config")
        model = inner.get("name", "model") if isinstance(inner, dict) else "model"
        how = how or "by `cnn-arch import`"
        header = f"# Imported from {path} (model `{model}`) {how}; one line per Keras layer."
        text, owners = write_spec(reader.graph, outputs[0], header, _comment)
    except Untranslatable as problem:
        where = f"Keras layer {reader.current}: " if reader.current else ""
        raise PathError(path, where + problem.message, hint=problem.hint) from None
    # The file's places: one line per Keras layer (`conv2d_3 (Conv2D)`), as Netron lists them.
    listing = {index: number for number, index in enumerate(sorted(set(owners.values())), start=1)}
    graph = reader.graph.layers
    source = SourceText(path, "\n".join(_comment(graph[i]) for i in listing) + "\n")
    origins = {line: Span(listing[i], 1, len(source.line(listing[i])) + 1) for line, i in owners.items()}
    layers = {line: f"Keras layer `{graph[i].name}` ({graph[i].keras})" for line, i in owners.items()}
    return ImportedSpec(model, text, origins, source, Span(1, 1), layers)


def _comment(layer) -> str:
    """`conv2d_3 (Conv2D)`; a layer Keras trains not (`trainable=False`, a frozen backbone) says so:
    the spec has no frozen layers, so its trainable count includes them."""
    return f"{layer.name} ({layer.keras}{', frozen in Keras' if layer.frozen else ''})"


def load_config(path: str) -> dict:
    """The model config saved in a `.keras` or `.h5` file, as a dict."""
    file = Path(path)
    if not file.exists():
        raise PathError(path, "no such file")
    if file.is_dir():
        raise PathError(path, "is a folder, not a model file")
    suffix = file.suffix.lower()
    try:
        config = json.loads(_keras_config(path) if suffix in KERAS_SUFFIXES else _h5_config(path))
    except OSError as error:
        raise PathError(path, f"cannot read the file: {error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise PathError(path, f"the model config is not valid JSON ({error})") from None
    if not isinstance(config, (dict, list)):
        raise PathError(path, "the model config is not a Keras model")
    return config if isinstance(config, dict) else {"class_name": "Sequential", "config": config}


def _keras_config(path: str) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                raise PathError(path, "not a Keras model file: the archive holds no config.json")
            return archive.read("config.json").decode("utf-8")
    except zipfile.BadZipFile:
        raise PathError(
            path, "not a .keras file (not a zip archive)", hint="save the model with `model.save('model.keras')`"
        ) from None


def _h5_config(path: str) -> str:
    try:
        import h5py
    except ImportError:
        raise UserError("reading .h5 files needs h5py", hint=f"install it: {H5_INSTALL}") from None
    try:
        with h5py.File(path, "r") as file:
            value = file.attrs.get("model_config")
    except OSError:
        raise PathError(path, "not an HDF5 file") from None
    if value is None:
        raise PathError(
            path,
            "the file holds weights only (no `model_config`)",
            hint="save the whole model: `model.save('model.keras')` (or 'model.h5')",
        )
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class _Reader:
    def __init__(self, path: str, input_shape: tuple[int, ...] | None) -> None:
        self.path = path
        self.input_shape = input_shape
        self.graph = LayerGraph()
        self.current = ""  # the Keras layer being read, for errors
        self.frozen = 0  # how many enclosing models are frozen (`trainable=False`)

    def model(self, entry: dict, prefix: str, inputs: list[int] | None) -> list[int]:
        """Read a model (`{"class_name": ..., "config": ...}`) called on `inputs` (graph indices; None
        for the top model, which has its own inputs); return its outputs."""
        config = entry.get("config")
        if entry.get("class_name") == "Sequential" or isinstance(config, list):
            return [self.sequential(config, prefix, inputs)]
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise Untranslatable(None, f"`{entry.get('class_name')}` is not a Sequential or functional model")
        return self.functional(config, prefix, inputs)

    def sequential(self, config: Any, prefix: str, inputs: list[int] | None) -> int:
        layers = config if isinstance(config, list) else config.get("layers", [])
        if inputs is not None:
            current = inputs[0]
        else:
            first = layers[0] if layers else {}
            if first.get("class_name") == "InputLayer":
                current, layers = self.input_layer(first, prefix), layers[1:]
            else:
                shape = _sequential_input(config, first)
                self.current = f"`{prefix}{_name(first)}` ({first.get('class_name')})" if first else ""
                entry = {"class_name": "InputLayer", "config": {"batch_shape": shape, "name": "input"}}
                current = self.input_layer(entry, prefix)
        for layer in layers:
            if layer.get("class_name") == "InputLayer":
                continue
            current = self.apply(layer, prefix, [current], [current], {})[0]
        return current

    def functional(self, config: dict, prefix: str, inputs: list[int] | None) -> list[int]:
        produced: dict[tuple[str, int], list[int]] = {}  # (layer, node) -> its output tensors
        input_refs = _refs(config.get("input_layers"))
        if inputs is not None:
            if len(input_refs) != len(inputs):
                raise Untranslatable(None, f"a nested model takes {len(input_refs)} inputs, called with {len(inputs)}")
            for (name, node, _), index in zip(input_refs, inputs):
                produced[(name, node)] = [index]
        pending = list(config["layers"])
        while pending:
            waiting = []
            for layer in pending:
                name = _name(layer)
                nodes = _inbound(layer)
                if layer.get("class_name") == "InputLayer" or not nodes:
                    if (name, 0) not in produced:
                        produced[(name, 0)] = [self.input_layer(layer, prefix)]
                    continue
                if len(nodes) > 1:
                    self.current = f"`{prefix}{name}` ({layer.get('class_name')})"
                    raise Untranslatable(
                        None,
                        f"it is applied {len(nodes)} times (shared weights); a spec layer is used once",
                        hint="a spec writes each use as its own layer, with its own weights",
                    )
                resolved = self.arguments(nodes[0], produced)
                if resolved is None:
                    waiting.append(layer)
                    continue
                tensors, args, kwargs = resolved
                produced[(name, 0)] = self.apply(layer, prefix, tensors, args, kwargs)
            if len(waiting) == len(pending):
                names = ", ".join(f"`{_name(layer)}`" for layer in waiting[:5])
                raise Untranslatable(None, f"the layers {names} read tensors no layer makes")
            pending = waiting
        outputs = []
        for name, node, tensor in _refs(config.get("output_layers")):
            made = produced.get((name, node))
            if made is None or tensor >= len(made):
                raise Untranslatable(None, f"the model's output `{name}` is not made by any layer")
            outputs.append(made[tensor])
        return outputs

    def arguments(self, node: Any, produced: dict) -> tuple[list[int], list, dict] | None:
        """An inbound node's (input tensors, positional arguments, keyword arguments) with tensors
        as graph indices, or None while a tensor it reads is not made yet."""
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            try:
                args = [_value(a, produced) for a in node.get("args", [])]
                kwargs = {k: _value(v, produced) for k, v in (node.get("kwargs") or {}).items()}
            except KeyError:
                return None
        else:  # Keras 2: [[layer, node, tensor, kwargs], ...], one entry per input tensor
            try:
                tensors = [_Tensor(produced[(ref[0], ref[1])][ref[2]]) for ref in node]
            except KeyError:
                return None
            kwargs = next((ref[3] for ref in node if len(ref) > 3 and isinstance(ref[3], dict)), {})
            args = [tensors[0] if len(tensors) == 1 else tensors]
        tensors = [t.index for t in _tensors(args)]
        return tensors, args, kwargs

    def apply(self, layer: dict, prefix: str, tensors: list[int], args: list, kwargs: dict) -> list[int]:
        """Read one layer applied to `tensors`; return its output tensors."""
        name, class_name = _name(layer), layer.get("class_name", "")
        config = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        self.current = f"`{prefix}{name}` ({class_name})"
        frozen = config.get("trainable") is False
        if class_name in MODEL_CLASSES or "layers" in config:
            self.frozen += frozen
            try:
                return self.model(layer, f"{prefix}{name}/", tensors)
            finally:
                self.frozen -= frozen
        module = layer.get("module") or ""
        where = {"name": prefix + name, "frozen": frozen or self.frozen > 0}
        # a `keras.ops` function: its module says so in a .keras file; an .h5 file has no module,
        # but an operation's config, unlike a layer's, holds no `trainable`
        if (
            module.startswith("keras.src.ops")
            or class_name == "TFOpLambda"
            or (not module and "trainable" not in config)
        ):
            return [self.operation(class_name, config, args, where)]
        if not tensors:
            raise Untranslatable(None, "it reads no tensor")
        first = args[0] if args else None
        # a merge layer takes a list of tensors
        inputs = tuple(t.index for t in first if isinstance(t, _Tensor)) if isinstance(first, list) else (tensors[0],)
        if class_name == "Reshape":
            return [self.graph.reshape(config, inputs, **where)]
        if class_name == "CustomScaleLayer" and len(inputs) == 2:  # InceptionResNetV2's x + scale * residual
            scaled = self.graph.read("Rescaling", {"scale": config.get("scale")}, inputs[1:], "its scale", **where)
            return [self.graph.read("Add", {}, (inputs[0], scaled), class_name, **where)]
        if module and not module.startswith("keras") and class_name not in keras_kinds():
            raise Untranslatable(
                None,
                f"`{class_name}` is a custom layer class (module `{module}`): its code is not in the saved model",
                hint="`cnn-arch import --run` on the script that builds it reads the Keras layers it applies",
            )
        return [self.graph.read(class_name, config, inputs, **where)]

    def operation(self, class_name: str, config: dict, args: list, where: dict) -> int:
        """A `keras.ops` function applied in a functional model (saved as an operation node)."""
        tensors = [a for a in args if isinstance(a, _Tensor)]
        numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        if class_name == "TFOpLambda":
            raise Untranslatable(None, f"the TensorFlow operation `{config.get('function')}` has no spec equivalent")
        if class_name in CONSTANT_OPS and len(tensors) == 1 and len(numbers) == 1 and len(args) == 2:
            if class_name in ("Subtract", "Divide", "TrueDivide") and not isinstance(args[0], _Tensor):
                raise Untranslatable(None, f"`{class_name.lower()}` of a number by a tensor has no spec equivalent")
            scale, offset = CONSTANT_OPS[class_name](float(numbers[0]))
            label = f"keras.ops.{_snake(class_name)} by {numbers[0]!r}"
            return self.graph.read("Rescaling", {"scale": scale, "offset": offset}, (tensors[0].index,), label, **where)
        flat = list(_tensors(args))
        if class_name in keras_kinds() and flat and all(isinstance(a, (_Tensor, list)) for a in args):
            # an operation of the same name as a layer a kind reads (`ops.add`, `ops.concatenate`)
            config = {k: v for k, v in config.items() if k != "name"}
            label = f"keras.ops.{_snake(class_name)}"
            return self.graph.read(class_name, config, tuple(t.index for t in flat), label, **where)
        if class_name == "GetItem" and len(args) == 2 and isinstance(args[0], _Tensor):
            return self.graph.read("GetItem", {"key": args[1]}, (args[0].index,), "a slice x[...]", **where)
        if _snake(class_name) in ACTIVATION_FUNCTIONS and len(tensors) == len(args) == 1:
            config = {"activation": _snake(class_name)}
            label = f"keras.ops.{_snake(class_name)}"
            return self.graph.read("Activation", config, (tensors[0].index,), label, **where)
        if class_name == "Reshape" and tensors:
            shape = config.get("newshape", args[1] if len(args) > 1 else None)
            return self.graph.reshape({"target_shape": shape}, (tensors[0].index,), **where)
        raise Untranslatable(None, f"the operation `keras.ops.{_snake(class_name)}` has no spec equivalent")

    def input_layer(self, layer: dict, prefix: str) -> int:
        config = dict(layer.get("config") or {})
        self.current = f"`{prefix}{_name(layer)}` (InputLayer)"
        if self.input_shape is not None:  # --input replaces the saved shape
            config = {"batch_shape": (None, *self.input_shape)}
        return self.graph.read("InputLayer", config, (), name=prefix + _name(layer))


class _Tensor:
    """A tensor of the graph, as an argument of an inbound node."""

    def __init__(self, index: int) -> None:
        self.index = index


def _value(value: Any, produced: dict) -> Any:
    """An inbound node's argument: tensors become `_Tensor`s, Keras' serialized Python values their
    values (a KeyError while the tensor is not made yet)."""
    if isinstance(value, list):
        return [_value(v, produced) for v in value]
    if isinstance(value, dict):
        kind, config = value.get("class_name"), value.get("config") or {}
        if kind == "__keras_tensor__":
            name, node, tensor = config["keras_history"]
            return _Tensor(produced[(name, node)][tensor])
        if kind == "__slice__":
            return slice(config.get("start"), config.get("stop"), config.get("step"))
        if kind == "__ellipsis__":
            return Ellipsis
        if kind == "__tuple__":
            return tuple(_value(v, produced) for v in config.get("value", []))
        return {k: _value(v, produced) for k, v in value.items()}
    return value


def _tensors(args: Any):
    if isinstance(args, _Tensor):
        yield args
    elif isinstance(args, (list, tuple)):
        for item in args:
            yield from _tensors(item)


def _inbound(layer: dict) -> list:
    nodes = layer.get("inbound_nodes") or []
    return nodes if isinstance(nodes, list) else []


def _refs(value: Any) -> list[tuple[str, int, int]]:
    """`["name", 0, 0]` or a list of them (inputs and outputs of a functional config)."""
    if not value:
        return []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [(value[0], int(value[1]), int(value[2]))]
    return [ref for item in value for ref in _refs(item)]


def _name(layer: dict) -> str:
    return str(layer.get("name") or (layer.get("config") or {}).get("name") or layer.get("class_name", "layer"))


def _sequential_input(config: Any, first: dict) -> Any:
    """The batch input shape of a Sequential model saved without an InputLayer."""
    layer_config = first.get("config") or {}
    for shape in (
        layer_config.get("batch_input_shape"),
        layer_config.get("batch_shape"),
        config.get("build_input_shape") if isinstance(config, dict) else None,
        (first.get("build_config") or {}).get("input_shape"),
    ):
        if shape is not None:
            return shape
    return None


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
