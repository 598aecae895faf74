"""The classic architectures as templates: exact reference counts, MACs, shapes, the Flax
cross-check for every template, block folding in the summary, and the `templates` / `new` commands."""

from __future__ import annotations

import json

import pytest

from archspec import templates
from archspec.compile import compile_spec
from archspec.summary import summarize

# (template, total, trainable, non-trainable): Keras model.summary(), or torchvision's trainable
# count plus 2 BatchNorm statistics per channel (see docs/spec-language.md, "Templates").
REFERENCE_COUNTS = [
    ("flatten-head", 11_574_090, 11_573_898, 192),  # DESIGN.md's table, Keras model.summary()
    ("gap-head", 66_602, 66_410, 192),
    ("lenet5", 61_706, 61_706, 0),
    ("alexnet", 61_100_840, 61_100_840, 0),
    ("vgg16", 138_357_544, 138_357_544, 0),
    ("googlenet", 7_020_392, 7_005_832, 14_560),
    ("resnet50", 25_636_712, 25_583_592, 53_120),
    ("resnet50-torchvision", 25_557_032 + 53_120, 25_557_032, 53_120),
    ("mobilenet-v2", 3_538_984, 3_504_872, 34_112),
    ("efficientnet-b0", 5_330_571, 5_288_548, 42_023),
    ("nasnet-mobile", 5_326_716, 5_289_978, 36_738),  # Keras NASNetMobile,
    ("convnext-tiny", 28_589_128, 28_589_128, 0),  # torchvision convnext_tiny, Keras ConvNeXtTiny
    ("unet", 31_030_658, 31_030_658, 0),  # Keras, 128x128x1 (see tests/test_template_parity.py)
    ("shufflenet-v2", 2_278_604 + 16_180, 2_278_604, 16_180),  # torchvision shufflenet_v2_x1_0
    ("inception-v3", 23_851_784, 23_817_352, 34_432),  # Keras InceptionV3 at 299x299x3
]

# Published multiply-accumulates at 224x224 (torchvision's model table, the papers). Keras' ResNet-50
# keeps the paper's stride on the first 1x1 conv, so it matches the paper's 3.8 G, not torchvision's.
REFERENCE_MACS = [
    ("alexnet", 0.71e9),
    ("vgg16", 15.47e9),
    ("resnet50", 3.8e9),
    ("resnet50-torchvision", 4.09e9),
    ("mobilenet-v2", 0.30e9),
    ("efficientnet-b0", 0.39e9),
    ("nasnet-mobile", 564e6),  # the paper's Table 2: 564 M mult-adds,
    ("convnext-tiny", 4.456e9),
    ("shufflenet-v2", 0.145e9),  # published as 0.14 "GFLOPS" (multiply-adds)
    ("inception-v3", 5.713e9),  # at its own 299x299 input
]

