"""How other frameworks lay out a layer's weights, and how each array becomes the Flax one: one table
per framework, one row per layer family. `pretrained` reads the files; this module only converts.

Flax's names and layouts are the targets: `kernel` HWIO for convolutions ((kh, kw, in/groups, out),
so a depthwise kernel is (kh, kw, 1, channels x multiplier)), (in, out) for dense layers; `scale`,
`bias`, `mean`, `var` for BatchNorm; `depthwise.kernel`, `pointwise.kernel`, `pointwise.bias` for a
separable convolution; `mean`, `variance`, `count` for Keras Normalization.

(These rows belong with the layer kinds' Keras, ONNX and PyTorch facets in `archspec/layers/*` once
those exist; they are kept together here so that they can move there in one piece.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def same(array: np.ndarray) -> np.ndarray:
    return array


def depthwise_keras(array: np.ndarray) -> np.ndarray:
    """Keras (kh, kw, channels, multiplier) → Flax (kh, kw, 1, channels x multiplier): output channel
    c x multiplier + m in both."""
    kh, kw, channels, multiplier = array.shape
    return array.reshape(kh, kw, 1, channels * multiplier)


def conv_oihw(array: np.ndarray) -> np.ndarray:
    """PyTorch and ONNX (out, in/groups, kh, kw) → Flax (kh, kw, in/groups, out)."""
    return array.transpose(2, 3, 1, 0)


def dense_out_in(array: np.ndarray) -> np.ndarray:
    """PyTorch Linear and ONNX Gemm(transB=1) (out, in) → Flax (in, out)."""
    return array.T


def per_channel(array: np.ndarray) -> np.ndarray:
    """A per-channel vector stored with broadcast axes ((C, 1, 1): torchvision's layer scale) → (C,)."""
    return array.reshape(-1)


@dataclass(frozen=True)
class Var:
    """One stored array of a layer: the Flax name it becomes, the conversion, and the config switch
    (Keras `use_bias`, `scale`, `center`) without which the layer does not store it."""

    flax: str
    convert: Callable[[np.ndarray], np.ndarray] = same
    needs: str | None = None


# Keras 3, by layer class (as `.weights.h5` names its groups: the class in snake case), the variables
# in the order Keras creates and stores them (`vars/0`, `vars/1`, ...).
KERAS: dict[str, tuple[Var, ...]] = {
    "conv2d": (Var("kernel"), Var("bias", needs="use_bias")),
    "dense": (Var("kernel"), Var("bias", needs="use_bias")),
    "depthwise_conv2d": (Var("kernel", depthwise_keras), Var("bias", needs="use_bias")),
    "separable_conv2d": (
        Var("depthwise.kernel", depthwise_keras),
        Var("pointwise.kernel"),
        Var("pointwise.bias", needs="use_bias"),
    ),
    "batch_normalization": (
        Var("scale", needs="scale"),
        Var("bias", needs="center"),
        Var("mean"),
        Var("var"),
    ),
    "layer_normalization": (Var("scale", needs="scale"), Var("bias", needs="center")),
    "group_normalization": (Var("scale", needs="scale"), Var("bias", needs="center")),
    "normalization": (Var("mean"), Var("variance"), Var("count")),
}


def keras_class(class_name: str) -> str:
    """Keras' own snake case of a class name (`DepthwiseConv2D` → `depthwise_conv2d`), as saving names groups."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_vars(kind: str, arrays: list[np.ndarray], config: dict | None) -> dict[str, np.ndarray] | None:
    """The Flax arrays of a Keras layer of class `kind` storing `arrays` (None: a class without
    weights this table knows). Without its `config` (a bare `.weights.h5`), optional variables are
    told apart by their count: a missing bias is the last one, a BatchNorm of 3 has no `scale`."""
    row = KERAS.get(kind)
    if row is None:
        return None
    if config is not None:
        present = [var for var in row if var.needs is None or config.get(var.needs, True)]
    else:
        present = list(row)
        for var in [var for var in row if var.needs is not None]:
            if len(present) > len(arrays):
                present.remove(var)
    if len(present) != len(arrays):
        return None
    return {var.flax: var.convert(np.asarray(array)) for var, array in zip(present, arrays)}


# PyTorch modules, told apart by the names and ranks of their parameters and buffers (a state dict
# does not say the module's class): (names, rank of `weight` or None) -> {torch name: Var}.
TORCH: tuple[tuple[frozenset, int | None, dict[str, Var]], ...] = (
    (frozenset({"weight", "bias"}), 4, {"weight": Var("kernel", conv_oihw), "bias": Var("bias")}),
    (frozenset({"weight"}), 4, {"weight": Var("kernel", conv_oihw)}),
    (frozenset({"weight", "bias"}), 2, {"weight": Var("kernel", dense_out_in), "bias": Var("bias")}),
    (frozenset({"weight"}), 2, {"weight": Var("kernel", dense_out_in)}),
    (
        frozenset({"weight", "bias", "running_mean", "running_var"}),
        1,
        {"weight": Var("scale"), "bias": Var("bias"), "running_mean": Var("mean"), "running_var": Var("var")},
    ),
    (frozenset({"running_mean", "running_var"}), None, {"running_mean": Var("mean"), "running_var": Var("var")}),
    (frozenset({"weight", "bias"}), 1, {"weight": Var("scale"), "bias": Var("bias")}),  # LayerNorm, GroupNorm
    (frozenset({"layer_scale"}), None, {"layer_scale": Var("gamma", per_channel)}),  # torchvision ConvNeXt
)
TORCH_IGNORED = frozenset({"num_batches_tracked"})  # BatchNorm's step counter: no Flax counterpart


def torch_vars(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The Flax arrays of one PyTorch module's parameters and buffers (None: not a known module)."""
    named = {name: array for name, array in arrays.items() if name not in TORCH_IGNORED}
    rank = named["weight"].ndim if "weight" in named else None
    for names, weight_rank, row in TORCH:
        if set(named) == names and (weight_rank is None or weight_rank == rank):
            return {row[name].flax: row[name].convert(np.asarray(array)) for name, array in named.items()}
    return None


# ONNX operators: input position -> Var (inputs 0 is the activation).
ONNX: dict[str, dict[int, Var]] = {
    "Conv": {1: Var("kernel", conv_oihw), 2: Var("bias")},
    "BatchNormalization": {1: Var("scale"), 2: Var("bias"), 3: Var("mean"), 4: Var("var")},
    "LayerNormalization": {1: Var("scale"), 2: Var("bias")},
    "GroupNormalization": {1: Var("scale"), 2: Var("bias")},
    "MatMul": {1: Var("kernel")},  # (in, out) already; its bias is the Add that follows (`onnx_vars`)
}


def onnx_gemm(arrays: dict[int, np.ndarray], trans_b: bool) -> dict[str, np.ndarray]:
    """Gemm(A, B, C): B is (in, out), or (out, in) with transB=1 (PyTorch's Linear export)."""
    vars_ = {"kernel": dense_out_in(arrays[1]) if trans_b else arrays[1]}
    if 2 in arrays:
        vars_["bias"] = arrays[2]
    return vars_
