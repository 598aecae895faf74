"""ONNX graphs written with `onnx.helper` for the reader's tests, and what onnxruntime says of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FLOATS = 1  # onnx.TensorProto.FLOAT


def node(op: str, inputs: list[str], outputs: list[str] | str = "y", name: str = "", **attrs):
    from onnx import helper

    outputs = [outputs] if isinstance(outputs, str) else outputs
    return helper.make_node(op, inputs, outputs, name=name or f"/{op}_{outputs[0]}", **attrs)


def save(
    path: Path,
    nodes: list,
    weights: dict[str, tuple[int, ...] | np.ndarray] | None = None,
    shape: tuple = (1, 3, 8, 8),
    output: str = "y",
    opset: int = 20,
    input_name: str = "x",
) -> str:
    """Write a model with one float input `x` of `shape`; `weights` are random float initializers
    (a shape) or given values (an array)."""
    import onnx
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    initializers = []
    for name, value in (weights or {}).items():
        array = value if isinstance(value, np.ndarray) else rng.standard_normal(value).astype(np.float32)
        initializers.append(numpy_helper.from_array(array, name))
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(input_name, FLOATS, list(shape))],
        [helper.make_tensor_value_info(output, FLOATS, None)],
        initializer=initializers,
    )
    domains = {n.domain for n in nodes if n.domain}  # an operator of another domain: its opset, version 1
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in sorted(domains))]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="test")
    onnx.save(model, str(path))
    return str(path)


def run(path: str, x: np.ndarray) -> np.ndarray:
    """The model's output on `x`, by onnxruntime."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    return out


def file_params(path: str) -> int:
    """Values of the model's float initializers: its weights, as the file holds them."""
    import onnx

    model = onnx.load(path)
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == FLOATS)
