"""The `volumes` picture: one block per feature map, sized by log2 of H, W and C, blocks kept whole."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from archspec.draw import draw
from archspec.draw.scene import to_svg
from tests.draw.picture_checks import SVG, groups, polyline, texts
from tests.draw.test_graph import typed


def picture(name: str, depth: int | None = None) -> ET.Element:
    return ET.fromstring(to_svg(draw(typed(name), name, style="volumes", depth=depth).scene))


def volumes(name: str, depth: int | None = None) -> list[ET.Element]:
    return groups(picture(name, depth), "volume")


def front(group: ET.Element) -> tuple[float, float]:
    """(height, width) of a block's front face."""
    rect = group.find(f"{SVG}rect")
    return float(rect.get("height")), float(rect.get("width"))


def test_lenet5_is_the_textbook_sequence_with_activations_written_under_their_layer():
    drawn = volumes("lenet5")
    assert [g.get("data-shape") for g in drawn] == [
        "32x32x1",
        "28x28x6",
        "14x14x6",
        "10x10x16",
        "5x5x16",
        "400",
        "120",
        "84",
        "10",
    ]
    conv = texts(drawn[1])
    assert conv[:3] == ["28x28x6", "conv 6 5x5", "+ tanh"]
    assert "156 params" in conv


def test_sizes_follow_log2_of_height_and_channels():
    drawn = {g.get("data-shape"): front(g) for g in volumes("vgg16", depth=2)}
    (h224, c64), (h112, c128), (h56, c256) = drawn["224x224x64"], drawn["112x112x128"], drawn["56x56x256"]
    assert h224 - h112 == h112 - h56 > 0  # halving H shrinks the block by one step
    assert c128 - c64 == c256 - c128 > 0  # doubling C widens it by one step
    assert h224 / h56 == pytest.approx((math.log2(224) + 1) / (math.log2(56) + 1), rel=0.01)  # SVG keeps 0.1


def test_blocks_with_branches_stay_whole_and_sequential_blocks_unfold_with_depth():
    top = volumes("resnet50")
    assert sum(texts(g)[1].startswith("bottleneck") for g in top) == 16
    mobile = volumes("mobilenet-v2")
    unfolded = volumes("mobilenet-v2", depth=2)
    # `inverted_residual_down` has no branches: depth 2 shows its expand, depthwise and project convs
    assert len(unfolded) > len(mobile)
    assert any(texts(g)[1].startswith("dwconv") for g in unfolded if g.get("data-shape") == "56x56x96")
    residual = [texts(g)[1] for g in unfolded if g.get("data-family") == "block"]
    assert residual and all(label.startswith("inverted_residual_add") for label in residual)


def test_the_dense_head_is_outlined_in_volumes_too():
    svg = picture("flatten-head")
    (head,) = groups(svg, "dense-head")
    assert "11,508,138 params = 99.4% of the model" in texts(head)


def test_unet_is_a_u_with_its_skips_as_arrows_from_encoder_to_decoder():
    svg = picture("unet")
    drawn = {g.get("data-row"): g for g in groups(svg, "volume")}
    label = {key: texts(g)[1] for key, g in drawn.items()}
    level = {label[key]: int(g.get("data-level")) for key, g in drawn.items()}
    front_x = {label[key]: float(g.find(f"{SVG}rect").get("x")) for key, g in drawn.items()}
    # the encoder goes down a row per halving, the bottleneck is lowest, the decoder climbs back
    assert [level[f"double_conv {f} ->"] for f in (64, 128, 256, 512)] == [0, 1, 2, 3]
    assert level["double_conv 1024"] == 4
    assert [level[f"up_block {f} @e{e}"] for f, e in ((512, 4), (256, 3), (128, 2), (64, 1))] == [3, 2, 1, 0]
    skips = {(label[g.get("data-from")], label[g.get("data-to")]) for g in groups(svg, "skip")}
    assert skips == {(f"double_conv {f} ->", f"up_block {f} @e{e}") for f, e in ((64, 1), (128, 2), (256, 3), (512, 4))}
    for g in groups(svg, "skip"):  # each skip runs over the top, from the encoder side to the decoder side
        points = polyline(g)
        a, b = label[g.get("data-from")], label[g.get("data-to")]
        assert front_x[a] < points[0][0] < points[-1][0] and points[-1][0] > front_x[b]
        assert points[1][1] == points[2][1] < min(points[0][1], points[-1][1])
    assert not groups(picture("resnet50"), "skip")  # no named tensors: the textbook strip, one row
    assert {g.get("data-level") for g in volumes("vgg16")} == {"0"}
