"""`cnn-arch export RUN_DIR -o model.onnx`: a trained run's model as ONNX, through jax2onnx.

The ONNX graph takes what `cnn-arch predict` takes, uint8-range images (N, H, W, C) with a dynamic
batch dimension, and does what predict does: scale to [0, 1], run the network in inference mode
(BatchNorm statistics, no dropout) and turn its logits into class probabilities. The class names
travel in the model's metadata (`class_names`, a JSON list).
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from archspec.errors import PathError, UserError

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
INPUT_DTYPES = ("uint8", "float32")


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    input_shape: tuple[int, ...]  # without the batch dimension
    input_dtype: str
    class_names: tuple[str, ...]
    checkpoint: str
    step: int


class _DropMessage(logging.Filter):
    """Hides jax2onnx's BatchNorm warning: it reads the layers' training-time default, while the
    exported call runs them with their statistics (the round-trip test checks the outputs)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def export_onnx(run_dir: str | Path, path: str | Path, which: str = "best", input_dtype: str = "uint8") -> OnnxExport:
    """Write the run's `which` checkpoint as an ONNX model at `path`.

    Raises:
        PathError: not a run folder, or `path` cannot be written.
        UserError: the `train` extra is not installed, or jax2onnx cannot convert an operation of this model.
    """
    if input_dtype not in INPUT_DTYPES:
        raise UserError(f"`--input-dtype` must be one of {', '.join(INPUT_DTYPES)}; got `{input_dtype}`")
    from archspec.extras import require

    require("train", "ONNX export")
    import jax
    import jax.numpy as jnp

    from archspec.train.inference import load_run, scores_function

    trained = load_run(run_dir, which)
    if trained.config.precision == "bf16":
        raise UserError("the run trained in bf16; ONNX export supports fp32 runs", hint="train with --precision fp32")
    shape = tuple(trained.config.input_shape)
    batch = jax.export.symbolic_shape("N")[0]
    spec = jax.ShapeDtypeStruct((batch, *shape), jnp.dtype(input_dtype))
    proto = _convert(trained.typed, scores_function(trained), spec, Path(run_dir).name or "cnn_arch_model")
    entry = proto.metadata_props.add()
    entry.key, entry.value = "class_names", json.dumps(list(trained.class_names))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "cnn_arch_checkpoint", f"{trained.checkpoint} (step {trained.step})"
    target = Path(path)
    try:
        target.write_bytes(proto.SerializeToString())
    except OSError as error:
        raise PathError(str(target), f"cannot write the ONNX model: {error.strerror or error}") from None
    return OnnxExport(target, shape, input_dtype, trained.class_names, trained.checkpoint, trained.step)


