"""Random weights for a PyTorch state dict and the images to run them on, made alike here (numpy only)
and in the script that made the torchvision reference in `reference/` (which runs torchvision itself).

A state dict's arrays get values by their role, so that a mix-up of any two shows in the logits:
kernels He-scaled (activations neither vanish nor explode through 50 layers), BatchNorm statistics and
affine weights away from their initial 0 and 1, ConvNeXt's layer scale (C, 1, 1) like an affine scale.

`torchvision` gives a test the reference made by reference/make_torchvision.py: the same weights
drawn again, and torchvision's graph computing with them (onnxruntime)."""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 1


def images(count: int = 4, size: int = 32) -> np.ndarray:
    """`count` RGB images in [0, 1), channels last."""
    return np.random.default_rng(0).uniform(0, 1, (count, size, size, 3)).astype(np.float32)


def state_dict(entries: list[tuple[str, list[int], str]]) -> dict[str, np.ndarray]:
    """Values for a state dict's (name, shape, dtype) entries; each drawn from its own stream (the seed
    and the name), so that its values do not depend on the order of the others."""
    weights = {}
    for name, shape, dtype in entries:
        rng = np.random.default_rng([SEED, zlib.crc32(name.encode())])
        role = name.rpartition(".")[2]
        if not np.issubdtype(np.dtype(dtype), np.floating):  # num_batches_tracked
            values = np.zeros(shape)
        elif role == "running_mean" or role == "bias":
            values = rng.normal(0, 0.1, shape)
        elif role in ("running_var", "layer_scale") or len(shape) == 1:  # a variance or a scale
            values = rng.uniform(0.5, 1.5, shape)
        else:  # a kernel (out, in, ...): He-scaled by its fan-in
            values = rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape)
        weights[name] = values.astype(dtype)
    return weights


def digest(weights: dict[str, np.ndarray]) -> str:
    """A fingerprint of the weights: whether numpy drew the same values as when the reference was made."""
    hashed = hashlib.sha256()
    for name, array in weights.items():
        hashed.update(name.encode())
        hashed.update(np.ascontiguousarray(array).tobytes())
    return hashed.hexdigest()


REFERENCE = Path(__file__).parent / "reference"


@dataclass
class Torchvision:
    """A torchvision model as reference/make_torchvision.py recorded it, with the weights drawn again."""

    weights: dict[str, np.ndarray]  # the state dict, in torchvision's order
    onnx: Path  # torch.onnx's export with those weights filled in
    torch_logits: np.ndarray  # torchvision's, on images()
    onnx_logits: np.ndarray  # onnxruntime's, on images(): torchvision's computation at test time


def torchvision(name: str, folder: Path) -> Torchvision:
    """torchvision's model `name` (a NAME of make_torchvision.py), its ONNX graph written into `folder`."""
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    record = json.loads((REFERENCE / f"{name}.json").read_text())
    weights = state_dict(record["state_dict"])
    assert digest(weights) == record["weights_sha256"], "numpy drew other weights than torchvision had"
    graph = onnx.load(str(REFERENCE / f"{name}.onnx"), load_external_data=False)
    for tensor in graph.graph.initializer:
        tensor.CopyFrom(numpy_helper.from_array(weights[tensor.name], tensor.name))
    path = folder / f"{name}.onnx"
    onnx.save(graph, str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (from_onnx,) = session.run(None, {"images": images().transpose(0, 3, 1, 2).copy()})
    from_torch = np.load(REFERENCE / f"{name}_logits.npy")
    # the export with the weights filled in is torchvision's model
    assert np.abs(from_onnx - from_torch).max() <= 1e-4 * max(1.0, float(np.abs(from_torch).max()))
    return Torchvision(weights, path, from_torch, from_onnx)
