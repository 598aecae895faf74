"""`--init-from`: the weights a run starts from, read from another cnn-arch run, a Keras `.keras` or
`.weights.h5`, an ONNX file's initializers or a PyTorch `.safetensors` state dict, and matched to the
spec's layers by position and shape.

Each file becomes a list of `SourceLayer`s (a layer's arrays, already in Flax's names and layouts:
`weight_layouts`) in the file's own order: a run's spec order, Keras' layer order (by depth in the
graph), an ONNX graph's node order, a state dict's module names in natural order. The spec's layers
are walked in the matching order (by depth in the weighted graph for Keras files) and each takes the
first unused source layer of its family (the same array names and ranks) whose shapes are all equal.
What is left is a mismatch: an error at the spec line (naming both shapes and `--reinit-mismatched`),
or with `--reinit-mismatched` a layer that keeps its fresh initialization, reported by spec line.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archspec.errors import PathError, UserError
from archspec.train import weight_layouts

REINIT_HINT = (
    "pass --reinit-mismatched to start the layers whose shapes differ afresh and keep the rest "
    "(Keras `skip_mismatch=True`), e.g. a new classifier head"
)


SOURCES_HINT = (
    "pass a cnn-arch run folder (or RUN/best, RUN/checkpoints/STEP), a Keras .keras or .weights.h5 file, "
    "an .onnx file or a PyTorch .safetensors state dict"
)


@dataclass
class SourceLayer:
    name: str  # as the file names it
    arrays: dict[str, np.ndarray]  # Flax names and layouts
    depth: int | None = None  # weighted layers on the longest path from the input, where the file has a graph

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(array.shape) for name, array in self.arrays.items()}

    @property
    def shown(self) -> str:
        """The name for a message, quoted: `predictions` (a run's layers are already `line 6` and the label in backticks)."""
        return self.name if "`" in self.name else f"`{self.name}`"


@dataclass
class Source:
    path: str
    layers: list[SourceLayer]
    by_depth: bool = False  # the file lists layers by depth in the graph (Keras): match the spec's alike


@dataclass
class TargetLayer:
    node: Any  # ir.Node
    module: str  # the model's module name (`conv_3`)
    shapes: dict[str, tuple[int, ...]]
    depth: int

    @property
    def where(self) -> str:
        return f"line {self.node.line} `{self.node.label}`"


@dataclass
class InitReport:
    """What `--init-from` did, for the run header."""

    source: str
    kept: int
    reinitialized: list[str] = field(default_factory=list)  # "line 40 `dense 2` (was 1000 units)"
    unused: list[str] = field(default_factory=list)  # layers of the file no spec layer took

    def lines(self) -> list[str]:
        plural = "s" if self.kept != 1 else ""
        parts = [f"kept {self.kept} layer{plural}"]
        if self.reinitialized:
            parts.append("re-initialized " + ", ".join(self.reinitialized))
        lines = [f"Weights from {self.source}: " + "; ".join(parts)]
        if self.unused:
            shown = ", ".join(self.unused[:5]) + (", ..." if len(self.unused) > 5 else "")
            lines.append(
                f"Not used: {len(self.unused)} layer{'s' if len(self.unused) > 1 else ''} of the file ({shown})"
            )
        return lines


def initial_model(source: str, typed, model, *, reinit_mismatched: bool):
    """`model` (steps.Model, freshly initialized) with the weights of `source` where they match; and
    the report. Raises SpecError at the first mismatched layer unless `reinit_mismatched`."""
    targets = target_layers(typed, model)
    found = read_source(source)
    pairs, unused = match(found, targets)
    mismatched = [(target, layer) for target, layer, same in pairs if not same]
    if mismatched and not reinit_mismatched:
        target, layer = min(mismatched, key=lambda pair: pair[0].node.id)
        raise typed.graph.error(target.node, _mismatch_message(source, target, layer), REINIT_HINT)
    if unused and not reinit_mismatched:
        raise UserError(
            f"--init-from {source}: {len(unused)} of its layers have no counterpart in the spec, the first "
            f"{unused[0].shown} ({_shapes(unused[0].arrays)})",
            hint=REINIT_HINT.replace("start the layers whose shapes differ afresh", "leave them out"),
        )
    chosen = {target.module: layer for target, layer, same in pairs if same}
    report = InitReport(
        source,
        len(chosen),
        [f"{target.where} ({_was(target, layer)})" for target, layer in sorted(mismatched, key=_node_id)],
        [layer.shown for layer in unused],
    )
    return _with_arrays(model, chosen), report


def _node_id(pair) -> int:
    return pair[0].node.id


# --- the spec's side ------------------------------------------------------------------------


def target_layers(typed, model) -> list[TargetLayer]:
    """The model's layers holding weights or statistics, in spec order, with their depth in the graph of
    weighted layers (inputs first)."""
    params, state = model.params["layers"], model.model_state["layers"]
    layers, depths = [], {}
    for node in typed.graph.nodes:
        module = f"{node.kind}_{node.id}"
        shapes = {name: tuple(array.shape) for name, array in _arrays(params.get(module), state.get(module)).items()}
        depth = max((depths[i] for i in node.inputs), default=0)
        if shapes:
            depth += 1
            layers.append(TargetLayer(node, module, shapes, depth))
        depths[node.id] = depth
    return layers


def _arrays(*trees) -> dict[str, Any]:
    """The float arrays of a module's parameter and state dicts by dotted name (its RNG streams left out)."""
    found = {}

    def walk(tree, prefix):
        for name, value in tree.items():
            if name == "rngs":
                continue
            if isinstance(value, dict):
                walk(value, f"{prefix}{name}.")
            elif np.issubdtype(np.dtype(value.dtype), np.floating):
                found[prefix + name] = value

    for tree in trees:
        if tree is not None:
            walk(tree, "")
    return found


def _with_arrays(model, chosen: dict[str, SourceLayer]):
    """`model` with the arrays of `chosen` (module name -> source layer) in place of its own."""
    import jax

    def replace(tree, module, prefix=""):
        out = {}
        for name, value in tree.items():
            if isinstance(value, dict):
                out[name] = replace(value, module, f"{prefix}{name}.") if name != "rngs" else value
            elif prefix + name in chosen[module].arrays:
                array = np.asarray(chosen[module].arrays[prefix + name], dtype=value.dtype)
                out[name] = jax.device_put(array, value.sharding)
            else:
                out[name] = value
        return out

    def layers(tree):
        return {
            **tree,
            "layers": {
                name: replace(value, name) if name in chosen else value for name, value in tree["layers"].items()
            },
        }

    return type(model)(layers(model.params), layers(model.model_state))


# --- matching -------------------------------------------------------------------------------


def _family(shapes: dict[str, tuple[int, ...]]) -> tuple:
    """What kind of layer the arrays make (their names and ranks): a conv's 4-D kernel and bias, a BatchNorm's four vectors."""
    return tuple(sorted((name, len(shape)) for name, shape in shapes.items()))


def match(found: Source, targets: list[TargetLayer]):
    """[(target, source layer or None, same shapes)] in the spec's order, and the unused source layers."""
    if found.by_depth:
        targets = sorted(targets, key=lambda t: (t.depth, t.node.id))
    layers = found.layers
    if found.by_depth and all(layer.depth is not None for layer in layers):
        layers = sorted(layers, key=lambda layer: layer.depth)  # stable: ties keep the file's order
    unused = list(layers)
    pairs = []
    for target in targets:
        taken = next((layer for layer in unused if layer.shapes == target.shapes), None)
        if taken is not None:
            unused.remove(taken)
        pairs.append([target, taken, taken is not None])
    # What each unmatched spec layer is compared with in the messages: the next unused layer of its family.
    for pair in pairs:
        if pair[1] is None:
            family = _family(pair[0].shapes)
            near = next((layer for layer in unused if _family(layer.shapes) == family), None)
            if near is None:
                near = next((layer for layer in unused if set(layer.arrays) & set(pair[0].shapes)), None)
            if near is not None:
                unused.remove(near)
            pair[1] = near
    pairs.sort(key=lambda pair: pair[0].node.id)
    return [tuple(pair) for pair in pairs], unused


def _shapes(arrays: dict) -> str:
    return ", ".join(f"{name} {_dims(array.shape)}" for name, array in sorted(arrays.items()))


def _dims(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _mismatch_message(source: str, target: TargetLayer, layer: SourceLayer | None) -> str:
    if layer is None:
        return f"--init-from {source} has no layer for {target.where} ({_target_shapes(target)})"
    ours, theirs = _difference(target, layer)
    return f"--init-from {source}: {target.where} has {ours}, but its layer {layer.shown} has {theirs}"


def _target_shapes(target: TargetLayer) -> str:
    return ", ".join(f"{name} {_dims(shape)}" for name, shape in sorted(target.shapes.items()))


def _difference(target: TargetLayer, layer: SourceLayer) -> tuple[str, str]:
    """The first array that differs, in words for both sides (`kernel 1280x2`, `kernel 1280x1000`)."""
    for name, shape in sorted(target.shapes.items(), key=lambda item: (-len(item[1]), item[0])):  # kernels first
        if name not in layer.arrays:
            return f"a `{name}` ({_dims(shape)})", f"none ({_shapes(layer.arrays)})"
        if tuple(layer.arrays[name].shape) != shape:
            return f"{name} {_dims(shape)}", f"{name} {_dims(layer.arrays[name].shape)}"
    extra = sorted(set(layer.arrays) - set(target.shapes))
    return f"no `{extra[0]}`", f"one ({_dims(layer.arrays[extra[0]].shape)})"


def _was(target: TargetLayer, layer: SourceLayer | None) -> str:
    """`was 1000 units`: what the file's layer had, in the words of the kind's width where it has one."""
    if layer is None:
        return "none in the file"
    width = target.node.layer.width_arg
    kernel = layer.arrays.get("kernel")
    if width is not None and kernel is not None and len(kernel.shape) == len(target.shapes.get("kernel", ())):
        return f"was {kernel.shape[-1]} {width}"
    return f"was {_shapes(layer.arrays)}"


# --- reading the files ----------------------------------------------------------------------


def read_source(source: str) -> Source:
    """The weighted layers of `source`: a run folder or checkpoint, `.keras`, `.weights.h5`, `.onnx`
    or `.safetensors`."""
    path = Path(source).expanduser()
    name = path.name.lower()
    if path.is_file():
        try:
            if name.endswith(".keras"):
                return _read_keras_archive(source, path)
            if name.endswith(".h5"):
                return _read_keras_weights(source, path)
            if name.endswith(".onnx"):
                return _read_onnx(source, path)
            if name.endswith(".safetensors"):
                return _read_safetensors(source, path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise PathError(source, f"cannot be read as weights ({_first_line(error)})") from None
        raise PathError(source, "is not a weights file --init-from reads", hint=SOURCES_HINT)
    if not path.exists() and not (path.name.isdigit() and path.parent.parent.is_dir()):
        raise PathError(source, "no such file or run folder", hint=SOURCES_HINT)
    return _read_run(source)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _read_run(source: str) -> Source:
    """A cnn-arch run's model, restored with its own spec's shapes (so orbax never sees a mismatch)."""
    from archspec.compile import compile_spec
    from archspec.train import run
    from archspec.train.checkpoint import BEST_DIR, LATEST_DIR
    from archspec.train.distributed import make_mesh
    from archspec.train.inference import abstract_model, restore_model

    path, which, step = Path(source), "best", None
    if path.name == BEST_DIR:
        path = path.parent
    elif path.name.isdigit() and path.parent.name == LATEST_DIR:
        path, which, step = path.parent.parent, "latest", int(path.name)
    config = run.saved_config(run.read(path))
    typed = compile_spec(config.spec_text, config.spec, config.input_shape)
    model, *_ = restore_model(path, abstract_model(typed, None, make_mesh()), which, step)
    model = type(model)(*(_to_numpy(tree) for tree in model))
    layers = [
        SourceLayer(f"line {t.node.line} `{t.node.label}`", _numpy_arrays(model, t.module), t.depth)
        for t in target_layers(typed, model)
    ]
    return Source(source, layers)


def _to_numpy(tree):
    import jax

    return jax.tree.map(
        lambda leaf: leaf if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else np.asarray(leaf), tree
    )


def _numpy_arrays(model, module: str) -> dict[str, np.ndarray]:
    return _arrays(model.params["layers"].get(module), model.model_state["layers"].get(module))


def _read_keras_archive(source: str, path: Path) -> Source:
    """A Keras 3 `.keras` file: config.json gives each layer's class, switches and inputs (so the graph's
    depths), model.weights.h5 its variables."""
    import io
    import json

    h5py = _import("h5py", "keras")
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(weights), "r") as file:
        layers: list[SourceLayer] = []
        _walk_keras_model(config, file, 0, layers)
    return Source(source, layers, by_depth=True)


def _walk_keras_model(model: dict, group, base_depth: int, out: list[SourceLayer]) -> int:
    """Add the weighted layers of Keras model `model` (config) stored in h5 `group`; return the
    depth of its output. Nested models (a base network called inside another) are walked in place."""
    config = model["config"]
    by_name = {}
    if "layers" in group:
        for child in group["layers"].values():
            if "vars" in child and "name" in child["vars"].attrs:
                by_name[child["vars"].attrs["name"]] = child
    depths: dict[str, int] = {}
    last = base_depth
    for layer in config["layers"]:
        name = layer.get("name") or layer["config"]["name"]
        inbound = _inbound_names(layer.get("inbound_nodes", []))
        if "inbound_nodes" in layer:
            depth = max((depths[n] for n in inbound if n in depths), default=base_depth)
        else:  # a Sequential model: each layer reads the one before
            depth = last
        child = by_name.get(name)
        if layer["class_name"] in ("Functional", "Sequential", "Model") and child is not None:
            depth = _walk_keras_model(layer, child, depth, out)
        elif child is not None:
            arrays = [np.asarray(child["vars"][str(i)]) for i in range(len(child["vars"]))]
            kind = weight_layouts.keras_class(layer["class_name"])
            converted = weight_layouts.keras_vars(kind, arrays, layer["config"]) if arrays else None
            if converted:
                depth += 1
                out.append(SourceLayer(name, converted, depth))
        depths[name] = last = depth
    return last


def _inbound_names(nodes) -> list[str]:
    """The layer names a Keras 3 layer's inbound nodes read (`keras_history`), at any nesting."""
    names = []

    def walk(value):
        if isinstance(value, dict):
            history = value.get("config", {}).get("keras_history") if value.get("class_name") else None
            if history:
                names.append(history[0])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(nodes)
    return names


def _read_keras_weights(source: str, path: Path) -> Source:
    """A Keras 3 `.weights.h5` file: no architecture, so each layer's class comes from its group's name
    (`batch_normalization_3`), and the layers of a class in the order Keras stored them."""
    h5py = _import("h5py", "keras")
    layers: list[SourceLayer] = []
    with h5py.File(path, "r") as file:
        if "layers" not in file:
            raise ValueError("no `layers` group: not a Keras 3 .weights.h5 file (Keras 2 .h5 files are not read)")
        _walk_keras_groups(file, layers)
    return Source(source, layers, by_depth=True)


def _walk_keras_groups(group, out: list[SourceLayer]) -> None:
    for key in sorted(group["layers"], key=_natural):
        child = group["layers"][key]
        if "layers" in child:  # a nested model
            _walk_keras_groups(child, out)
            continue
        if "vars" not in child or not len(child["vars"]):
            continue
        arrays = [np.asarray(child["vars"][str(i)]) for i in range(len(child["vars"]))]
        converted = weight_layouts.keras_vars(re.sub(r"_\d+$", "", key), arrays, None)
        if converted:
            out.append(SourceLayer(str(child["vars"].attrs.get("name", key)), converted))


def _natural(name: str) -> tuple:
    """`layer10` after `layer9`; `conv2d` before `conv2d_1`."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name))


def _read_safetensors(source: str, path: Path) -> Source:
    """A PyTorch state dict saved as safetensors: parameters and buffers grouped by module (`layer1.0.conv1`),
    modules in natural name order (PyTorch's registration order for torchvision's numbered modules)."""
    safetensors_numpy = _import("safetensors.numpy", "train")
    try:
        tensors = safetensors_numpy.load_file(str(path))
    except Exception as error:  # safetensors raises its own SafetensorError for damaged headers
        raise ValueError(_first_line(error)) from None
    modules: dict[str, dict[str, np.ndarray]] = {}
    for name, array in tensors.items():
        module, _, parameter = name.rpartition(".")
        modules.setdefault(module, {})[parameter] = array
    layers = []
    for module in sorted(modules, key=lambda m: tuple(_natural_part(p) for p in m.split("."))):
        converted = weight_layouts.torch_vars(modules[module])
        if converted:
            layers.append(SourceLayer(module, converted))
    return Source(source, layers)


def _natural_part(part: str) -> tuple:
    return (0, int(part), "") if part.isdigit() else (1, 0, part)


def _read_onnx(source: str, path: Path) -> Source:
    """An ONNX graph's initializers, by the operator that reads them, in node order, with depths."""
    onnx = _import("onnx", "interop")
    from google.protobuf.message import DecodeError
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except DecodeError as error:
        raise ValueError(f"not an ONNX model: {error}") from None
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    depth_of: dict[str, int] = {}
    layers = []
    for index, node in enumerate(graph.node):
        depth = max((depth_of.get(name, 0) for name in node.input if name not in constants), default=0)
        arrays = {i: constants[name] for i, name in enumerate(node.input) if name in constants}
        converted = None
        if node.op_type == "Gemm" and 1 in arrays:
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            converted = weight_layouts.onnx_gemm(arrays, trans_b)
        elif node.op_type in weight_layouts.ONNX and 1 in arrays:
            row = weight_layouts.ONNX[node.op_type]
            converted = {row[i].flax: row[i].convert(array) for i, array in arrays.items() if i in row}
            if node.op_type == "MatMul":
                bias = _following_bias(node, consumers, constants)
                if bias is not None:
                    converted["bias"] = bias
        if converted:
            depth += 1
            layers.append(SourceLayer(node.name or f"{node.op_type} {index}", converted, depth))
        for name in node.output:
            depth_of[name] = depth
    return Source(source, layers)


def _following_bias(node, consumers, constants):
    """The 1-D constant an Add after a MatMul adds (a dense layer's bias), or None."""
    for consumer in consumers.get(node.output[0], []):
        if consumer.op_type == "Add":
            for name in consumer.input:
                if name in constants and constants[name].ndim == 1:
                    return constants[name]
    return None


def _import(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise UserError(
            f"--init-from needs the `{package}` package to read this file",
            hint=f"pip install 'cnn-arch[{extra}]'",
        ) from None
