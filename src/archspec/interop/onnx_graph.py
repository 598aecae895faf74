"""An ONNX file as the reader sees it: its nodes in order, who makes and who reads each tensor, every
tensor's shape (batch first, in the file's own layout) and the values of the small constants that
shape computations use. Weights are never read: the file is loaded without its external data, so a
model whose weights live beside it (`model.onnx.data`) reads the same, and large weights held inside
the file are dropped before anything else looks at it.

The `onnx` package is imported here and only here, lazily: `pip install 'cnn-arch[onnx]'`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archspec.errors import PathError, UserError
from archspec.source import SourceText

ONNX_SUFFIX = ".onnx"
INSTALL_HINT = "reading ONNX files needs the onnx package: pip install 'cnn-arch[onnx]'"
KEPT_VALUES = 4096  # initializers up to this many values keep their data (shapes, indices, scalars)
FOLDED_VALUES = 1 << 20  # constants folded by evaluation stay below this many values
FLOAT_TYPES = frozenset({1, 10, 11, 16})  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16
PLACEHOLDER_VALUES = 1 << 22  # a weight without data this large or smaller stands in as zeros when folding
NAME_SCOPES = "pkg.torch.onnx.name_scopes"  # node metadata of torch.onnx's default exporter
REWRITE_RULES = "pkg.onnxscript.rewriter.rule_name"  # the rewrites its optimizer made to a node


def is_onnx(name: str) -> bool:
    return name.lower().endswith(ONNX_SUFFIX)


@dataclass(frozen=True)
class GraphNode:
    """One node of the graph. `index` is its place in `graph.node`; messages number nodes from 1
    (`number`), as the lines of the listing do."""

    index: int
    name: str
    op: str
    domain: str
    inputs: tuple[str, ...]  # "" for an optional input left out
    outputs: tuple[str, ...]
    attrs: dict[str, Any]
    module: str = ""  # the PyTorch module that made it (`layer1.0.conv1`), where the exporter recorded it
    folded: bool = False  # the exporter folded a BatchNorm into this node (its module is the BatchNorm's)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    @property
    def op_name(self) -> str:
        """`Conv`, or `com.microsoft.FusedConv` for an operator outside the standard domain."""
        return self.op if self.domain in ("", "ai.onnx") else f"{self.domain}.{self.op}"

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def label(self) -> str:
        """The node's most telling name: its PyTorch module where known, else its ONNX name."""
        return (self.module or self.name) + (" (BatchNorm folded in by the exporter)" if self.folded else "")


@dataclass
class OnnxGraph:
    """The graph of an ONNX model, with shapes and small constants worked out."""

    path: str
    nodes: list[GraphNode]
    input: str  # the one graph input that is not a weight
    output: str
    shapes: dict[str, tuple[int | None, ...]]  # every tensor ONNX shape inference could size
    constants: dict[str, Any]  # tensor name -> numpy array: small initializers, Constant nodes, folded values
    weights: dict[str, tuple[int, ...]]  # every initializer's dims (weights included, data or not)
    opset: int
    producer: str  # the tool that wrote the file ("pytorch 2.13.0")
    # the file's parameters: its initializers and what is computed from them alone (a transposed
    # kernel), not constants an exporter writes as nodes (the zero bias of PyTorch's unoptimized export)
    parameters: set[str] = field(default_factory=set)
    makers: dict[str, int] = field(default_factory=dict)  # tensor -> index of the node making it
    readers: dict[str, list[int]] = field(default_factory=dict)  # tensor -> indices of the nodes reading it

    def __post_init__(self) -> None:
        self.parameters.update(self.weights)
        for node in self.nodes:
            for name in node.outputs:
                self.makers[name] = node.index
            for name in node.inputs:
                if name:
                    self.readers.setdefault(name, []).append(node.index)

    def maker(self, tensor: str) -> GraphNode | None:
        index = self.makers.get(tensor)
        return None if index is None else self.nodes[index]

    def readers_of(self, tensor: str) -> list[GraphNode]:
        return [self.nodes[i] for i in self.readers.get(tensor, ())]

    def shape(self, tensor: str) -> tuple[int | None, ...] | None:
        return self.shapes.get(tensor)

    def constant(self, tensor: str):
        """The numpy value of a constant tensor, or None (a weight whose data is not loaded, or a
        computed tensor)."""
        return self.constants.get(tensor) if tensor else None

    def is_weight(self, tensor: str) -> bool:
        """An initializer (data loaded or not), or a constant: a value fixed in the file."""
        return tensor in self.weights or tensor in self.constants

    def weight_shape(self, tensor: str) -> tuple[int, ...] | None:
        if tensor in self.weights:
            return self.weights[tensor]
        value = self.constants.get(tensor)
        return None if value is None else tuple(value.shape)

    def listing(self) -> SourceText:
        """The graph as text, one line per node (line N is node N, `graph.node[N - 1]`): where findings
        and errors about an ONNX file point, since the file itself has no lines."""
        lines = [
            f"{node.op_name} {node.name or '(unnamed)'}: {', '.join(i for i in node.inputs if i)} -> "
            f"{', '.join(node.outputs)}" + (f"  [{node.module}]" if node.module else "")
            for node in self.nodes
        ]
        return SourceText(self.path, "\n".join(lines) + "\n")


