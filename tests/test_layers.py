"""Shape, parameter and MAC rules of each layer kind, checked against what Keras reports."""

from __future__ import annotations

import pytest


def last(typed):
    return typed.infos[-1]


@pytest.mark.parametrize(
    "line, input_shape, shape, params",
    [
        # Keras Conv2D(filters, kernel, ...) on the given input
        ("conv 16 3", (32, 32, 3), (30, 30, 16), 3 * 3 * 3 * 16 + 16),
        ("conv 16 3 padding=same", (32, 32, 3), (32, 32, 16), 448),
        ("conv 16 3 stride=2 padding=same", (33, 33, 3), (17, 17, 16), 448),  # ceil(33/2)
        ("conv 16 3 stride=2", (33, 33, 3), (16, 16, 16), 448),  # floor((33-3)/2)+1
        ("conv 16 3 padding=1 stride=2", (32, 32, 3), (16, 16, 16), 448),  # PyTorch-style explicit padding
        ("conv 16 3x5 padding=1x2", (32, 32, 3), (32, 32, 16), 3 * 5 * 3 * 16 + 16),
        ("conv 16 3 dilation=2", (32, 32, 3), (28, 28, 16), 448),
        ("conv 16 3 bias=false", (32, 32, 3), (30, 30, 16), 432),
        ("conv 32 3 groups=4", (8, 8, 16), (6, 6, 32), 3 * 3 * 4 * 32 + 32),
        ("dwconv 3", (32, 32, 32), (30, 30, 32), 3 * 3 * 32 + 32),
        ("dwconv 3 multiplier=2 bias=false", (32, 32, 32), (30, 30, 64), 3 * 3 * 32 * 2),
        ("sepconv 64 3", (32, 32, 32), (30, 30, 64), 288 + 32 * 64 + 64),
        ("dense 10", (64,), (10,), 650),
        ("dense 10", (4, 4, 64), (4, 4, 10), 650),  # Keras Dense acts on the last axis
        ("dense 10 bias=false", (64,), (10,), 640),
        ("maxpool 2", (32, 32, 8), (16, 16, 8), 0),
        ("maxpool 3 stride=2", (55, 55, 8), (27, 27, 8), 0),  # AlexNet's overlapping pooling
        ("maxpool 2", (7, 7, 8), (3, 3, 8), 0),  # Keras floors
        ("avgpool 2 padding=same", (7, 7, 8), (4, 4, 8), 0),
        ("gap", (7, 7, 8), (8,), 0),
        ("gmp keepdims=true", (7, 7, 8), (1, 1, 8), 0),
        ("flatten", (7, 7, 8), (392,), 0),
        ("bn", (7, 7, 8), (7, 7, 8), 32),
        ("bn center=false", (7, 7, 8), (7, 7, 8), 24),
        ("bn", (64,), (64,), 256),
        ("lrn", (7, 7, 8), (7, 7, 8), 0),
        ("zeropad 1", (7, 7, 8), (9, 9, 8), 0),
        ("zeropad 0x1x0x1", (224, 224, 3), (225, 225, 3), 0),
        ("zeropad 2x3", (7, 7, 8), (11, 13, 8), 0),
        ("normalize", (224, 224, 3), (224, 224, 3), 7),  # Keras Normalization: mean, variance, count
        ("rescale 0.00392", (8, 8, 3), (8, 8, 3), 0),
        ("dropout 0.5", (64,), (64,), 0),
        ("leaky_relu 0.2", (64,), (64,), 0),
    ],
)
def test_layer_shape_and_params(compile_text, line, input_shape, shape, params):
    typed = compile_text(line + "\n", input_shape)
    assert last(typed).shape == shape
    assert last(typed).params == params


def test_batchnorm_counts_like_keras():
    from archspec.compile import compile_spec

    info = compile_spec("input 4x4x10\nbn\n").infos[-1]
    assert (info.trainable, info.non_trainable) == (20, 20)


def test_conv_macs_are_output_positions_times_kernel_volume(compile_text):
    typed = compile_text("conv 16 3\n", (32, 32, 3))
    assert last(typed).macs == 30 * 30 * 16 * (3 * 3 * 3)


def test_depthwise_separable_saves_about_k_squared(compile_text):
    # DESIGN: a depthwise-separable conv cuts a KxK conv's cost by about K^2 when channels are large
    full = compile_text("conv 512 3 padding=same\n", (14, 14, 512))
    separable = compile_text("sepconv 512 3 padding=same\n", (14, 14, 512))
    ratio = last(full).macs / last(separable).macs
    assert 8 < ratio < 9  # 1 / (1/512 + 1/9)


@pytest.mark.parametrize(
    "body, receptive_field, stride",
    [
        ("conv 8 3 padding=same\nconv 8 3 padding=same\n", (5, 5), (1, 1)),  # two 3x3 = one 5x5
        ("conv 8 3 padding=same\n" * 3, (7, 7), (1, 1)),  # three 3x3 = one 7x7
        ("conv 8 3 stride=2\nconv 8 3\n", (7, 7), (2, 2)),
        ("maxpool 2\nconv 8 3\n", (6, 6), (2, 2)),
        ("conv 8 3 dilation=2\n", (5, 5), (1, 1)),
        ("conv 8 3x1\n", (3, 1), (1, 1)),
        ("conv 8 3\ngap\n", None, (1, 1)),
    ],
)
def test_receptive_field_and_effective_stride(compile_text, body, receptive_field, stride):
    info = last(compile_text(body, (32, 32, 3)))
    assert info.receptive_field == receptive_field
    assert info.stride == stride


def test_trailing_words_become_layers_in_order(compile_text):
    typed = compile_text("""
        input 16x16x3
        dwconv 3 stride=2 padding=same bias=false bn relu6
    """)
    assert [n.kind for n in typed.graph.nodes] == ["input", "dwconv", "bn", "relu6"]
    columns = [n.span.column for n in typed.graph.nodes[1:]]
    assert columns == [1, 43, 46]


def test_input_override_replaces_the_input_line(compile_text):
    typed = compile_text("input 224x224x3\nconv 8 3\ngap\n", (32, 32, 1))
    assert typed.input_shape == (32, 32, 1)
    assert typed.infos[1].shape == (30, 30, 8)


def test_vector_input_builds_a_plain_mlp(compile_text):
    typed = compile_text("input 784\ndense 128 relu\ndense 10 softmax\n")
    assert typed.params == 784 * 128 + 128 + 128 * 10 + 10
