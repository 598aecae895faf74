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


# (case, nodes, weights, what the refusal says)
REFUSED = [
    (
        "an operator the spec lacks",
        [node("GridSample", ["x", "x"], name="/warp/GridSample")],
        {},
        "`GridSample` is not",
    ),
    (
        "an operator of another domain",
        [node("FusedConv", ["x"], domain="com.microsoft")],
        {},
        "`com.microsoft.FusedConv`",
    ),
    (
        "ceil_mode needing uneven pads no `same` gives",
        [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
        {},
        "ceil_mode",
    ),
    (
        "Clip to other bounds",
        [node("Clip", ["x", "zero", "four"])],
        {"zero": np.array(0, np.float32), "four": np.array(4, np.float32)},
        "[0, 4]",
    ),
    ("HardSigmoid with ONNX's default slope", [node("HardSigmoid", ["x"])], {}, "alpha=0.2"),
    (
        "LayerNormalization over channels, height and width",
        [node("LayerNormalization", ["x", "s"], axis=1)],
        {"s": (3, 8, 8)},
        "more than the channels",
    ),
    (
        "bilinear with align_corners",
        [node("Resize", ["x", "", "scales"], mode="linear", coordinate_transformation_mode="align_corners")],
        {"scales": np.array([1, 1, 2, 2], np.float32)},
        "align_corners",
    ),
    (
        "reflection padding",
        [node("Pad", ["x", "pads"], mode="reflect")],
        {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)},
        "reflect",
    ),
    (
        "output_padding beyond the pads",
        [node("ConvTranspose", ["x", "W"], strides=[2, 2], output_padding=[1, 1])],
        {"W": (3, 4, 3, 3)},
        "only the bias reaches",
    ),
    ("attention's product of two tensors", [node("MatMul", ["x", "x"])], {}, "two computed tensors"),
    (
        "an Add that broadcasts",
        [node("ReduceMean", ["x", "axes"], ["m"], keepdims=1), node("Add", ["x", "m"])],
        {"axes": np.array([2, 3], np.int64)},
        "broadcasting",
    ),
]


@pytest.mark.parametrize(("case", "nodes", "weights", "says"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refusal_names_the_node(tmp_path, case, nodes, weights, says):
    from archspec.errors import SpecError

    path = save(tmp_path / "m.onnx", nodes, weights)
    with pytest.raises(SpecError) as caught:
        read(path)
    error = caught.value
    index = len(nodes) - 1 if case != "an Add that broadcasts" else 1
    assert says in error.message
    assert f"(node {index + 1}, `{nodes[index].name}`)" in error.message
    assert error.span.line == index + 1  # the node's line in the graph's listing, quoted under the error
    assert nodes[index].op_type in error.render()


def test_refusal_from_the_command_line(cli, tmp_path):
    path = save(tmp_path / "m.onnx", [node("Relu", ["x"], ["r"]), node("GridSample", ["r", "r"], name="/warp")])
    for command in ("summarize", "lint", "import", "draw"):
        result = cli(command, path)
        assert result.code == 2, (command, result.err)
        assert f"{path}:2:1: error: `GridSample` is not a layer the spec language has (node 2, `/warp`)" in result.err
        assert "Traceback" not in result.err


def test_pytorch_flatten_through_shape_arithmetic(tmp_path):
    """TorchScript's `x.view(x.size(0), -1)`: Shape, Gather, Unsqueeze and Concat compute the Reshape's
    target, which the reader works out as ONNX's own reference implementation computes it."""
    nodes = [
        node("Shape", ["x"], ["shape"]),
        node("Gather", ["shape", "zero"], ["batch"], axis=0),
        node("Unsqueeze", ["batch", "axis0"], ["batch1"]),
        node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        node("Reshape", ["x", "target"], ["flat"]),
        node("Gemm", ["flat", "W"], transB=1),
    ]
    weights = {
        "zero": np.array(0, np.int64),
        "axis0": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
        "W": (10, 192),
    }
    imported, typed = read(save(tmp_path / "m.onnx", nodes, weights))
    assert spec_lines(imported) == ["input 8x8x3", "flatten", "dense 10 bias=false"]
    assert typed.params == 1920


def test_channels_last_input(tmp_path):
    """A Keras/TensorFlow/Flax export: an NHWC input transposed before its first convolution."""
    nodes = [node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]), node("Conv", ["t", "W"])]
    imported, typed = read(save(tmp_path / "m.onnx", nodes, {"W": (4, 3, 3, 3)}, shape=(1, 8, 6, 3)))
    assert spec_lines(imported)[0] == "input 8x6x3"
    assert typed.output_shape == (6, 4, 4)


