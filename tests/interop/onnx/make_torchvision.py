"""Make the torchvision ONNX corpus: each model exported as a PyTorch user would
(`torch.onnx.export(model, x, "m.onnx")`, torch's default exporter), with its weights dropped.

Run it in a scratch environment that has torchvision (it does not install beside the CPU torch of
the test extra):

    python -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 onnx onnxscript
    /tmp/tvenv/bin/python tests/interop/onnx/make_torchvision.py

For every model it writes `torchvision/NAME.onnx`: the graph as exported, its float weights turned
into external data that is not written (dims kept, values gone: `onnx.load(path,
load_external_data=False)` reads the graph), integer constants (shapes, indices) kept inside, and
each node's metadata cut to PyTorch's module path (`pkg.torch.onnx.name_scopes`) and the exporter's
rewrites (`pkg.onnxscript.rewriter.rule_name`: a BatchNorm folded into a conv). And
`torchvision.json`: for each model, torchvision's published figures, read from its weights'
metadata (`<Model>_Weights.DEFAULT.meta`, defined in torchvision/models/<family>.py of
torchvision 0.29.1): `_ops` (GFLOPS in torchvision's docs, counted as multiply-adds, rounded to 3
decimals), `num_params`, and the input size the figures are for (the weights' crop size); with
PyTorch's own exact count of the same forward pass (`torch.utils.flop_counter.FlopCounterMode`,
FLOPs / 2) and the BatchNorm running statistics (2 per channel; torchvision's `num_params` leaves
them out). A few models are also exported by the TorchScript exporter without constant folding
(`NAME_torchscript.onnx`), which keeps BatchNorm as its own node.

Weights are random (`weights=None`): the graph and the counts do not depend on them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from pathlib import Path

import onnx
import torch
import torchvision
from torchvision.models import get_model, get_model_weights

HERE = Path(__file__).parent
OUT = HERE / "torchvision"
MODELS = [
    "alexnet",
    "convnext_tiny",
    "densenet121",
    "efficientnet_b0",
    "googlenet",
    "inception_v3",
    "mnasnet0_5",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "resnet18",
    "resnet50",
    "resnext50_32x4d",
    "shufflenet_v2_x1_0",
    "squeezenet1_0",
    "squeezenet1_1",
    "vgg16",
]
# Also exported by the TorchScript exporter (`dynamo=False`) without constant folding, which keeps
# BatchNorm as its own node: the graph holds every parameter torchvision counts.
TORCHSCRIPT = ["convnext_tiny", "efficientnet_b0", "googlenet", "mobilenet_v3_small", "resnet50"]
KEPT_FLOATS = 64  # float initializers up to this many values stay (scalars such as GELU's 0.5)
KEPT_METADATA = ("pkg.torch.onnx.name_scopes", "pkg.onnxscript.rewriter.rule_name")
FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}


def strip(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """Drop the float weights' values (dims kept, as external data that is never written) and every
    node's metadata but its PyTorch module path and the optimizer's rewrites (a folded BatchNorm)."""
    for tensor in model.graph.initializer:
        size = 1
        for d in tensor.dims:
            size *= d
        if tensor.data_type in FLOATS and size > KEPT_FLOATS:
            dims, data_type, tensor_name = list(tensor.dims), tensor.data_type, tensor.name
            tensor.Clear()
            tensor.name, tensor.data_type = tensor_name, data_type
            tensor.dims.extend(dims)
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", f"{name}.onnx.data"), ("offset", "0"), ("length", str(size * 4))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
    for node in model.graph.node:
        kept = [(p.key, p.value) for p in node.metadata_props if p.key in KEPT_METADATA]
        del node.metadata_props[:]
        for key, value in kept:
            entry = node.metadata_props.add()
            entry.key, entry.value = key, value
        node.doc_string = ""
    return model


def main() -> None:
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    OUT.mkdir(exist_ok=True)
    names = sys.argv[1:] or MODELS
    table_path = HERE / "torchvision.json"
    table = json.loads(table_path.read_text()) if table_path.exists() else {}
    for name in names:
        weights = get_model_weights(name).DEFAULT
        size = weights.transforms().crop_size[0]
        model = get_model(name, weights=None).eval()
        start = time.time()
        scratch = Path("/tmp") / f"{name}.onnx"
        x = torch.randn(1, 3, size, size)
        torch.onnx.export(model, (x,), str(scratch))
        exported = onnx.load(str(scratch))  # with its external data, to strip
        onnx.save(strip(exported, name), str(OUT / f"{name}.onnx"))
        if name in TORCHSCRIPT:
            torch.onnx.export(model, (x,), str(scratch), dynamo=False, do_constant_folding=False)
            onnx.save(strip(onnx.load(str(scratch)), name), str(OUT / f"{name}_torchscript.onnx"))
        ran = []  # the BatchNorms the forward pass runs (not those of GoogLeNet's training-only aux heads)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.register_forward_hook(lambda m, args, out, ran=ran: ran.append(m))
        with torch.utils.flop_counter.FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        statistics = sum(m.running_mean.numel() * 2 for m in ran)
        table[name] = {
            "weights": f"{type(weights).__name__}.{weights.name}",
            "input": f"{size}x{size}x3",
            "ops_gmacs": weights.meta["_ops"],
            "num_params": weights.meta["num_params"],
            "batchnorm_statistics": statistics,
            "flop_counter_macs": counter.get_total_flops() // 2,
        }
        print(
            f"{name}: {time.time() - start:.1f} s, {(OUT / f'{name}.onnx').stat().st_size / 1024:.0f} KiB", flush=True
        )
    table = dict(sorted(table.items()))
    header = {
        "_source": (
            f"torchvision {torchvision.__version__}, torch {torch.__version__}: <Model>_Weights.DEFAULT.meta "
            "('_ops' in GFLOPS as torchvision's docs print it, which counts multiply-adds; 'num_params'), "
            "defined in torchvision/models/<family>.py; https://docs.pytorch.org/vision/stable/models.html"
        ),
        "_exported_with": (
            "torch.onnx.export(model.eval(), (torch.randn(1, 3, S, S),), path) (the default exporter); "
            "NAME_torchscript.onnx: the same with dynamo=False, do_constant_folding=False"
        ),
    }
    table_path.write_text(
        json.dumps({**header, **{k: v for k, v in table.items() if not k.startswith("_")}}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