# Outputs of the top-level macro calls, from the papers' tables and the Keras/torchvision models.
BLOCK_OUTPUTS = {
    "vgg16": [(112, 112, 64), (56, 56, 128), (28, 28, 256), (14, 14, 512), (7, 7, 512)],
    "googlenet": [
        (56, 56, 64),
        (56, 56, 192),
        (28, 28, 256),
        (28, 28, 480),
        (14, 14, 512),
        (14, 14, 512),
        (14, 14, 512),
        (14, 14, 528),
        (14, 14, 832),
        (7, 7, 832),
        (7, 7, 1024),
    ],
    "resnet50": [(56, 56, 256)] * 3 + [(28, 28, 512)] * 4 + [(14, 14, 1024)] * 6 + [(7, 7, 2048)] * 3,
    "resnet50-torchvision": [(56, 56, 256)] * 3 + [(28, 28, 512)] * 4 + [(14, 14, 1024)] * 6 + [(7, 7, 2048)] * 3,
    "mobilenet-v2": [(56, 56, 24)] * 2
    + [(28, 28, 32)] * 3
    + [(14, 14, 64)] * 4
    + [(14, 14, 96)] * 3
    + [(7, 7, 160)] * 3
    + [(7, 7, 320)],
    "efficientnet-b0": [(112, 112, 32), (56, 56, 24), (56, 56, 24), (28, 28, 40), (28, 28, 40)]
    + [(14, 14, 80)] * 3
    + [(14, 14, 112)] * 3
    + [(7, 7, 192)] * 4
    + [(7, 7, 320)],
    # Keras NASNetMobile's cells: two stem reductions, then 4 normal cells and a reduction, twice, and 4 more
    "nasnet-mobile": [(56, 56, 44), (28, 28, 88)]
    + [(28, 28, 264)] * 4
    + [(14, 14, 352)]
    + [(14, 14, 528)] * 4
    + [(7, 7, 704)]
    + [(7, 7, 1056)] * 4,
    "convnext-tiny": [(56, 56, 96)] * 3
    + [(28, 28, 192)] * 4
    + [(14, 14, 384)] * 10
    + [(7, 7, 768)] * 4,  # downsample + blocks of each stage
    "shufflenet-v2": [(28, 28, 116)] * 4 + [(14, 14, 232)] * 8 + [(7, 7, 464)] * 4 + [(7, 7, 1024)],  # + conv5
    # Keras' stem convs, then mixed0 ... mixed10 (the outputs of keras.applications.InceptionV3)
    "inception-v3": [(149, 149, 32), (147, 147, 32), (147, 147, 64), (73, 73, 80), (71, 71, 192)]
    + [(35, 35, 256), (35, 35, 288), (35, 35, 288)]
    + [(17, 17, 768)] * 5
    + [(8, 8, 1280), (8, 8, 2048), (8, 8, 2048)],
    # the encoder's levels and bottleneck, then the decoder's up_block calls (Keras' layer shapes)
    "unet": [
        *[(128, 128, 64), (64, 64, 128), (32, 32, 256), (16, 16, 512), (8, 8, 1024)],
        *[(16, 16, 512), (32, 32, 256), (64, 64, 128), (128, 128, 64)],
    ],
}

# The feature map the classifier head starts from (the input of its `gap` or `flatten`).
HEAD_INPUTS = {
    "alexnet": (6, 6, 256),
    "vgg16": (7, 7, 512),
    "googlenet": (7, 7, 1024),
    "resnet50": (7, 7, 2048),
    "resnet50-torchvision": (7, 7, 2048),
    "mobilenet-v2": (7, 7, 1280),
    "efficientnet-b0": (7, 7, 1280),
    "nasnet-mobile": (7, 7, 1056),
    "convnext-tiny": (7, 7, 768),
    "shufflenet-v2": (7, 7, 1024),
    "inception-v3": (8, 8, 2048),
}


def typed_template(name: str, input_shape=None):
    return compile_spec(templates.path(name).read_text(encoding="utf-8"), name, input_shape)


# --- counts, MACs and shapes ----------------------------------------------------------------


@pytest.mark.parametrize("name, total, trainable, non_trainable", REFERENCE_COUNTS)
def test_counts_equal_the_reference(name, total, trainable, non_trainable):
    typed = typed_template(name)
    assert (typed.params, typed.trainable, typed.non_trainable) == (total, trainable, non_trainable)


@pytest.mark.parametrize("name, total, trainable, non_trainable", REFERENCE_COUNTS)
def test_summarize_json_reports_the_reference_counts(cli, name, total, trainable, non_trainable):
    result = cli("summarize", name, "--format", "json")
    assert result.code == 0, result.err
    totals = json.loads(result.out)["totals"]
    assert (totals["params"], totals["trainable"], totals["non_trainable"]) == (total, trainable, non_trainable)


@pytest.mark.parametrize("name, macs", REFERENCE_MACS)
def test_macs_within_two_percent_of_the_published_figure(name, macs):
    assert typed_template(name).macs == pytest.approx(macs, rel=0.02)


def test_googlenet_with_torchvisions_3x3_quirk_gives_torchvisions_numbers():
    text = templates.path("googlenet").read_text(encoding="utf-8")
    assert text.count("conv_bn c5 5") == 1
    typed = compile_spec(text.replace("conv_bn c5 5", "conv_bn c5 3"), "googlenet-3x3")
    assert typed.trainable == 6_624_904
    assert typed.macs == pytest.approx(1.50e9, rel=0.02)


@pytest.mark.parametrize("name", sorted(HEAD_INPUTS))
def test_head_starts_from_the_reference_feature_map(name):
    typed = typed_template(name)
    head = [node for node in typed.graph.nodes if node.kind in ("gap", "flatten")][-1]  # not squeeze-excite's
    assert typed.infos[head.inputs[0]].shape == HEAD_INPUTS[name]
    assert typed.output_shape == (1000,)