def test_graph_that_is_not_series_parallel_reads_with_named_tensors(tmp_path):
    """DenseNet's shape: every layer reads the concatenation of all outputs before it."""
    nodes = [
        node("Conv", ["x", "W1"], ["a"], pads=[1, 1, 1, 1]),
        node("Concat", ["x", "a"], ["xa"], axis=1),
        node("Conv", ["xa", "W2"], ["b"], pads=[1, 1, 1, 1]),
        node("Concat", ["x", "a", "b"], axis=1),
    ]
    path = save(tmp_path / "m.onnx", nodes, {"W1": (2, 3, 3, 3), "W2": (2, 5, 3, 3)})
    imported, typed = read(path)
    assert "-> x" in imported.text and "@x" in imported.text
    assert typed.output_shape == nhwc(run(path, np.zeros((1, 3, 8, 8), np.float32)).shape)
    assert typed.params == file_params(path)


def test_free_image_size_needs_input_option(tmp_path, cli):
    from archspec.errors import UserError

    path = save(tmp_path / "m.onnx", [node("Relu", ["x"])], shape=("N", 3, "H", "W"))
    with pytest.raises(UserError) as caught:
        read(path)
    assert "?x?" in caught.value.message and "--input HxWxC" in caught.value.hint
    _, typed = read(path, (32, 16, 3))
    assert typed.output_shape == (32, 16, 3)
    result = cli("summarize", path, "--input", "32x16x3")
    assert result.code == 0 and "32x16x3" in result.out


def test_weights_beside_the_file_are_not_needed(tmp_path):
    """`torch.onnx.export` writes large weights to `model.onnx.data`; the graph reads without it."""
    import onnx

    path = save(tmp_path / "m.onnx", [node("Conv", ["x", "W", "B"])], {"W": (64, 3, 3, 3), "B": (64,)})
    model = onnx.load(path)
    onnx.save(model, path, save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    (tmp_path / "m.onnx.data").unlink()
    _, typed = read(path)
    assert typed.params == 64 * 27 + 64


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"", "not an ONNX model"), (b"input 8x8x3\nconv 8 3\n", "not an ONNX model"), (None, "no such file")],
    ids=["empty", "a spec named .onnx", "missing"],
)
def test_files_that_are_not_onnx_models(tmp_path, cli, content, says):
    path = tmp_path / "m.onnx"
    if content is not None:
        path.write_bytes(content)
    result = cli("summarize", str(path))
    assert result.code == 2
    assert says in result.err and str(path) in result.err and "Traceback" not in result.err


def test_two_inputs_or_outputs_are_refused(tmp_path):
    import onnx
    from onnx import helper

    from archspec.errors import UserError

    floats = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        [node("Add", ["a", "b"], ["y"]), node("Relu", ["y"], ["z"])],
        "two",
        [helper.make_tensor_value_info(n, floats, [1, 3, 8, 8]) for n in "ab"],
        [helper.make_tensor_value_info(n, floats, None) for n in "yz"],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(UserError, match=r"2 inputs \(`a`, `b`\); a spec has one input"):
        read(str(path))


def test_without_the_onnx_package(tmp_path, cli, monkeypatch):
    import sys

    path = save(tmp_path / "m.onnx", [node("Relu", ["x"])])
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails as if not installed
    result = cli("summarize", path)
    assert result.code == 2
    assert "pip install 'cnn-arch[onnx]'" in result.err


def test_summarize_lint_and_import_name_the_node(tmp_path, cli):
    """A flatten head read from ONNX: the summary's numbers, the lint finding at the Flatten node, and
    the spec `import` writes (which compiles to the same counts)."""
    nodes = [
        node("Conv", ["x", "W", "B"], ["c"], name="/features/conv", pads=[1, 1, 1, 1]),
        node("Relu", ["c"], ["r"], name="/features/relu"),
        node("Flatten", ["r"], ["f"], name="/flatten"),
        node("Gemm", ["f", "W1", "B1"], ["h"], name="/head/fc1", transB=1),
        node("Relu", ["h"], ["hr"], name="/head/relu"),
        node("Gemm", ["hr", "W2", "B2"], name="/head/fc2", transB=1),
    ]
    weights = {"W": (8, 3, 3, 3), "B": (8,), "W1": (64, 512), "B1": (64,), "W2": (10, 64), "B2": (10,)}
    path = save(tmp_path / "m.onnx", nodes, weights)
    result = cli("summarize", path)
    assert result.code == 0
    assert f"Total params: {file_params(path):,}" in result.out
    result = cli("lint", path)
    assert result.code == 1
    assert "CA101 ONNX node 3 `/flatten` (Flatten): Dense head after `flatten`" in result.out
    assert f"--> {path}:3:1" in result.out
    out = tmp_path / "m.arch"
    assert cli("import", path, "-o", str(out)).code == 0
    assert cli("summarize", str(out)).out.count(f"Total params: {file_params(path):,}") == 1