def read_onnx(path: str | Path, input_shape: tuple[int, ...] | None = None) -> OnnxGraph:
    """Load an ONNX file's graph (weights left out) with every tensor's shape.

    `input_shape` (HxWxC) sizes an input the file leaves open (a free height or width) or replaces
    the file's own size. Raises PathError for a file that cannot be read or is not an ONNX model,
    UserError when the onnx package is missing or the graph has no single image input.
    """
    onnx = _onnx()
    name = str(path)
    try:
        model = onnx.load(name, load_external_data=False)
    except FileNotFoundError:
        raise PathError(name, "no such file") from None
    except IsADirectoryError:
        raise PathError(name, "is a folder, not an ONNX file") from None
    except OSError as error:
        raise PathError(name, f"cannot read the file: {error.strerror or error}") from None
    except Exception as error:  # protobuf's DecodeError and friends: not an ONNX model
        raise PathError(name, f"not an ONNX model ({type(error).__name__}: {error})") from None
    if not model.graph.node:
        raise PathError(name, "not an ONNX model (its graph has no nodes)")
    if not _names_are_text(model.graph):
        raise PathError(name, "not a valid ONNX model (a name in its graph is not UTF-8 text: the file is damaged)")
    try:
        if model.functions:  # exporters may write modules as local functions: read their bodies
            model = onnx.inliner.inline_local_functions(model)
        _drop_weight_data(model)
        input_name = _image_input(model, name)
        _set_input_shape(model, input_name, input_shape, name)
        del model.graph.value_info[:]  # recomputed: some exporters annotate in another layout
        graph = _graph(onnx.shape_inference.infer_shapes(model, data_prop=True), input_name, name)
        if any(_unsized(graph, t) for node in graph.nodes for t in node.outputs):
            _reinfer(model, graph, onnx)
    except UserError:
        raise
    except Exception as error:  # a malformed graph: say so rather than show the library's traceback
        raise PathError(name, f"ONNX could not read this graph: {error}") from None
    return graph


def _unsized(graph: OnnxGraph, tensor: str) -> bool:
    shape = graph.shapes.get(tensor)
    return bool(tensor) and tensor not in graph.constants and (shape is None or None in shape)


def _reinfer(model, graph: OnnxGraph, onnx) -> None:
    """Shape inference again, with the tensors folded from constants given as initializers: ONNX
    sizes nothing past a weight it cannot compute itself (jax2onnx reverses a transposed conv's kernel
    with Range and Gather)."""
    from onnx import numpy_helper

    folded = {t for node in graph.nodes for t in node.outputs if t in graph.constants or t in graph.weights}
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    kept = [node for node in copy.graph.node if not all(t in folded for t in node.output)]
    del copy.graph.node[:]
    copy.graph.node.extend(kept)
    for name in sorted(folded):
        if name in graph.constants:
            copy.graph.initializer.append(numpy_helper.from_array(graph.constants[name], name))
        else:
            tensor = copy.graph.initializer.add()
            tensor.name, tensor.data_type = name, 1
            tensor.dims.extend(graph.weights[name])
            tensor.data_location = tensor.EXTERNAL
            entry = tensor.external_data.add()
            entry.key, entry.value = "location", "(weights not read)"
    inferred = onnx.shape_inference.infer_shapes(copy, data_prop=True)
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            dims = tuple(_dims(value))
            if _unsized(graph, value.name) and None not in dims:
                graph.shapes[value.name] = dims


def _names_are_text(graph) -> bool:
    """Whether every name protobuf decoded is text (it hands over bytes where a file's name is not UTF-8)."""
    names = [graph.name, *(i.name for i in [*graph.input, *graph.output, *graph.initializer])]
    for node in graph.node:
        names.extend((node.name, node.op_type, node.domain, *node.input, *node.output))
        names.extend(a.name for a in node.attribute)
    return all(isinstance(n, str) for n in names)


