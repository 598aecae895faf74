"""Reading ONNX graphs: each operator the reader knows, written with `onnx.helper`, becomes the spec
lines a user would write, with onnxruntime's output shape and the file's parameter count; what the
spec cannot say is refused at the node, by name and number."""

from __future__ import annotations

import numpy as np
import pytest

from tests.interop.onnx_graphs import file_params, node, run, save

pytest.importorskip("onnx")  # the test extra installs it: this only guards a bare `pip install .`


def read(path: str, input_shape=None):
    from archspec.interop.onnx_import import import_onnx
    from archspec.interop.readers import compile_imported

    imported = import_onnx(path, input_shape)
    return imported, compile_imported(imported)


def spec_lines(imported) -> list[str]:
    """The spec's lines without the header and the node comments."""
    lines = [line.split("#")[0].rstrip() for line in imported.text.splitlines()[1:]]
    return [line for line in lines if line]


def nhwc(shape) -> tuple[int, ...]:
    return (*shape[2:], shape[1]) if len(shape) == 4 else tuple(shape[1:])


CONV = {"W": (8, 3, 3, 3), "B": (8,)}

# (case, nodes, weights, input shape, the spec lines after `input`)
CASES = [
    ("conv same", [node("Conv", ["x", "W", "B"], pads=[1, 1, 1, 1])], CONV, None, ["conv 8 3 padding=same"]),
    (
        "conv stride 2, PyTorch's symmetric pads",
        [node("Conv", ["x", "W", "B"], strides=[2, 2], pads=[1, 1, 1, 1])],
        CONV,
        None,
        ["conv 8 3 stride=2 padding=1"],
    ),
    (
        "conv stride 2, TensorFlow's same pads",
        [node("Conv", ["x", "W", "B"], strides=[2, 2], pads=[0, 0, 1, 1])],
        CONV,
        None,
        ["conv 8 3 stride=2 padding=same"],
    ),
    (
        "conv with pads before only: zeropad first",
        [node("Conv", ["x", "W"], strides=[2, 2], pads=[1, 1, 0, 0])],
        {"W": (8, 3, 3, 3)},
        None,
        ["zeropad 1x0x1x0", "conv 8 3 stride=2 bias=false"],
    ),
    (
        "conv auto_pad SAME_LOWER",
        [node("Conv", ["x", "W"], strides=[2, 2], auto_pad="SAME_LOWER")],
        {"W": (8, 3, 3, 3)},
        None,
        ["zeropad 1x0x1x0", "conv 8 3 stride=2 bias=false"],
    ),
    (
        "conv with dilation",
        [node("Conv", ["x", "W", "B"], dilations=[2, 2], pads=[2, 2, 2, 2])],
        CONV,
        None,
        ["conv 8 3 padding=same dilation=2"],
    ),
    (
        "depthwise conv with a multiplier",
        [node("Conv", ["x", "W"], group=3, pads=[1, 1, 1, 1])],
        {"W": (6, 1, 3, 3)},
        None,
        ["dwconv 3 padding=same multiplier=2 bias=false"],
    ),
    (
        "grouped conv",
        [node("Conv", ["x", "W", "B"], group=2, kernel_shape=[3, 5])],
        {"W": (8, 2, 3, 5), "B": (8,)},
        (1, 4, 8, 8),
        ["conv 8 3x5 groups=2"],
    ),
    (
        "conv, then its bias added apart",
        [node("Conv", ["x", "W"], ["c"]), node("Add", ["c", "B"])],
        {"W": (8, 3, 3, 3), "B": (8, 1, 1)},
        None,
        ["conv 8 3"],
    ),
    (
        "transposed conv, U-Net's 2x2 stride 2",
        [node("ConvTranspose", ["x", "W", "B"], strides=[2, 2])],
        {"W": (3, 8, 2, 2), "B": (8,)},
        None,
        ["convtranspose 8 2 stride=2"],
    ),
    (
        "transposed conv with PyTorch's padding and output_padding",
        [node("ConvTranspose", ["x", "W"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])],
        {"W": (3, 8, 3, 3)},
        None,
        ["convtranspose 8 3 stride=2 bias=false", "crop 1x0x1x0"],
    ),
    (
        "batch norm",
        [node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-5)],
        {"s": (3,), "b": (3,), "m": (3,), "v": (3,)},
        None,
        ["bn momentum=0.9 epsilon=1e-05"],
    ),
    (
        "flatten and Gemm",
        [node("Flatten", ["x"], ["f"]), node("Gemm", ["f", "W", "B"], transB=1)],
        {"W": (10, 192), "B": (10,)},
        None,
        ["flatten", "dense 10"],
    ),
    (
        "global pooling, Reshape to a vector, MatMul plus bias",
        [
            node("GlobalAveragePool", ["x"], ["p"]),
            node("Reshape", ["p", "shape"], ["v"]),
            node("MatMul", ["v", "W"], ["m"]),
            node("Add", ["m", "B"]),
        ],
        {"W": (3, 10), "B": (10,), "shape": np.array([1, -1], np.int64)},
        None,
        ["gap", "dense 10"],
    ),
    (
        "mean over height and width, kept",
        [node("ReduceMean", ["x", "axes"], keepdims=1)],
        {"axes": np.array([2, 3], np.int64)},
        None,
        ["gap keepdims=true"],
    ),
    (
        "max pooling, PyTorch's padding",
        [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        {},
        None,
        ["maxpool 3 stride=2 padding=1"],
    ),
    (
        "max pooling with ceil_mode (GoogLeNet, SqueezeNet)",
        [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)],
        {},
        None,
        ["maxpool 3 stride=2 padding=same"],
    ),
    (
        "ceil_mode that changes nothing",
        [node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)],
        {},
        None,
        ["maxpool 2"],
    ),
    (
        "average pooling counting the pad zeros (PyTorch's default)",
        [node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)],
        {},
        None,
        ["zeropad 1", "avgpool 3 stride=1"],
    ),
    (
        "average pooling of real pixels only (ONNX's default)",
        [node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        {},
        None,
        ["avgpool 3 stride=2 padding=1"],
    ),
    (
        "residual add",
        [node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["r"]), node("Add", ["r", "x"])],
        {"W": (3, 3, 3, 3), "B": (3,)},
        None,
        ["add:", "    branch:", "        conv 3 3 padding=same", "        relu", "    identity"],
    ),
    (
        "squeeze-excite: a gate multiplied in",
        [
            node("GlobalAveragePool", ["x"], ["p"]),
            node("Conv", ["p", "W", "B"], ["c"]),
            node("Sigmoid", ["c"], ["g"]),
            node("Mul", ["x", "g"]),
        ],
        {"W": (3, 3, 1, 1), "B": (3,)},
        None,
        [
            "multiply:",
            "    identity",
            "    branch:",
            "        gap keepdims=true",
            "        conv 3 1",
            "        sigmoid",
        ],
    ),
    (
        "concat of two branches",
        [
            node("Conv", ["x", "W"], ["a"]),
            node("MaxPool", ["x"], ["b"], kernel_shape=[3, 3], strides=[1, 1]),
            node("Concat", ["a", "b"], axis=1),
        ],
        {"W": (5, 3, 3, 3)},
        None,
        ["concat:", "    conv 5 3 bias=false", "    maxpool 3 stride=1"],
    ),
    (
        "channel split, concat and shuffle (ShuffleNet V2)",
        [
            node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2),
            node("Relu", ["b"], ["r"]),
            node("Concat", ["a", "r"], ["c"], axis=1),
            node("Reshape", ["c", "s5"], ["g"]),
            node("Transpose", ["g"], ["t"], perm=[0, 2, 1, 3, 4]),
            node("Reshape", ["t", "s4"]),
        ],
        {"s5": np.array([1, 2, 2, 8, 8], np.int64), "s4": np.array([1, 4, 8, 8], np.int64)},
        (1, 4, 8, 8),
        ["concat:", "    channels 0:2", "    branch:", "        channels 2:4", "        relu", "shuffle 2"],
    ),
    (
        "slices of channels and of the image",
        [node("Slice", ["x", "starts", "ends", "axes"])],
        {
            "starts": np.array([1, 2, 0], np.int64),
            "ends": np.array([3, 7, 2**62], np.int64),
            "axes": np.array([1, 2, 3], np.int64),
        },
        None,
        ["channels 1:3", "crop 2x1x0x0"],
    ),
    (
        "Pad with zeros",
        [node("Pad", ["x", "pads"])],
        {"pads": np.array([0, 0, 1, 2, 0, 0, 3, 4], np.int64)},
        None,
        ["zeropad 1x3x2x4"],
    ),
    (
        "nearest upsampling",
        [node("Resize", ["x", "", "scales"], mode="nearest")],
        {"scales": np.array([1, 1, 2, 2], np.float32)},
        None,
        ["upsample 2"],
    ),
    (
        "bilinear upsampling with half-pixel centres",
        [node("Resize", ["x", "", "scales"], mode="linear", coordinate_transformation_mode="pytorch_half_pixel")],
        {"scales": np.array([1, 1, 2, 3], np.float32)},
        None,
        ["upsample 2x3 method=bilinear"],
    ),
    (
        "channels-last LayerNorm and Linear (ConvNeXt)",
        [
            node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
            node("LayerNormalization", ["t", "s", "b"], ["n"], epsilon=1e-6),
            node("MatMul", ["n", "W"], ["m"]),
            node("Add", ["m", "B"], ["d"]),
            node("Gelu", ["d"], ["g"]),
            node("Transpose", ["g"], ["u"], perm=[0, 3, 1, 2]),
            node("Mul", ["gamma", "u"]),
        ],
        {"s": (3,), "b": (3,), "W": (3, 12), "B": (12,), "gamma": np.full((12, 1, 1), 1e-6, np.float32)},
        None,
        ["layernorm epsilon=1e-06", "dense 12", "gelu", "layerscale"],
    ),
    (
        "dropout and softmax",
        [node("Flatten", ["x"], ["f"]), node("Dropout", ["f", "ratio"], ["d"]), node("Softmax", ["d"])],
        {"ratio": np.array(0.25, np.float32)},
        None,
        ["flatten", "dropout 0.25", "softmax"],
    ),
    (
        "ReLU6 as Clip, hard swish, hard sigmoid, leaky ReLU",
        [
            node("Clip", ["x", "zero", "six"], ["a"]),
            node("HardSwish", ["a"], ["b"]),
            node("HardSigmoid", ["b"], ["c"], alpha=1 / 6),
            node("LeakyRelu", ["c"], alpha=0.2),
        ],
        {"zero": np.array(0, np.float32), "six": np.array(6, np.float32)},
        None,
        ["relu6", "hard_swish", "hard_sigmoid", "leaky_relu 0.2"],
    ),
    (
        "SiLU as Sigmoid times its input",
        [node("Sigmoid", ["x"], ["s"]), node("Mul", ["x", "s"])],
        {},
        None,
        ["silu"],
    ),
    (
        "exact GELU as PyTorch wrote it before opset 20",
        [
            node("Div", ["x", "sqrt2"], ["d"]),
            node("Erf", ["d"], ["e"]),
            node("Add", ["e", "one"], ["a"]),
            node("Mul", ["x", "a"], ["m"]),
            node("Mul", ["m", "half"]),
        ],
        {"sqrt2": np.array(1.4142135, np.float32), "one": np.array(1, np.float32), "half": np.array(0.5, np.float32)},
        None,
        ["gelu"],
    ),
    (
        "scaling by a constant, Identity and Cast",
        [node("Identity", ["x"], ["i"]), node("Cast", ["i"], ["c"], to=1), node("Div", ["c", "k"])],
        {"k": np.array(255, np.float32)},
        None,
        ["rescale 0.003921569"],
    ),
    (
        "a node off the output's path is not read",
        [node("Relu", ["x"]), node("Cos", ["x"], ["unused"])],
        {},
        None,
        ["relu"],
    ),
]


@pytest.mark.parametrize(("case", "nodes", "weights", "shape", "lines"), CASES, ids=[c[0] for c in CASES])
def test_operator(tmp_path, case, nodes, weights, shape, lines):
    shape = shape or (1, 3, 8, 8)
    path = save(tmp_path / "m.onnx", nodes, weights, shape)
    imported, typed = read(path)
    assert spec_lines(imported) == [f"input {'x'.join(map(str, nhwc(shape)))}", *lines]
    out = run(path, np.random.default_rng(1).standard_normal(shape).astype(np.float32))
    assert typed.output_shape == nhwc(out.shape)  # onnxruntime's output, channels last
    # the file's weights: its float initializers but the scalars and scale vectors given as values
    constants = sum(
        v.size for v in weights.values() if isinstance(v, np.ndarray) and v.ndim < 2 and v.dtype.kind == "f"
    )
    assert typed.params == file_params(path) - constants
