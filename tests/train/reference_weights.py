"""Random weights for a PyTorch state dict and the images to run them on, made alike here (numpy only)
and in the script that made the torchvision reference in `reference/` (which runs torchvision itself).

A state dict's arrays get values by their role, so that a mix-up of any two shows in the logits:
kernels He-scaled (activations neither vanish nor explode through 50 layers), BatchNorm statistics and
affine weights away from their initial 0 and 1."""

from __future__ import annotations

import hashlib
import zlib

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
        elif role == "running_var" or len(shape) == 1:  # a BatchNorm's variance or scale
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
