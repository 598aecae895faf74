"""Spec -> ONNX -> spec: a spec's network exported by jax2onnx (`archspec.interop.onnx_export`) and
read back by `cnn-arch import` has the spec's parameters (total and trainable), MACs and output shape.
Every template, at the smallest input it takes (the export's cost is the graph's size, and a smaller
image shrinks flatten heads), and a spec per layer kind."""

from __future__ import annotations

import pytest

from tests.interop.test_onnx_import import read

# The smallest square input of each template (larger than the smallest its windows allow).
SMALLEST = {
    "alexnet": 63,
    "convnext-tiny": 32,
    "efficientnet-b0": 32,
    "flatten-head": 16,
    "gap-head": 16,
    "googlenet": 8,
    "inception-v3": 75,
    "lenet5": 16,
    "mobilenet-v2": 31,
    "nasnet-mobile": 31,
    "resnet50": 8,
    "resnet50-torchvision": 8,
    "shufflenet-v2": 8,
    "unet": 16,
    "vgg16": 32,
}

# One spec per layer kind (and form) jax2onnx writes in a way the reader reads back.
KINDS = {
    "layernorm": "layernorm epsilon=1e-6",
    "layerscale": "layerscale",
    "droppath": "droppath 0.1",
    "shuffle": "shuffle 2",
    "channels": "channels 1:3",
    "upsample": "upsample 2",
    "upsample bilinear": "upsample 2x3 method=bilinear",
    "convtranspose": "convtranspose 3 3 stride=2",
    "convtranspose same": "convtranspose 3 3 stride=2 padding=same",
    "crop": "crop 1x2x0x1",
    "zeropad": "zeropad 1x2x0x1",
    "sepconv": "sepconv 6 3 padding=same",
    "dwconv": "dwconv 3 stride=2 padding=same multiplier=2",
    "normalize": "normalize",
    "rescale": "rescale 0.5 offset=1",
    "avgpool same": "avgpool 3 stride=1 padding=same",
    "maxpool padded": "maxpool 3 stride=2 padding=1",
    "maxpool same": "maxpool 3 stride=2 padding=same",
    "gmp": "gmp",
    "gap keepdims": "gap keepdims=true",
    "dense per pixel": "dense 5",
    "flatten": "flatten\ndense 3 bias=false",
    "grouped conv": "conv 4 3 groups=2 dilation=2 bias=false",
    "multiply": "multiply:\n    identity\n    branch:\n        gap keepdims=true\n        sigmoid",
    "activations": "relu6\nleaky_relu 0.2\nelu\nselu\ngelu\nsilu\nswish\nhard_swish\nhard_sigmoid\nmish\n"
    "softplus\ntanh\nsigmoid\nlinear\nrelu\nsoftmax",
    "vector input": "dense 4 relu\nbn\ndropout 0.2\ndense 2 softmax",
}


def round_trip(tmp_path, typed):
    from archspec.interop.onnx_export import spec_onnx

    path = tmp_path / "model.onnx"
    path.write_bytes(spec_onnx(typed).SerializeToString())
    return read(str(path))


def counts(typed) -> tuple:
    return typed.params, typed.trainable, typed.macs, typed.output_shape


@pytest.mark.parametrize("kind", list(KINDS))
def test_layer_kind(tmp_path, kind):
    from archspec.compile import compile_spec

    start = "input 10" if kind == "vector input" else "input 8x8x4"
    typed = compile_spec(f"{start}\n{KINDS[kind]}\n", "kind.arch")
    _, back = round_trip(tmp_path, typed)
    assert counts(back) == counts(typed)


@pytest.mark.slow  # 15 exports through jax2onnx: about a minute of CPU, most of it NASNet's (see docs/interop.md)
@pytest.mark.parametrize("name", list(SMALLEST))
def test_template(tmp_path, name):
    from archspec import templates
    from archspec.compile import compile_spec

    text = templates.path(name).read_text(encoding="utf-8")
    channels = compile_spec(text, name).input_shape[-1]
    side = SMALLEST[name]
    typed = compile_spec(text, name, (side, side, channels))
    _, back = round_trip(tmp_path, typed)
    # exact, inception-v3's `bn(scale=false)` too: the scale it does not learn is a Constant in the file
    assert counts(back) == (typed.params, typed.trainable, typed.macs, typed.output_shape)


def test_average_pooling_with_numeric_padding_is_refused_at_export():
    from archspec.compile import compile_spec
    from archspec.errors import SpecError
    from archspec.interop.onnx_export import spec_onnx

    typed = compile_spec("input 8x8x4\navgpool 3 stride=2 padding=1\n", "pool.arch")
    with pytest.raises(SpecError) as caught:
        spec_onnx(typed)
    assert caught.value.line == 2
    assert "avgpool" in caught.value.message and "numeric padding" in caught.value.message