@pytest.mark.parametrize("name", sorted(BLOCK_OUTPUTS))
def test_block_outputs_match_the_reference(name):
    rows = summarize(typed_template(name), name).folded(1)
    assert [row.shape for row in rows if row.group] == BLOCK_OUTPUTS[name]


def test_alexnet_feature_shapes_match_torchvision():
    typed = typed_template("alexnet")
    shapes = [info.shape for node, info in zip(typed.graph.nodes, typed.infos) if node.kind in ("conv", "maxpool")]
    assert shapes == [
        (55, 55, 64),
        (27, 27, 64),
        (27, 27, 192),
        (13, 13, 192),
        (13, 13, 384),
        (13, 13, 256),
        (13, 13, 256),
        (6, 6, 256),
    ]


# --- the networks that need the newer layer kinds: their true graphs, not count-keeping stand-ins ---


def _kinds(typed, kind):
    return [node for node in typed.graph.nodes if node.kind == kind]


def test_convnext_blocks_are_dwconv_layernorm_mlp_layerscale_droppath_with_a_residual():
    typed = typed_template("convnext-tiny")
    nodes = typed.graph.nodes
    adds = _kinds(typed, "add")
    assert len(adds) == 18
    for add in adds:
        shortcut, branch_end = add.inputs
        chain = []  # walk the residual branch back to the block's input
        node = nodes[branch_end]
        while node.id != shortcut:
            chain.append(node.kind)
            node = nodes[node.inputs[0]]
        assert chain[::-1] == ["dwconv", "layernorm", "dense", "gelu", "dense", "layerscale", "droppath"]
    # torchvision's stochastic depth schedule: 0.1 * i / 17 for the blocks i = 0 ... 17
    rates = [node.attrs["rate"] for node in _kinds(typed, "droppath")]
    assert rates == pytest.approx([0.1 * i / 17 for i in range(18)])
    assert {node.attrs["init"] for node in _kinds(typed, "layerscale")} == {1e-6}
    norms = _kinds(typed, "layernorm")  # stem, 18 blocks, 3 downsamples, head
    assert len(norms) == 23 and {node.attrs["epsilon"] for node in norms} == {1e-6}
    downsamples = [node for node in _kinds(typed, "conv") if node.attrs["stride"] == (2, 2)]
    assert [nodes[node.inputs[0]].kind for node in downsamples] == ["layernorm"] * 3
    assert [node.attrs["kernel"] for node in _kinds(typed, "conv")] == [(4, 4)] + [(2, 2)] * 3


def test_unet_concatenates_each_encoder_level_with_the_up_convolution_from_below():
    typed = typed_template("unet")
    shapes = [typed.infos[i].shape for i in range(len(typed.infos))]
    concats = _kinds(typed, "concat")
    # innermost first: the skip (the encoder's last ReLU at that level) and the up-conv, of one shape each
    assert [[shapes[i] for i in node.inputs] for node in concats] == [
        [(16, 16, 512)] * 2,
        [(32, 32, 256)] * 2,
        [(64, 64, 128)] * 2,
        [(128, 128, 64)] * 2,
    ]
    nodes = typed.graph.nodes
    assert [nodes[node.inputs[0]].kind for node in concats] == ["relu"] * 4
    assert [nodes[node.inputs[1]].kind for node in concats] == ["convtranspose"] * 4
    ups = _kinds(typed, "convtranspose")
    assert [(n.attrs["kernel"], n.attrs["stride"], n.attrs["padding"]) for n in ups] == [((2, 2), (2, 2), "same")] * 4
    (dropout,) = _kinds(typed, "dropout")
    assert dropout.attrs["rate"] == 0.5 and shapes[dropout.id] == (8, 8, 1024)
    assert all(node.attrs["padding"] == "same" for node in _kinds(typed, "conv") if node.attrs["kernel"] == (3, 3))
    assert typed.output_shape == (128, 128, 2) and nodes[-1].kind == "softmax"


