"""Read an ONNX file as a spec: each node (or small pattern of nodes, like Sigmoid·Mul for SiLU)
becomes a spec layer, NCHW tensors are read as the spec's NHWC, and the layers are written as spec
text with a comment naming their ONNX node. `summarize`, `lint`, `draw` and `import` read `.onnx`
files through here; errors and findings point at the ONNX node (a line of `OnnxGraph.listing`).
"""

from __future__ import annotations

from pathlib import Path

from archspec.interop.graph_text import write_graph
from archspec.interop.imported import ImportedSpec
from archspec.interop.onnx_graph import read_onnx
from archspec.interop.onnx_reader import Reader, node_span


def import_onnx(path: str, input_shape: tuple[int, ...] | None = None) -> ImportedSpec:
    """The spec of an ONNX model: its text (one line per layer, each naming its ONNX node) and, for
    each line, the node it came from as a place in the graph's listing.

    Raises SpecError at the node the spec cannot say, UserError/PathError for a file that is not a
    readable ONNX model with one image input.
    """
    graph = read_onnx(path, input_shape)
    reader = Reader(graph)
    output = reader.run()
    header = (
        f"# Imported from {path} ({graph.producer or 'unknown producer'}, opset {graph.opset}) by `cnn-arch import`; "
        "one line per ONNX node, NCHW read as the spec's HxWxC."
    )
    text, origins = write_graph(reader.items, output, header)
    spans = {line: node_span(graph, index) for line, index in origins.items()}
    layers = {line: _named(graph.nodes[index or 0]) for line, index in origins.items()}
    return ImportedSpec(Path(path).stem, text, spans, graph.listing(), node_span(graph, 0), layers)


def _named(node) -> str:
    """How errors and findings name a node: `ONNX node 12 `layer1.0.conv1` (Conv)`."""
    return f"ONNX node {node.number}" + (f" `{node.label}`" if node.label else "") + f" ({node.op_name})"