def spec_onnx(typed):
    """The ONNX model (a ModelProto) of a spec's network, computing its output (probabilities where
    the spec ends in softmax) from float32 NHWC images, batch 1. Its weights are zeros: the graph is
    the point (`cnn-arch import` reads it back as the same spec), and zeros cost nothing, where
    drawing random weights compiles an initializer per weight shape (most of a minute for a ResNet)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from archspec.flax_model import build_model

    graphdef, state = nnx.split(nnx.eval_shape(lambda: build_model(typed)))
    state = jax.tree.map(
        lambda v: jax.random.key(0) if jnp.issubdtype(v.dtype, jax.dtypes.prng_key) else np.zeros(v.shape, v.dtype),
        state,
    )
    model = nnx.merge(graphdef, state)
    spec = jax.ShapeDtypeStruct((1, *typed.input_shape), jnp.float32)
    return _convert(typed, lambda x: model(x), spec, "cnn_arch_spec")


def _convert(typed, function, spec, name: str):
    """jax2onnx's conversion of `function` (the network of `typed`), with standard ONNX operators for
    LayerNorm (`LayerNormalization`) and its intermediate shapes recomputed."""
    from archspec.extras import require

    require("train", "ONNX export")
    from jax2onnx import to_onnx

    from archspec.gradients import plain_lax

    _refuse_unexportable(typed)
    quiet = _DropMessage("BatchNorm exported with use_running_average=False")
    logging.getLogger().addFilter(quiet)
    try:
        _import_jax_and_flax_plugins()
        # plain_lax: one Conv and one MaxPool per layer, not the CPU training's rewrites
        with plain_lax(), _graph_lookups_in_linear_time():
            proto = to_onnx(
                function,
                [spec],
                model_name=name,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                normalization_mode="prefer_native",
            )
    except (NotImplementedError, ValueError, TypeError) as error:
        raise UserError(f"jax2onnx could not convert this model: {error}") from None
    finally:
        logging.getLogger().removeFilter(quiet)
    _fixed_batch_norm_constants(proto, typed)
    return _reannotated(proto)


def _import_jax_and_flax_plugins() -> None:
    """jax2onnx finds its converters by importing every module under `jax2onnx.plugins` at its first
    conversion in a process, its Equinox and dm-pix plugins and its own example models among them:
    7.7 s here, 5.9 s of it Equinox's. A spec's model is Flax over JAX, so only those two trees are
    imported, and the discovery is marked done (the 15 templates export to the same bytes). Another
    jax2onnx discovers its own way."""
    try:
        from jax2onnx.plugins import plugin_system
    except ImportError:
        return
    if getattr(plugin_system, "_already_imported_plugins", True) or not hasattr(plugin_system, "_import_tree"):
        return
    root = Path(plugin_system.__file__).parent
    for tree in ("jax", "flax"):
        plugin_system._import_tree(root / tree, f"jax2onnx.plugins.{tree}")
    plugin_system._already_imported_plugins = True


@contextmanager
def _graph_lookups_in_linear_time():
    """jax2onnx 0.17's graph optimizer asks for a value's producer and consumers hundreds of thousands
    of times, and each call first builds the set of the ids of every node in the graph, though the
    answer it then keeps is the value's own `producer()` or `consumers()` filtered by that set: time
    quadratic in the graph's size (NASNet-Mobile: 4 minutes under cProfile, most of a 100 s export).
    While the conversion runs, the two lookups build the set once per node list the optimizer passes
    (its passes take `list(graph)` afresh and never change one in place) and answer the same; a value
    the fast path does not settle goes to jax2onnx's own lookup as before."""
    try:
        from jax2onnx.converter import conv_transpose_bias_folding, ir_optimizations, optimizer_graph_utils
        from onnx_ir import Node, Value
    except ImportError:  # another jax2onnx: its own lookups
        yield
        return
    slow_producer = optimizer_graph_utils._producer_node
    slow_consumers = optimizer_graph_utils._consumer_nodes
    held: list = [None, 0, frozenset()]  # the last node list (kept alive, so its id is not reused), its length, its ids

    def ids(nodes) -> frozenset:
        if held[0] is not nodes or held[1] != len(nodes):
            held[:] = [nodes, len(nodes), frozenset(id(node) for node in nodes)]
        return held[2]

    def producer(nodes, value):
        if isinstance(value, Value):
            made_by = value.producer()
            if isinstance(made_by, Node) and id(made_by) in ids(nodes):
                return made_by
        return slow_producer(nodes, value)

    def consumers(nodes, value):
        if isinstance(value, Value):
            used_by = value.consumers()
            if used_by and all(isinstance(node, Node) for node in used_by):
                present = ids(nodes)
                kept = [node for node in used_by if id(node) in present]
                if kept:
                    return kept
        return slow_consumers(nodes, value)

    modules = (optimizer_graph_utils, ir_optimizations, conv_transpose_bias_folding)
    saved = [
        (module, name, getattr(module, name))
        for module in modules
        for name in ("_producer_node", "_consumer_nodes")
        if hasattr(module, name)
    ]
    for module, name, _ in saved:
        setattr(module, name, producer if name == "_producer_node" else consumers)
    try:
        yield
    finally:
        held.clear()
        for module, name, original in saved:
            setattr(module, name, original)


def _fixed_batch_norm_constants(proto, typed) -> None:
    """ONNX's BatchNormalization always takes a scale and a shift; where the spec's `bn` learns
    neither or one of them (`bn(scale=false)`), the one it does not learn becomes a `Constant` node
    (ones, zeros) instead of an initializer, the file's weights: a reader (ours, `cnn-arch import`)
    tells a learned array from a fixed one so. The file's BatchNormalization nodes are the spec's
    `bn` layers in order (jax2onnx traces the model layer by layer); where their numbers differ the
    file is left as it is."""
    from onnx import helper

    norms = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    layers = [n for n in typed.graph.nodes if n.kind == "bn"]
    if len(norms) != len(layers):
        return
    initializers = {tensor.name: tensor for tensor in proto.graph.initializer}
    readers: dict[str, int] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    constants = []
    for norm, layer in zip(norms, layers):
        for position, learned in ((1, layer.attrs["scale"]), (2, layer.attrs["center"])):
            tensor = initializers.get(norm.input[position])
            if learned or tensor is None or readers[tensor.name] != 1:
                continue
            proto.graph.initializer.remove(tensor)
            constants.append(helper.make_node("Constant", [], [tensor.name], value=tensor))
    for index, constant in enumerate(constants):  # before every node: a graph lists nodes in order
        proto.graph.node.insert(index, constant)


def _refuse_unexportable(typed) -> None:
    """jax2onnx 0.17 writes an average pooling's numeric padding as no padding (a different network,
    silently): refuse it at its spec line. (Max pooling pads with -inf before the pooling, which it
    writes right.)"""
    for node in typed.graph.nodes:
        if node.kind == "avgpool" and not isinstance(node.attrs["padding"], str):
            raise typed.graph.error(
                node,
                "ONNX export cannot write `avgpool` with numeric padding: jax2onnx 0.17 drops it",
                hint="use padding=same, or `zeropad` before the pooling (which then averages the zeros in)",
            )


def _reannotated(proto):
    """The model with its intermediate shape annotations recomputed by ONNX's own shape inference.

    jax2onnx 0.17.1 can annotate a tensor NHWC after its layout pass turned it NCHW (seen in
    ResNet-50 from the second stage on); onnxruntime then refuses the model at an `Add`, though
    the operations themselves are right. Shapes inferred from the operations are right by construction.
    """
    import onnx

    del proto.graph.value_info[:]
    return onnx.shape_inference.infer_shapes(proto)
