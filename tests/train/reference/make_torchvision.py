"""Make the torchvision reference of tests/train/test_pretrained.py: torchvision's ShuffleNetV2 1.0x
with weights drawn by `reference_weights.state_dict`, its logits, and its ONNX export without the weights.

torchvision does not install beside the test extra's torch, so run this in a scratch environment:

    python -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 onnx onnxscript
    /tmp/tvenv/bin/python tests/train/reference/make_torchvision.py

It writes, next to itself:
- `shufflenet_v2_x1_0.json`: the versions, the state dict's entries (name, shape, dtype) in
  torchvision's order, and the fingerprint of the weights drawn for them (`reference_weights.digest`);
- `shufflenet_v2_x1_0_logits.npy`: torchvision's logits (eval mode) for `reference_weights.images()`;
- `shufflenet_v2_x1_0.onnx`: the model exported by torch.onnx's TorchScript exporter without constant
  folding (BatchNorm stays its own operator, and every initializer keeps its state-dict name), with a
  dynamic batch; each initializer's values dropped (its dims kept, marked as external data that is
  never written), so the test fills in the weights it draws itself.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torchvision

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
import reference_weights  # noqa: E402

NAME = "shufflenet_v2_x1_0"


def strip(model: onnx.ModelProto, weights: dict) -> onnx.ModelProto:
    """The graph with the values of the state dict's initializers dropped (dims and names kept)."""
    for tensor in model.graph.initializer:
        if tensor.name not in weights:
            continue
        dims, data_type, name = list(tensor.dims), tensor.data_type, tensor.name
        tensor.Clear()
        tensor.name, tensor.data_type = name, data_type
        tensor.dims.extend(dims)
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", f"{NAME}.weights"), ("offset", "0"), ("length", str(weights[name].nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    return model


def main() -> None:
    warnings.simplefilter("ignore")
    model = torchvision.models.get_model(NAME, weights=None).eval()
    entries = [(name, list(t.shape), str(t.numpy().dtype)) for name, t in model.state_dict().items()]
    weights = reference_weights.state_dict(entries)
    model.load_state_dict({name: torch.from_numpy(array) for name, array in weights.items()})
    nchw = torch.from_numpy(reference_weights.images().transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        logits = model(nchw).numpy()
    np.save(HERE / f"{NAME}_logits.npy", logits)

    scratch = Path("/tmp") / f"{NAME}.onnx"
    torch.onnx.export(
        model,
        (nchw,),
        str(scratch),
        dynamo=False,
        do_constant_folding=False,
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
    )
    exported = onnx.load(str(scratch))
    names = {tensor.name for tensor in exported.graph.initializer}
    floats = {name for name, array in weights.items() if array.dtype.kind == "f"}
    # The weights the test draws must be all the graph reads: every float of the state dict is an
    # initializer under its own name (none renamed, merged or folded away).
    assert names == floats, (sorted(names - floats)[:5], sorted(floats - names)[:5])
    onnx.save(strip(exported, weights), str(HERE / f"{NAME}.onnx"))

    record = {
        "made_by": f"tests/train/reference/make_torchvision.py: torchvision {torchvision.__version__}, torch "
        f"{torch.__version__}, numpy {np.__version__}",
        "model": f"torchvision.models.{NAME}(weights=None), weights from reference_weights.state_dict",
        "input": [int(n) for n in nchw.shape],
        "weights_sha256": reference_weights.digest(weights),
    }
    rows = ",\n".join(f"  {json.dumps(entry)}" for entry in entries)  # an entry a line
    (HERE / f"{NAME}.json").write_text(json.dumps(record, indent=1)[:-2] + f',\n "state_dict": [\n{rows}\n ]\n}}\n')
    sizes = {p.name: p.stat().st_size for p in sorted(HERE.glob(f"{NAME}*"))}
    print(f"logits std {logits.std():.3f}, max |logit| {np.abs(logits).max():.3f}; sizes {sizes}")


if __name__ == "__main__":
    main()
