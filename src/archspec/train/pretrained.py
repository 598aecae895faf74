"""`--init-from`: the weights a run starts from, read from another cnn-arch run, a Keras `.keras` or
`.weights.h5`, an ONNX file's initializers or a PyTorch `.safetensors` state dict, and matched to the
spec's layers by position and shape.

Each file becomes a list of `SourceLayer`s (a layer's arrays as the file stores them) in the file's
own order: a run's spec order, Keras' layer order (by depth in the graph), an ONNX graph's node order,
a state dict's module names in natural order. What a foreign layer's arrays are is its layer kind's
to say (`LayerKind.weights_from_keras`, `weights_from_pytorch`, `weights_from_onnx`, in the kind's
module): the spec's layers are walked in the matching order (by depth in the weighted graph for Keras
files) and each takes the first unused source layer its kind reads with arrays of the same shapes
(PyTorch: the modules, in order, its kind's arrays come from). What is left is a mismatch: an error
at the spec line (naming both shapes and `--reinit-mismatched`), or with `--reinit-mismatched` a
layer that keeps its fresh initialization, reported by spec line.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archspec.errors import PathError, UserError
from archspec.layers import REGISTRY, LayerKind, OnnxNode
from archspec.layers.base import flattened_order
from archspec.words import REPEAT

REINIT_HINT = (
    "pass --reinit-mismatched to start the layers whose shapes differ afresh and keep the rest "
    "(Keras `skip_mismatch=True`), e.g. a new classifier head"
)


SOURCES_HINT = (
    "pass a cnn-arch run folder (or RUN/best, RUN/checkpoints/STEP), a Keras .keras or .weights.h5 file, "
    "an .onnx file or a PyTorch .safetensors state dict"
)


# (kind, part, order) -> the arrays in Flax's names and layouts as module `part` of that kind holds
# them (None: not that kind's), `order` the target's input features after a flatten (`LayerKind.weights_from_pytorch`)
Reading = Callable[[LayerKind, int, Any], "dict[str, np.ndarray] | None"]


@dataclass
class SourceLayer:
    name: str  # as the file names it
    arrays: dict[str, np.ndarray]  # as the file stores them, by the file's names (for messages)
    read: Reading
    depth: int | None = None  # weighted layers on the longest path from the input, where the file has a graph
    op: str = ""  # ONNX: its node's op type
    read_by: tuple[str, ...] = ()  # ONNX: the op types of the nodes reading its output

    @property
    def shown(self) -> str:
        """The name for a message, quoted: `predictions` (a run's layers are already `line 6` and the label in backticks)."""
        return self.name if "`" in self.name else f"`{self.name}`"


@dataclass
class Source:
    path: str
    framework: str  # "run" (a cnn-arch run), or the key of `LayerKind.refusals`: "keras", "pytorch", "onnx"
    layers: list[SourceLayer]
    by_depth: bool = False  # the file lists layers by depth in the graph (Keras): match the spec's alike

    def parts(self, kind: LayerKind) -> int:
        """How many of the file's layers one layer of `kind` takes: PyTorch's modules, `pytorch_weights`."""
        return max(len(kind.pytorch_weights), 1) if self.framework == "pytorch" else 1


@dataclass
class TargetLayer:
    node: Any  # ir.Node
    module: str  # the model's module name (`conv_3`)
    shapes: dict[str, tuple[int, ...]]
    depth: int
    order: Any = None  # where its input is a flattened image: its features' order channels first (`flattened_order`)
    scopes: tuple[int, ...] = ()  # the macro calls and repeats it is in (`ir.Scope` ids), innermost first

    @property
    def where(self) -> str:
        return f"line {self.node.line} `{self.node.label}`"


@dataclass
class InitReport:
    """What `--init-from` did, for the run header."""

    source: str
    kept: int
    reinitialized: list[str] = field(default_factory=list)  # "line 40 `dense 2` (was 1000 units)"
    folded: list[str] = field(default_factory=list)  # "line 3 `bn`": folded into the layer before it in the file
    unused: list[str] = field(default_factory=list)  # layers of the file no spec layer took

    def lines(self) -> list[str]:
        plural = "s" if self.kept != 1 else ""
        parts = [f"kept {self.kept} layer{plural}"]
        if self.reinitialized:
            parts.append("re-initialized " + ", ".join(self.reinitialized))
        if len(self.folded) == 1:
            parts.append(
                f"{self.folded[0]} starts as an identity (the file's exporter folded it into the layer before)"
            )
        elif self.folded:
            shown = ", ".join(self.folded[:3]) + (", ..." if len(self.folded) > 3 else "")
            parts.append(
                f"{len(self.folded)} layers start as identities (the file's exporter folded each into the layer "
                f"before): {shown}"
            )
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
    mismatched = [(target, layers, arrays) for target, layers, arrays, same in pairs if not same]
    folded = [target.where for target, layers, _, same in pairs if same and not layers]
    if mismatched and not reinit_mismatched:
        target, layers, arrays = mismatched[0]
        raise typed.graph.error(target.node, _mismatch_message(found, target, layers, arrays), REINIT_HINT)
    if unused and not reinit_mismatched:
        raise UserError(
            f"--init-from {source}: {len(unused)} of its layers have no counterpart in the spec, the first "
            f"{unused[0].shown} ({_shapes(unused[0].arrays)})",
            hint=REINIT_HINT.replace("start the layers whose shapes differ afresh", "leave them out"),
        )
    chosen = {target.module: arrays for target, _, arrays, same in pairs if same}
    report = InitReport(
        source,
        len(chosen) - len(folded),
        [f"{target.where} ({_was(target, arrays)})" for target, _, arrays in mismatched],
        folded,
        [layer.shown for layer in unused],
    )
    return _with_arrays(model, chosen), report


# --- the spec's side ------------------------------------------------------------------------


def target_layers(typed, model) -> list[TargetLayer]:
    """The model's layers holding weights or statistics, in spec order, with their depth in the graph of
    weighted layers (inputs first)."""
    # (a model without statistics has an empty state: no `layers` in it)
    params, state = model.params.get("layers", {}), model.model_state.get("layers", {})
    layers, depths = [], {}
    for node in typed.graph.nodes:
        module = f"{node.kind}_{node.id}"
        shapes = {name: tuple(array.shape) for name, array in _arrays(params.get(module), state.get(module)).items()}
        depth = max((depths[i] for i in node.inputs), default=0)
        if shapes:
            depth += 1
            # the blocks written code makes a module of: macro calls and repeats (not a merge's branches)
            chain = reversed(typed.graph.scope_chain(node.scope))
            scopes = tuple(scope.id for scope in chain if scope.kind in ("call", REPEAT))
            layers.append(TargetLayer(node, module, shapes, depth, _flattened(typed, node), scopes))
        depths[node.id] = depth
    return layers


def _flattened(typed, node):
    """Where `node`'s input is an image flattened into a vector, directly or through layers that keep
    each feature where it is (BatchNorm, activations, dropout: one input, the same shape, no width
    of their own): the order in which a channels-first framework has those features."""
    current = node
    while len(current.inputs) == 1:
        producer = typed.graph.nodes[current.inputs[0]]
        if len(producer.inputs) != 1:
            return None
        out, source = typed.infos[producer.id].shape, typed.infos[producer.inputs[0]].shape
        if len(out) == 1 and len(source) == 3 and source[0] * source[1] > 1 and math.prod(source) == out[0]:
            return flattened_order(*source)
        if out != source or producer.layer.width_arg is not None:
            return None
        current = producer
    return None


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


def _with_arrays(model, chosen: dict[str, dict[str, np.ndarray]]):
    """`model` with the arrays of `chosen` (module name -> Flax arrays by dotted name) in place of its own."""
    import jax

    def replace(tree, module, prefix=""):
        out = {}
        for name, value in tree.items():
            if isinstance(value, dict):
                out[name] = replace(value, module, f"{prefix}{name}.") if name != "rngs" else value
            elif prefix + name in chosen[module]:
                array = np.asarray(chosen[module][prefix + name], dtype=value.dtype)
                out[name] = jax.device_put(array, value.sharding)
            else:
                out[name] = value
        return out

    def layers(tree):
        if "layers" not in tree:
            return tree
        return {
            **tree,
            "layers": {
                name: replace(value, name) if name in chosen else value for name, value in tree["layers"].items()
            },
        }

    return type(model)(layers(model.params), layers(model.model_state))


# --- matching -------------------------------------------------------------------------------


def match(found: Source, targets: list[TargetLayer]):
    """[(target, source layers, their arrays as the target's kind reads them, same shapes)] in the
    spec's order, and the unused source layers. A layer that matches nothing is compared in the
    messages with the next unused layer its kind reads. A BatchNorm the file's exporter folded into
    the convolution before it (`LayerKind.folds_into`) takes no layer: it matches with the arrays
    that pass its input on (`LayerKind.folded_weights`)."""
    if found.by_depth:
        targets = sorted(targets, key=lambda t: (t.depth, t.node.id))
    layers = found.layers
    if found.by_depth and all(layer.depth is not None for layer in layers):
        layers = sorted(layers, key=lambda layer: layer.depth)  # stable: ties keep the file's order
    unused = list(layers)
    blocks = _Blocks(layers, targets) if found.framework == "pytorch" else None
    pairs = []
    folded: dict[int, dict] = {}  # spec node id of a folded layer -> its arrays
    previous = None  # the layer taken last: a state dict's next layer is looked for near it
    for index, target in enumerate(targets):
        if target.node.id in folded:
            pairs.append([target, [], folded.pop(target.node.id), True])
            continue
        after = targets[index + 1] if index + 1 < len(targets) else None
        taken, arrays = _take(found, target, unused, previous, blocks)
        if _may_fold(found, target, after):
            shift = None
            if not taken:  # the spec's conv has no bias: the exporter gave it one, the BatchNorm's shift
                taken, arrays, shift = _take_shifted(target, unused)
            kind = after.node.layer
            passing = kind.folded_weights(after.node.attrs, after.shapes, shift) if taken else None
            if passing is not None and _folded(taken[-1], kind):
                folded[after.node.id] = passing
            elif shift is not None:  # a bias the spec's conv lacks, and no folded layer to take it
                taken, arrays = [], {}
        for layer in taken:
            unused.remove(layer)
        previous = taken[-1] if taken else previous
        pairs.append([target, taken, arrays, bool(taken)])
    for pair in pairs:
        if not pair[3]:
            kind = pair[0].node.layer
            near = next(
                ((layer, arrays) for layer in unused if (arrays := layer.read(kind, 0, None)) is not None), None
            )
            if near is not None:
                unused.remove(near[0])
                pair[1], pair[2] = [near[0]], near[1]
    pairs.sort(key=lambda pair: pair[0].node.id)
    return [tuple(pair) for pair in pairs], unused


def _take(
    found: Source, target: TargetLayer, unused: list[SourceLayer], previous: SourceLayer | None, blocks: _Blocks | None
) -> tuple[list[SourceLayer], dict]:
    """The unused layers that give `target` all its arrays, with their shapes: one layer, or for a kind
    whose arrays PyTorch keeps in several modules, one per module in order (a layer giving what is
    still missing, else one giving part of it). Of several such layers, the first, except in a state
    dict (`_Blocks.choose`)."""
    kind, missing = target.node.layer, dict(target.shapes)
    taken: list[SourceLayer] = []
    arrays: dict[str, np.ndarray] = {}
    parts = found.parts(kind)
    for part in range(parts):
        if not missing:
            break
        whole, some = [], []
        for layer in unused:
            if layer in taken:
                continue
            got = layer.read(kind, part, target.order)
            if got is None:
                continue
            shapes = {name: tuple(array.shape) for name, array in got.items()}
            if shapes == missing:
                whole.append((layer, got))
                if blocks is None:
                    break
            elif part + 1 < parts and all(missing.get(n) == shape for n, shape in shapes.items()):
                some.append((layer, got))
        candidates = whole or some
        if not candidates:
            continue
        chosen = blocks.choose(target, candidates, taken[-1] if taken else previous) if blocks else candidates[0]
        taken.append(chosen[0])
        arrays.update(chosen[1])
        for name in chosen[1]:
            missing.pop(name)
    return (taken, arrays) if not missing else ([], {})


class _Blocks:
    """Which of a state dict's modules of the same shapes a spec layer is. A state dict keeps no order
    of computation: its module names sort (`inverted_residual_add_3.0` after `inverted_residual`, a
    cell's `normal_cell` before its `project`). But written PyTorch code keeps each block of the spec
    (a macro call, a repeat) in a module of its own, nested as the blocks are: a module whose layers hold
    arrays of the same sizes as a block's is taken to be that block. So a layer is looked for first in a
    module whose parent is its innermost block, the parent's parent the block around that, and so on;
    then beside the layer taken before it (the rest of a block), then near it in the module tree; then
    in the file's order."""

    def __init__(self, layers: list[SourceLayer], targets: list[TargetLayer]):
        scopes: dict[int, list[int]] = {}
        for target in targets:
            for scope in target.scopes:
                scopes.setdefault(scope, []).extend(math.prod(shape) for shape in target.shapes.values())
        modules: dict[str, list[int]] = {}
        for layer in layers:
            for module in _ancestors(layer.name):
                modules.setdefault(module, []).extend(array.size for array in layer.arrays.values())
        self.scopes = {scope: _content(sizes) for scope, sizes in scopes.items()}
        self.modules = {module: _content(sizes) for module, sizes in modules.items()}
        self.position = {id(layer): index for index, layer in enumerate(layers)}

    def choose(self, target: TargetLayer, candidates: list, anchor: SourceLayer | None):
        """The candidate (layer, arrays) that is most likely `target`'s, `anchor` the layer taken before."""

        def rank(candidate):
            layer = candidate[0]
            modules = _ancestors(layer.name)
            blocks = tuple(self.scopes[s] == self.modules[m] for s, m in zip(target.scopes, modules))
            return (blocks, *_nearness(layer, anchor), -self.position[id(layer)])

        return max(candidates, key=rank)


def _content(sizes: list[int]) -> tuple[int, ...]:
    return tuple(sorted(sizes))


def _ancestors(name: str) -> list[str]:
    """The modules a state-dict module is in, innermost first (`a.b.conv`: `a.b`, `a`)."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(len(parts) - 1, 0, -1)]


def _nearness(layer: SourceLayer, anchor: SourceLayer | None) -> tuple[bool, int]:
    """How near state-dict module `layer` is to `anchor`: whether they are siblings, and how many
    leading parts their parents' paths share."""
    if anchor is None:
        return False, 0
    mine, theirs = layer.name.split(".")[:-1], anchor.name.split(".")[:-1]
    shared = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
    return mine == theirs, shared


def _may_fold(found: Source, target: TargetLayer, after: TargetLayer | None) -> bool:
    """Whether `after`, the spec's next layer, reads `target` alone and is a kind an ONNX exporter folds
    into the layer before it (`LayerKind.folds_into`)."""
    return (
        found.framework == "onnx"
        and after is not None
        and after.node.inputs == (target.node.id,)
        and bool(after.node.layer.folds_into)
    )


def _folded(layer: SourceLayer, kind: LayerKind) -> bool:
    """Whether the file's exporter folded a layer of `kind` into `layer`: one of the ops it folds into,
    and no node of that kind reads its output."""
    return layer.op in kind.folds_into and not any(op in kind.onnx_weights for op in layer.read_by)


def _take_shifted(target: TargetLayer, unused: list[SourceLayer]):
    """The first layer giving `target` its arrays and one more, a vector: where the spec's convolution
    has no bias and the exporter gave it one, folding the BatchNorm after it in. ([layer], arrays, that
    shift), or ([], {}, None)."""
    for layer in unused:
        got = layer.read(target.node.layer, 0, target.order)
        if got is None or set(target.shapes) - set(got):
            continue
        extra = set(got) - set(target.shapes)
        fits = all(tuple(got[name].shape) == shape for name, shape in target.shapes.items())
        if fits and len(extra) == 1 and got[next(iter(extra))].ndim == 1:
            shift = got.pop(extra.pop())
            return [layer], got, shift
    return [], {}, None


def _shapes(arrays: dict) -> str:
    return ", ".join(f"{name} {_dims(array.shape)}" for name, array in sorted(arrays.items()))


def _dims(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _mismatch_message(found: Source, target: TargetLayer, layers: list[SourceLayer], arrays: dict) -> str:
    source = found.path
    if not layers:
        refusal = _refusal(found, target.node.layer)
        reason = f": {refusal}" if refusal else ""
        return f"--init-from {source} has no layer for {target.where} ({_target_shapes(target)}){reason}"
    ours, theirs = _difference(target, arrays)
    return f"--init-from {source}: {target.where} has {ours}, but its layer {layers[0].shown} has {theirs}"


def _refusal(found: Source, kind: LayerKind) -> str | None:
    """Why the file's framework holds no weights of `kind`, where the kind's module says."""
    return kind.refusals.get(found.framework)


def _target_shapes(target: TargetLayer) -> str:
    return ", ".join(f"{name} {_dims(shape)}" for name, shape in sorted(target.shapes.items()))


def _difference(target: TargetLayer, arrays: dict) -> tuple[str, str]:
    """The first array that differs, in words for both sides (`kernel 1280x2`, `kernel 1280x1000`)."""
    for name, shape in sorted(target.shapes.items(), key=lambda item: (-len(item[1]), item[0])):  # kernels first
        if name not in arrays:
            return f"a `{name}` ({_dims(shape)})", f"none ({_shapes(arrays)})"
        if tuple(arrays[name].shape) != shape:
            return f"{name} {_dims(shape)}", f"{name} {_dims(arrays[name].shape)}"
    extra = sorted(set(arrays) - set(target.shapes))
    return f"no `{extra[0]}`", f"one ({_dims(arrays[extra[0]].shape)})"


def _was(target: TargetLayer, arrays: dict) -> str:
    """`was 1000 units`: what the file's layer had, in the words of the kind's width where it has one."""
    if not arrays:
        return "none in the file"
    width = target.node.layer.width_arg
    kernel = arrays.get("kernel")
    if width is not None and kernel is not None and len(kernel.shape) == len(target.shapes.get("kernel", ())):
        return f"was {kernel.shape[-1]} {width}"
    return f"was {_shapes(arrays)}"


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
    layers = []
    for t in target_layers(typed, model):
        arrays = _numpy_arrays(model, t.module)
        read = _same_kind(t.node.kind, arrays)
        layers.append(SourceLayer(f"line {t.node.line} `{t.node.label}`", arrays, read, t.depth))
    return Source(source, "run", layers)


def _same_kind(name: str, arrays: dict[str, np.ndarray]) -> Reading:
    """A run's layer: already Flax's arrays, for a layer of the same kind."""
    return lambda kind, part, order: arrays if kind.name == name and part == 0 else None


def _to_numpy(tree):
    import jax

    return jax.tree.map(
        lambda leaf: leaf if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else np.asarray(leaf), tree
    )


def _numpy_arrays(model, module: str) -> dict[str, np.ndarray]:
    return _arrays(model.params.get("layers", {}).get(module), model.model_state.get("layers", {}).get(module))


def _read_keras_archive(source: str, path: Path) -> Source:
    """A Keras 3 `.keras` file: config.json gives each layer's class, switches and inputs (so the graph's
    depths), model.weights.h5 its variables."""
    import io
    import json

    h5py = _import("h5py", "h5")
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(weights), "r") as file:
        layers: list[SourceLayer] = []
        _walk_keras_model(config, file, 0, layers)
    return Source(source, "keras", layers, by_depth=True)


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
        elif child is not None and len(child["vars"]):
            weighted = _keras_layer(name, layer["class_name"], layer["config"], child["vars"], depth + 1)
            if weighted.depth is not None:
                depth += 1
            out.append(weighted)
        depths[name] = last = depth
    return last


def _keras_layer(name: str, class_name: str, config: dict | None, group, depth: int) -> SourceLayer:
    """A Keras layer's stored variables (`vars/0`, `vars/1`, ...), read by the kinds (`weights_from_keras`);
    a layer no kind reads (a class the language lacks) has no depth among the weighted layers."""
    arrays = [np.asarray(group[str(i)]) for i in range(len(group))]

    def read(kind: LayerKind, part: int, order):  # Keras flattens height first, as the spec does
        return kind.weights_from_keras(class_name, config, arrays) if part == 0 else None

    known = any(read(kind, 0, None) is not None for kind in REGISTRY.values())
    shown = {f"{class_name} vars/{i}": array for i, array in enumerate(arrays)}
    return SourceLayer(name, shown, read, depth if known else None)


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
    h5py = _import("h5py", "h5")
    layers: list[SourceLayer] = []
    with h5py.File(path, "r") as file:
        if "layers" not in file:
            raise ValueError("no `layers` group: not a Keras 3 .weights.h5 file (Keras 2 .h5 files are not read)")
        _walk_keras_groups(file, layers)
    return Source(source, "keras", layers, by_depth=True)


def _walk_keras_groups(group, out: list[SourceLayer]) -> None:
    for key in sorted(group["layers"], key=_natural):
        child = group["layers"][key]
        if "layers" in child:  # a nested model
            _walk_keras_groups(child, out)
            continue
        if "vars" not in child or not len(child["vars"]):
            continue
        name = str(child["vars"].attrs.get("name", key))
        out.append(_keras_layer(name, re.sub(r"_\d+$", "", key), None, child["vars"], 0))


def _natural(name: str) -> tuple:
    """`layer10` after `layer9`, `block_10` after `block_9`; `conv2d` before `conv2d_1`."""
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
        if np.issubdtype(array.dtype, np.floating):  # not BatchNorm's step count: no weight
            modules.setdefault(module, {})[parameter] = array
    layers = []
    for module in sorted(modules, key=lambda m: tuple(_natural(p) for p in m.split("."))):
        arrays = modules[module]
        layers.append(SourceLayer(module or ", ".join(arrays), arrays, _torch_reading(arrays)))  # a model's own
    return Source(source, "pytorch", layers)


def _torch_reading(arrays: dict[str, np.ndarray]) -> Reading:
    return lambda kind, part, order: kind.weights_from_pytorch(part, arrays, order)


def _read_onnx(source: str, path: Path) -> Source:
    """An ONNX graph's nodes that hold weights (initializers, or an Identity, Transpose or Reshape of
    one) some kind reads (`weights_from_onnx`), in node order, with depths. A node is offered with the
    one node reading its output (a bias added apart, a normalization's division), which is no layer of
    its own where a kind reads the two."""
    onnx = _import("onnx", "onnx")
    from google.protobuf.message import DecodeError
    from onnx import helper, numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except DecodeError as error:
        raise ValueError(f"not an ONNX model: {error}") from None
    parameters = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    nodes = list(graph.node)
    shapes = {node.output[0]: _constant(node) for node in nodes if node.op_type == "Constant" and node.attribute}
    for node in nodes:  # weights moved, transposed or reshaped on their way (an export without constant folding)
        if not node.input or node.input[0] not in parameters:
            continue
        array = parameters[node.input[0]]
        if node.op_type == "Transpose":
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            parameters[node.output[0]] = array.transpose(perm)
        elif node.op_type == "Identity":
            parameters[node.output[0]] = array
        elif node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in shapes:
            dims = [array.shape[i] if d == 0 else int(d) for i, d in enumerate(shapes[node.input[1]].reshape(-1))]
            parameters[node.output[0]] = array.reshape(dims)
    readers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            readers.setdefault(name, []).append(index)
    outputs = {output.name for output in graph.output}
    nchw = _flattened_nchw(graph, nodes, parameters)

    def contract(node, fused=()) -> OnnxNode:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        constants = tuple(parameters.get(name) for name in node.input)
        learned = tuple(i for i, name in enumerate(node.input) if name in parameters)
        return OnnxNode(node.op_type, attributes, constants, node.name, fused, learned=learned)

    depth_of: dict[str, int] = {}
    taken: set[int] = set()  # nodes read with the node before them
    layers = []
    for index, node in enumerate(nodes):
        depth = max((depth_of.get(name, 0) for name in node.input if name not in parameters), default=0)
        after = readers.get(node.output[0], []) if node.output and node.output[0] not in outputs else []
        alone = contract(node)
        offered = contract(node, (contract(nodes[after[0]]),)) if len(after) == 1 else alone
        kinds = [kind for kind in REGISTRY.values() if kind.weights_from_onnx(offered) is not None]
        shown = {f"{node.op_type} input {i}": parameters[node.input[i]] for i in alone.learned}
        if not kinds and index not in taken and node.op_type in ARITHMETIC and _learned_vector(shown):
            # a vector added or multiplied in that no kind reads (the shift of a `bn(scale=false)` after the
            # conv torch.onnx folded its statistics into): a layer of the file no spec layer takes, never
            # dropped in silence
            layers.append(SourceLayer(node.name or f"{node.op_type} {index}", shown, _unread))
        if kinds and index not in taken:
            depth += 1
            image = next((name for name in node.input if name not in parameters), None)
            read = _onnx_reading(offered, nchw.get(image, True))
            read_by = tuple(nodes[i].op_type for i in after)
            layers.append(
                SourceLayer(node.name or f"{node.op_type} {index}", shown, read, depth, node.op_type, read_by)
            )
            if any(_names(kind.weights_from_onnx(alone)) != _names(kind.weights_from_onnx(offered)) for kind in kinds):
                taken.add(after[0])  # its arrays are the node's (a bias added apart): no layer of its own
        for name in node.output:
            depth_of[name] = depth
    return Source(source, "onnx", layers)


def _constant(node) -> np.ndarray:
    """A Constant node's value: a tensor (`value`) or a list (`value_ints`, as torch.onnx's dynamo exporter writes shapes)."""
    from onnx import helper, numpy_helper

    attribute = node.attribute[0]
    value = helper.get_attribute_value(attribute)
    return numpy_helper.to_array(value) if attribute.name == "value" else np.asarray(value)


ARITHMETIC = ("Add", "Sub", "Mul", "Div")  # ONNX's element-wise arithmetic


def _learned_vector(arrays: dict[str, np.ndarray]) -> bool:
    return any(np.issubdtype(array.dtype, np.floating) and array.size > 1 for array in arrays.values())


def _unread(kind: LayerKind, part: int, order) -> None:
    """The reading of arrays no kind reads."""
    return None


def _names(arrays: dict | None) -> set[str]:
    return set(arrays or ())


def _onnx_reading(node: OnnxNode, nchw: bool) -> Reading:
    """`node`'s arrays as `kind` reads them; the spec's `order` where the image flattened on the way was NCHW."""
    return lambda kind, part, order: kind.weights_from_onnx(node, order if nchw else None) if part == 0 else None


def _flattened_nchw(graph, nodes, parameters: dict) -> dict[str, bool]:
    """For each tensor that is an image flattened into a vector (or computed from one feature by
    feature): whether the image was NCHW, flattened channels first as PyTorch does, or NHWC, height
    first as the spec, Keras and jax2onnx exports do. An image's layout is the one the nodes making it
    say (`interop.onnx_layout`): a channels-first op, a Transpose; the graph's input is NHWC where its
    dims say so (H = W != C)."""
    from archspec.interop.onnx_layout import CHANNELS_FIRST, MOVES_AXES

    layouts: dict[str, bool] = {}  # a 4-D tensor's: NCHW (True) or NHWC
    if graph.input:
        dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
        if len(dims) == 4 and dims[1] == dims[2] != dims[3] and dims[3]:
            layouts[graph.input[0].name] = False
    flat: dict[str, bool] = {}
    for node in nodes:
        image = next((name for name in node.input if name and name not in parameters), None)
        if image is None:
            continue
        if node.op_type in ("Flatten", "Reshape") and image in layouts:
            flat[node.output[0]] = layouts[image]
        elif node.op_type == "Transpose":
            perm = next((tuple(a.ints) for a in node.attribute if a.name == "perm"), ())
            if perm in ((0, 2, 3, 1), (0, 3, 1, 2)):
                layouts[node.output[0]] = perm == (0, 3, 1, 2)
        elif node.op_type not in MOVES_AXES:
            for output in node.output:
                if image in flat:
                    flat[output] = flat[image]
                elif node.op_type in CHANNELS_FIRST:
                    layouts[output] = True
                elif image in layouts:
                    layouts[output] = layouts[image]
    return flat


def _import(module: str, extra: str):
    """`module`, from the extra of pyproject.toml that brings it: a missing one stops with the pip command."""
    import importlib

    from archspec.extras import require

    require(extra, "--init-from of this file")
    return importlib.import_module(module)