def test_shufflenet_units_split_the_channels_concatenate_and_shuffle():
    typed = typed_template("shufflenet-v2")
    nodes = typed.graph.nodes
    shuffles = _kinds(typed, "shuffle")
    assert len(shuffles) == 16 and {node.attrs["groups"] for node in shuffles} == {2}
    assert all(nodes[node.inputs[0]].kind == "concat" for node in shuffles)
    # the 13 stride-1 units: the first half passes through, the second goes through the branch
    splits = _kinds(typed, "channels")
    assert len(splits) == 26
    for half, other in zip(splits[::2], splits[1::2]):
        channels = typed.infos[half.inputs[0]].shape[-1]
        assert (half.attrs["range"], other.attrs["range"]) == ((0, channels // 2), (channels // 2, channels))
    # PyTorch's BatchNorm2d: epsilon 1e-5, momentum 0.1 (Keras' 0.9)
    assert {(node.attrs["epsilon"], node.attrs["momentum"]) for node in _kinds(typed, "bn")} == {(1e-5, 0.9)}
    concats = [node for node in _kinds(typed, "concat")]
    assert sum(nodes[node.inputs[0]].kind == "channels" for node in concats) == 13


def test_inception_v3_is_keras_conv2d_bn_everywhere():
    typed = typed_template("inception-v3")
    nodes = typed.graph.nodes
    convs, norms = _kinds(typed, "conv"), _kinds(typed, "bn")
    assert len(convs) == len(norms) == 94  # Keras InceptionV3 has 94 Conv2D and 94 BatchNormalization
    assert not any(node.attrs["bias"] for node in convs)
    assert all(not node.attrs["scale"] and node.attrs["center"] for node in norms)
    assert all(nodes[node.inputs[0]].kind == "conv" for node in norms)
    assert {node.attrs["epsilon"] for node in norms} == {1e-3}  # Keras' default
    pools = _kinds(typed, "avgpool")
    assert len(pools) == 9 and {(n.attrs["stride"], n.attrs["padding"]) for n in pools} == {((1, 1), "same")}
    kernels = {node.attrs["kernel"] for node in convs}
    assert kernels == {(1, 1), (3, 3), (5, 5), (1, 7), (7, 1), (1, 3), (3, 1)}


@pytest.mark.slow  # starts training set-up (loads the digits)
def test_train_refuses_unets_per_pixel_output(cli):
    result = cli("train", "unet", "--data", "digits")
    assert result.code == 2
    assert "128x128x2 per image" in result.err and "segmentation" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("name", templates.names())
def test_every_template_describes_itself_and_summarizes(cli, name):
    first = templates.path(name).read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and templates.describe(name) == first[2:].strip()
    result = cli("summarize", name)
    assert result.code == 0, result.err


# --- the Flax model agrees with static inference ---------------------------------------------


@pytest.mark.slow  # compiles Flax models: seconds each
@pytest.mark.parametrize("name", templates.names())
def test_flax_model_matches_inferred_counts_and_shapes(name):
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from tests.flax_counts import abstract_model, count_parameters

    typed = typed_template(name)
    model = abstract_model(typed)  # shapes only: VGG-16's 138 M weights are never allocated
    assert count_parameters(model) == (typed.trainable, typed.non_trainable)
    batch = jax.ShapeDtypeStruct((1, *typed.input_shape), jnp.float32)
    outputs = nnx.eval_shape(lambda m, x: m.trace(x), model, batch)
    assert [tuple(out.shape[1:]) for out in outputs] == [info.shape for info in typed.infos]


# --- blocks in the summary --------------------------------------------------------------------


def test_resnet50_depth_1_shows_each_bottleneck_call_as_one_row(cli):
    result = cli("summarize", "resnet50", "--depth", "1", "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    layers = data["layers"]
    assert {layer["depth"] for layer in layers} == {1}
    calls = [layer for layer in layers if layer["group"]]
    assert [c["label"].split()[0] for c in calls] == (["bottleneck_projection"] + ["bottleneck"] * 2) + (
        ["bottleneck_projection"] + ["bottleneck"] * 3
    ) + (["bottleneck_projection"] + ["bottleneck"] * 5) + (["bottleneck_projection"] + ["bottleneck"] * 2)
    assert calls[3]["label"] == "bottleneck_projection 128"
    assert all(c["type"] == "call" for c in calls)
    for key in ("params", "trainable", "non_trainable", "macs"):
        assert sum(layer[key] for layer in layers) == data["totals"][key]


def test_resnet50_folded_table_has_no_inner_layers(cli):
    out = cli("summarize", "resnet50", "--depth", "1").out
    assert out.count("bottleneck_projection ") == 4 and out.count("bottleneck 256 ") == 5
    assert "Add" not in out and "conv 256 1x1" not in out
    assert "Total params: 25,636,712\n" in out


def test_block_rows_carry_the_totals_of_the_rows_under_them():
    rows = summarize(typed_template("resnet50"), "resnet50").rows
    assert max(row.depth for row in rows) == 4  # call > add > branch call > layer
    for index, row in enumerate(rows):
        if not row.group:
            continue
        inside = []
        for below in rows[index + 1 :]:
            if below.depth <= row.depth:
                break
            if not below.group:
                inside.append(below)
        assert row.params == sum(r.params for r in inside)
        assert row.macs == sum(r.macs for r in inside)


def test_depth_2_opens_the_calls_but_not_the_merges():
    rows = summarize(typed_template("resnet50"), "resnet50").folded(2)
    first_call = next(i for i, row in enumerate(rows) if row.group)
    block = rows[first_call : first_call + 4]
    assert [(row.type, row.depth, row.group) for row in block] == [
        ("call", 1, True),
        ("Add", 2, True),
        ("Activation", 2, False),
        ("call", 1, True),
    ]


# --- `cnn-arch templates` ---------------------------------------------------------------------


def test_templates_json_lists_every_template_with_its_counts(cli):
    result = cli("templates", "--format", "json")
    assert result.code == 0, result.err
    entries = json.loads(result.out)
    assert [e["name"] for e in entries] == templates.names()
    by_name = {e["name"]: e for e in entries}
    resnet = typed_template("resnet50")  # the counts themselves are checked against the references above
    assert (by_name["resnet50"]["params"], by_name["resnet50"]["non_trainable"]) == (
        resnet.params,
        resnet.non_trainable,
    )
    assert by_name["resnet50"]["input_shape"] == [224, 224, 3]
    assert by_name["resnet50"]["macs"] == resnet.macs
    assert by_name["vgg16"]["description"].startswith("VGG-16")


def test_templates_table_shows_name_params_macs_input_and_description(cli):
    result = cli("templates")
    assert result.code == 0, result.err
    row = next(line for line in result.out.splitlines() if line.startswith("efficientnet-b0 "))
    for cell in ("5,330,571", "385.81 M", "224x224x3", "EfficientNet-B0"):
        assert cell in row


# --- `cnn-arch new` ---------------------------------------------------------------------------


def test_new_copies_the_template_to_name_dot_arch(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("new", "mobilenet-v2")
    assert result.code == 0, result.err
    written = tmp_path / "mobilenet-v2.arch"
    assert written.read_text(encoding="utf-8") == templates.path("mobilenet-v2").read_text(encoding="utf-8")
    assert "mobilenet-v2.arch" in result.out
    summary = cli("summarize", str(written), "--format", "json")
    assert json.loads(summary.out)["totals"]["params"] == 3_538_984


def test_new_writes_to_a_path_or_into_a_folder(cli, tmp_path):
    assert cli("new", "lenet5", str(tmp_path / "mine.arch")).code == 0
    assert (tmp_path / "mine.arch").read_text(encoding="utf-8").startswith("# LeNet-5")
    assert cli("new", "lenet5", str(tmp_path)).code == 0
    assert (tmp_path / "lenet5.arch").is_file()


def test_new_refuses_to_overwrite_without_force(cli, tmp_path):
    target = tmp_path / "spec.arch"
    target.write_text("input 8x8x1\n", encoding="utf-8")
    result = cli("new", "vgg16", str(target))
    assert result.code == 2
    assert "already exists" in result.err and "--force" in result.err
    assert target.read_text(encoding="utf-8") == "input 8x8x1\n"
    assert cli("new", "vgg16", str(target), "--force").code == 0
    assert target.read_text(encoding="utf-8").startswith("# VGG-16")


def test_new_unknown_template_suggests_the_closest(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("new", "resnet5")
    assert result.code == 2
    assert "resnet5: error: no such built-in template" in result.err
    assert "did you mean the template `resnet50`?" in result.err
    assert list(tmp_path.iterdir()) == []


def test_new_into_a_missing_folder_is_a_user_error(cli, tmp_path):
    result = cli("new", "alexnet", str(tmp_path / "missing" / "a.arch"))
    assert result.code == 2
    assert "folder does not exist" in result.err
    assert "Traceback" not in result.err
