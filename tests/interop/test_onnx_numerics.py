"""The reader's translations compute what the ONNX node computes: onnxruntime's output equals the
output of the spec's Flax model built from the imported spec, on the same random input. The layers
here have no weights, or weights a fresh Flax layer starts with (BatchNorm's and the norms' scale 1
and shift 0, given so in the file): the padding, ceil_mode, count_include_pad, interpolation,
channel order and activation forms the reader claims to read exactly."""

from __future__ import annotations

import numpy as np
import pytest

from tests.interop.onnx_graphs import node, run, save
from tests.interop.test_onnx_import import read

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow  # builds and runs a Flax model per case: XLA compiles, about 15 s in all

ONES, ZEROS = np.ones(3, np.float32), np.zeros(3, np.float32)
NORM = {"s": ONES, "b": ZEROS}

CASES = {
    "maxpool ceil_mode as same": ([node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)], {}),
    "maxpool pads": ([node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])], {}),
    "avgpool counting pad zeros": (
        [node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)],
        {},
    ),
    "avgpool of real pixels": (
        [node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0)],
        {},
    ),
    "avgpool ceil_mode": ([node("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)], {}),
    "nearest, PyTorch's": (
        [
            node(
                "Resize",
                ["x", "", "scales"],
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            )
        ],
        {"scales": np.array([1, 1, 2, 3], np.float32)},
    ),
    "nearest, half-pixel": (
        [node("Resize", ["x", "", "scales"], mode="nearest")],
        {"scales": np.array([1, 1, 3, 2], np.float32)},
    ),
    "bilinear, align_corners=False": (
        [node("Resize", ["x", "", "scales"], mode="linear", coordinate_transformation_mode="pytorch_half_pixel")],
        {"scales": np.array([1, 1, 2, 2], np.float32)},
    ),
    "channel shuffle": (
        [
            node("Concat", ["x", "x"], ["c"], axis=1),
            node("Reshape", ["c", "s5"], ["g"]),
            node("Transpose", ["g"], ["t"], perm=[0, 2, 1, 3, 4]),
            node("Reshape", ["t", "s4"]),
        ],
        {"s5": np.array([-1, 2, 3, 7, 7], np.int64), "s4": np.array([-1, 6, 7, 7], np.int64)},
    ),
    "split and slice": (
        [
            node("Slice", ["x", "st", "en", "ax"], ["a"]),
            node("Pad", ["a", "pads"]),
        ],
        {
            "st": np.array([1, 1], np.int64),
            "en": np.array([3, 6], np.int64),
            "ax": np.array([1, 2], np.int64),
            "pads": np.array([0, 0, 2, 0, 0, 0, 1, 3], np.int64),
        },
    ),
    "exact GELU decomposed": (
        [
            node("Div", ["x", "sqrt2"], ["d"]),
            node("Erf", ["d"], ["e"]),
            node("Add", ["e", "one"], ["a"]),
            node("Mul", ["x", "a"], ["m"]),
            node("Mul", ["m", "half"]),
        ],
        {"sqrt2": np.array(1.4142135, np.float32), "one": np.array(1, np.float32), "half": np.array(0.5, np.float32)},
    ),
    "hard swish, hard sigmoid, SiLU, ReLU6": (
        [
            node("HardSwish", ["x"], ["h"]),
            node("HardSigmoid", ["h"], ["g"], alpha=1 / 6),
            node("Sigmoid", ["g"], ["s"]),
            node("Mul", ["g", "s"], ["silu"]),
            node("Clip", ["silu", "zero", "six"]),
        ],
        {"zero": np.array(0, np.float32), "six": np.array(6, np.float32)},
    ),
    "batch norm, layer norm channels-last, instance norm": (
        [
            node("BatchNormalization", ["x", "s", "b", "b", "s"], ["n"], epsilon=1e-5),
            node("Transpose", ["n"], ["t"], perm=[0, 2, 3, 1]),
            node("LayerNormalization", ["t", "s", "b"], ["l"], epsilon=1e-5),
            node("Transpose", ["l"], ["u"], perm=[0, 3, 1, 2]),
            node("InstanceNormalization", ["u", "s", "b"], epsilon=1e-5),
        ],
        NORM,
    ),
    "local response norm": ([node("LRN", ["x"], size=3, alpha=1e-2, beta=0.75, bias=2.0)], {}),
    "mean over height and width, flattened, softmax": (
        [
            node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
            node("Flatten", ["m"], ["f"]),
            node("Softmax", ["f"], axis=-1),
        ],
        {"axes": np.array([2, 3], np.int64)},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_function_as_onnxruntime(tmp_path, case):
    import jax.numpy as jnp

    from archspec.flax_model import build_model

    nodes, weights = CASES[case]
    path = save(tmp_path / "m.onnx", nodes, weights, shape=(2, 3, 7, 7))
    _, typed = read(path)
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7)).astype(np.float32)
    expected = run(path, x)
    got = np.asarray(build_model(typed)(jnp.asarray(x.transpose(0, 2, 3, 1))))
    if expected.ndim == 4:
        expected = expected.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
