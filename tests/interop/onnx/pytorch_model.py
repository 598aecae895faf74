"""The PyTorch user's door of docs/interop.md: a model with a flatten head, exported as a user would.
`python tests/interop/onnx/pytorch_model.py` (torch and onnxscript installed) writes `model.onnx` here;
its weights go to `model.onnx.data`, which is not kept (the reader does not need it), and its nodes'
metadata is cut to the PyTorch module paths (the stack traces name this machine's folders)."""

from pathlib import Path

import onnx
import torch
from torch import nn

model = nn.Sequential(
    nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 56 * 56, 128), nn.ReLU(), nn.Linear(128, 10),
)  # fmt: skip
path = Path(__file__).with_name("model.onnx")
torch.onnx.export(model.eval(), (torch.randn(1, 3, 224, 224),), str(path), optimize=False)
path.with_name("model.onnx.data").unlink()
graph = onnx.load(str(path), load_external_data=False)
for node in graph.graph.node:
    kept = [(p.key, p.value) for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"]
    del node.metadata_props[:]
    for key, value in kept:
        entry = node.metadata_props.add()
        entry.key, entry.value = key, value
onnx.save(graph, str(path))