def _onnx():
    try:
        import onnx
        import onnx.inliner
        import onnx.numpy_helper
        import onnx.shape_inference
    except ImportError:
        raise UserError("the onnx package is not installed", hint=INSTALL_HINT) from None
    return onnx


def _drop_weight_data(model) -> None:
    """Forget the data of large float initializers (weights): only their dims matter, and dropping them
    keeps shape inference from copying hundreds of megabytes. Integers (shapes, indices) are kept."""
    for tensor in model.graph.initializer:
        if tensor.data_type in FLOAT_TYPES and math.prod(tensor.dims) > KEPT_VALUES and tensor.data_location == 0:
            dims, data_type, tensor_name = list(tensor.dims), tensor.data_type, tensor.name
            tensor.Clear()
            tensor.name, tensor.data_type = tensor_name, data_type
            tensor.dims.extend(dims)
            tensor.data_location = tensor.EXTERNAL
            entry = tensor.external_data.add()
            entry.key, entry.value = "location", "(weights not read)"


def _image_input(model, path: str) -> str:
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]  # old files list weights as inputs
    if len(inputs) != 1:
        names = ", ".join(f"`{i.name}`" for i in inputs) or "none"
        raise UserError(
            f"{path}: the model has {len(inputs)} inputs ({names}); a spec has one input",
            hint="export the model with a single image input",
        )
    return inputs[0].name


def _dims(value_info) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def _set_input_shape(model, input_name: str, override: tuple[int, ...] | None, path: str) -> None:
    """Fix the input's dims: batch 1, and the spatial sizes from `--input` where given or left open."""
    (value,) = (i for i in model.graph.input if i.name == input_name)
    dims = _dims(value)
    if override is not None:
        dims = _overridden(dims, override, path)
    if len(dims) not in (2, 4) or any(d is None for d in dims[1:]):
        shown = "x".join("?" if d is None else str(d) for d in dims[1:]) or "a scalar"
        raise UserError(
            f"{path}: the input `{input_name}` is {shown} (batch left out); the spec needs a fixed image size",
            hint="give it with --input HxWxC" if len(dims) == 4 else "the input must be NxCxHxW images or NxK vectors",
        )
    shape = value.type.tensor_type.shape
    for dim, size in zip(shape.dim, [1, *dims[1:]]):
        dim.Clear()
        dim.dim_value = size


def _overridden(dims: list[int | None], override: tuple[int, ...], path: str) -> list[int | None]:
    """The file's dims with `--input HxWxC` put in; the file's channel count and layout are kept."""
    if len(override) != 3 or len(dims) != 4:
        raise UserError(f"{path}: --input must be HxWxC for an image input (the file's is {len(dims) - 1}-D)")
    height, width, channels = override
    if dims[1] in (channels, None) and dims[3] != channels:  # NCHW, the common case
        return [dims[0], channels, height, width]
    if dims[3] in (channels, None):
        return [dims[0], height, width, channels]
    raise UserError(
        f"{path}: --input gives {channels} channels; the file's input has {dims[1] if dims[1] is not None else dims[3]}"
    )


def _graph(model, input_name: str, path: str) -> OnnxGraph:
    onnx = _onnx()
    from onnx import helper, numpy_helper

    graph = model.graph
    shapes: dict[str, tuple[int | None, ...]] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            shapes[value.name] = tuple(_dims(value))
    weights: dict[str, tuple[int, ...]] = {}
    constants: dict[str, Any] = {}
    for tensor in graph.initializer:
        weights[tensor.name] = tuple(tensor.dims)
        shapes.setdefault(tensor.name, tuple(tensor.dims))
        if tensor.data_location == tensor.DEFAULT:
            constants[tensor.name] = numpy_helper.to_array(tensor)
    nodes = [
        GraphNode(
            index,
            node.name,
            node.op_type,
            node.domain,
            tuple(node.input),
            tuple(node.output),
            {a.name: _attribute(helper, a) for a in node.attribute},
            _module(node),
            any("FuseBatchNorm" in p.value for p in node.metadata_props if p.key == REWRITE_RULES),
        )
        for index, node in enumerate(graph.node)
    ]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if len(graph.output) != 1:
        names = ", ".join(f"`{o.name}`" for o in graph.output)
        raise UserError(f"{path}: the model has {len(graph.output)} outputs ({names}); a spec has one output")
    result = OnnxGraph(
        path=path,
        nodes=nodes,
        input=input_name,
        output=graph.output[0].name,
        shapes=shapes,
        constants=constants,
        weights=weights,
        opset=opset,
        producer=" ".join(p for p in (model.producer_name, model.producer_version) if p),
    )
    _fold_constants(result, onnx, opset)
    return result


def _module(node) -> str:
    """The PyTorch module path torch.onnx's default exporter records for a node: the last but one of its
    name scopes (the last is the traced operation). Its node names (`node_Conv_12`) say less."""
    import ast

    for entry in node.metadata_props:
        if entry.key == NAME_SCOPES:
            try:
                scopes = ast.literal_eval(entry.value)
            except (ValueError, SyntaxError):
                return ""
            return scopes[-2] if isinstance(scopes, list) and len(scopes) >= 2 and isinstance(scopes[-2], str) else ""
    return ""


def _attribute(helper, attribute) -> Any:
    value = helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value)
    return value  # a tensor (Constant's value) or a graph (If's branches) stays a proto


def _fold_constants(graph: OnnxGraph, onnx, opset: int) -> None:
    """Work out every tensor computed from constants alone (shape arithmetic: Shape, Gather, Concat,
    Constant, ...) by ONNX's own reference implementation of each operator. A weight whose data is not
    read stands in as zeros of its dims, so what is computed from it (a kernel reversed and transposed
    by jax2onnx) gets its true shape; such results are weights, not constants."""
    import numpy as np
    from onnx import helper, numpy_helper

    placeholders: set[str] = set()  # tensors whose values are stand-ins: only their shapes are true

    def known(name: str):
        if name in graph.constants:
            return graph.constants[name]
        dims = graph.weights.get(name)
        if dims is None or math.prod(dims) > PLACEHOLDER_VALUES:
            return None
        placeholders.add(name)
        return np.zeros(dims, np.float32)

    for node in graph.nodes:
        if node.domain not in ("", "ai.onnx") or len(node.outputs) != 1:
            continue
        value, stand_in = None, False
        if node.op == "Constant":
            if isinstance(node.attr("value"), onnx.TensorProto):
                value = numpy_helper.to_array(node.attr("value"))
            else:
                value = _evaluate(onnx, helper, node, [], opset)
        elif node.op == "CastLike" and node.inputs[0] in graph.constants:
            # the second input only gives the type (PyTorch's unoptimized export casts a zero bias
            # like the image): floats, as the image's are
            value = graph.constants[node.inputs[0]].astype(np.float32)
        elif node.op == "Shape":
            source = node.inputs[0]
            shape = graph.constants[source].shape if source in graph.constants else graph.shape(source)
            shape = graph.weights.get(source, shape)
            if shape is not None and None not in shape:
                start, end = node.attr("start", 0), node.attr("end", len(shape))
                value = np.array(shape[start:end], dtype=np.int64)
        elif node.inputs and all(not i or i in graph.constants or i in graph.weights for i in node.inputs):
            inputs = [known(i) if i else None for i in node.inputs]
            present = [v for v in inputs if v is not None]
            stand_in = any(i in placeholders for i in node.inputs)
            limit = PLACEHOLDER_VALUES if stand_in else FOLDED_VALUES
            if len(present) == sum(1 for i in node.inputs if i) and sum(v.size for v in present) <= limit:
                value = _evaluate(onnx, helper, node, inputs, opset)
        if value is None or value.size > (PLACEHOLDER_VALUES if stand_in else FOLDED_VALUES):
            continue
        if stand_in:
            graph.weights[node.outputs[0]] = tuple(value.shape)
            placeholders.add(node.outputs[0])
        graph.constants[node.outputs[0]] = value
        if node.op not in ("Shape", "Size") and any(i in graph.parameters for i in node.inputs):
            graph.parameters.add(node.outputs[0])  # a weight's shape is no parameter
    for name in placeholders:  # their values were zeros standing in: keep the shapes, forget the values
        graph.constants.pop(name, None)


def _evaluate(onnx, helper, node: GraphNode, inputs: list, opset: int):
    """One node run by onnx.reference on known inputs; None when it cannot run (an unknown operator)."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if value is not None else "" for i, value in enumerate(inputs)]
    proto = helper.make_node(node.op, names, ["out"])
    for key, value in node.attrs.items():
        if not isinstance(value, onnx.GraphProto):  # subgraphs (If, Loop) are never constant-folded
            proto.attribute.append(helper.make_attribute(key, value))
    try:
        evaluator = ReferenceEvaluator(proto, opsets={"": opset})
        (result,) = evaluator.run(None, {n: v for n, v in zip(names, inputs) if n})
    except Exception:  # an operator the reference cannot run: the tensor stays unknown
        return None
    return None if result is None else np.asarray(result)
