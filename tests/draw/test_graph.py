"""The `graph` picture's SVG, read back: a box per summary row as folded, edges that land on the right
boxes, merge nodes with one input per branch, shortcuts kept when blocks fold, nothing overlapping,
the dense head outlined, text readable at 1:1."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from functools import cache

import pytest

from archspec import templates
from archspec.compile import compile_spec
from archspec.draw import draw
from archspec.draw.graph import LEGEND_NAMES, PALETTE
from archspec.draw.model import layer_family
from archspec.draw.scene import to_svg
from archspec.layers import REGISTRY
from archspec.summary import summarize
from tests.draw.picture_checks import SVG, assert_edges_land, box_rect, groups, measure, polyline, texts


@cache
def typed(name: str):
    return compile_spec(templates.path(name).read_text(encoding="utf-8"), name)


@cache
def picture(name: str, depth: int | None) -> ET.Element:
    return ET.fromstring(to_svg(draw(typed(name), name, depth=depth).scene))


def expected_rows(name: str, depth: int | None):
    """The summary rows a picture at `depth` shows: those whose enclosing blocks are all unfolded, where a
    merge block (add, concat, multiply) never folds, so its branches stay in sight."""
    rows, shown, open_blocks = summarize(typed(name), name).rows, [], []
    for row in rows:
        del open_blocks[row.depth - 1 :]
        if all(open_blocks):
            shown.append(row)
        merge = row.kind in ("add", "concat", "multiply")
        open_blocks.append(merge or depth is None or row.depth < depth)
    return shown


def assert_no_overlap(svg: ET.Element) -> None:
    """Boxes and merge nodes never overlap, and every frame holds the rows nested in it."""
    drawn = groups(svg, "row")
    boxes = sorted((box_rect(g) for g in drawn if "frame" not in g.get("class")), key=lambda r: r[1])
    for index, (ax, ay, aw, ah) in enumerate(boxes):
        for bx, by, bw, bh in boxes[index + 1 :]:
            if by >= ay + ah:
                break
            assert ax + aw <= bx or bx + bw <= ax, ((ax, ay, aw, ah), (bx, by, bw, bh))
    for index, frame in enumerate(drawn):
        if "frame" not in frame.get("class"):
            continue
        fx, fy, fw, fh = box_rect(frame)
        level = int(frame.get("data-depth"))
        inside = itertools.takewhile(lambda g, level=level: int(g.get("data-depth")) > level, drawn[index + 1 :])
        for x, y, w, h in map(box_rect, inside):
            assert fx <= x and x + w <= fx + fw and fy <= y and y + h <= fy + fh


CASES = [
    ("lenet5", None),
    ("flatten-head", None),
    ("googlenet", 1),
    ("googlenet", 2),
    ("googlenet", None),
    ("resnet50", 1),
    ("resnet50", 2),
    ("resnet50", None),
    ("mobilenet-v2", 2),
    ("efficientnet-b0", None),
]


@pytest.mark.parametrize("name, depth", CASES)
def test_one_element_per_row_shown_with_its_label_line_and_shape(name, depth):
    rows = expected_rows(name, depth)
    drawn = groups(picture(name, depth), "row")
    assert len(drawn) == len(rows)
    for group, row in zip(drawn, rows):
        words = texts(group)
        assert group.get("data-line") == str(row.line)
        assert row.label in words or row.kind == "branch"  # a branch is named by its first line
        assert any(t.startswith("x".join(map(str, row.shape))) for t in words)
        if row.params and "merge" not in group.get("class"):
            assert any(f"{row.params:,} params" in t for t in words)


@pytest.mark.parametrize("name, depth", CASES)
def test_every_edge_leaves_its_source_and_ends_on_its_target(name, depth):
    assert_edges_land(picture(name, depth))


@pytest.mark.parametrize("name, depth", [("googlenet", None), ("resnet50", None), ("mobilenet-v2", 3)])
def test_boxes_never_overlap_and_frames_hold_their_rows(name, depth):
    svg = picture(name, depth)
    assert len(groups(svg, "row")) > 50
    assert_no_overlap(svg)


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "efficientnet-b0"])
def test_series_parallel_networks_are_drawn_without_a_crossing(name):
    quality = measure(picture(name, None))
    assert quality.segments > 300
    assert (quality.crossings, quality.broken) == (0, 0), quality


def test_resnet50_at_depth_1_is_sixteen_folded_bottlenecks_in_one_column():
    drawn = groups(picture("resnet50", 1), "row")
    blocks = [g for g in drawn if texts(g)[0].startswith("bottleneck")]
    assert len(blocks) == 16
    assert all("layers" in texts(g)[1] and "folded" in g.get("class") for g in blocks)
    assert len({round(box_rect(g)[0] + box_rect(g)[2] / 2) for g in drawn}) == 1  # one straight column


def traced_from(svg: ET.Element, edge: ET.Element) -> ET.Element:
    """Where an edge comes from as a reader traces it: back through the ports of borderless lanes, up to
    a box, a merge node, or the border of the frame it enters from."""
    rows = {g.get("data-row"): g for g in groups(svg, "row")}
    while edge.get("data-from") == "-1":
        start = polyline(edge)[0]
        edge = next(e for e in groups(svg, "edge") if polyline(e)[-1] == start)
    return rows[edge.get("data-from")]


def test_folding_a_block_keeps_its_shortcut_in_sight():
    """At --depth 2 each bottleneck shows its add, the residual path as one folded box and the shortcut:
    an edge from the block's input (entering through the frame's top) or from the projection's bn."""
    svg = picture("resnet50", 2)
    adds = [g for g in groups(svg, "merge") if g.get("data-kind") == "add"]
    assert len(adds) == 16
    for add in adds:
        inputs = [e for e in groups(svg, "edge") if e.get("data-to") == add.get("data-row")]
        sources = sorted(texts(traced_from(svg, e))[0] for e in inputs)
        assert len(sources) == 2 and sources[1].startswith("bottleneck_path"), sources
        assert sources[0] == "bn" or sources[0].startswith("bottleneck"), sources  # the projection, or the input


@pytest.mark.parametrize(
    "name, depth, kind, inputs, count",
    [
        ("resnet50", 3, "add", 2, 16),  # shortcut + residual path
        ("googlenet", 2, "concat", 4, 9),  # a merge at the fold level keeps its four branches
        ("googlenet", None, "concat", 4, 9),
        ("mobilenet-v2", 3, "add", 2, 10),
    ],
)
def test_merge_nodes_have_one_incoming_edge_per_branch(name, depth, kind, inputs, count):
    svg = picture(name, depth)
    merges = [g for g in groups(svg, "merge") if g.get("data-kind") == kind]
    assert len(merges) == count
    edges = groups(svg, "edge")
    for merge in merges:
        assert merge.get("data-inputs") == str(inputs)
        assert sum(e.get("data-to") == merge.get("data-row") for e in edges) == inputs


def test_folded_branches_are_named_by_their_first_line():
    svg = picture("googlenet", 2)
    first = next(g for g in groups(svg, "frame") if texts(g)[0].startswith("inception 64 96 128"))
    branches = [texts(g)[0] for g in groups(svg, "folded") if g.get("data-kind") == "branch"]
    assert branches[:3] == ["conv_bn 96 1 …", "conv_bn 16 1 …", "maxpool 3x3 /1 same …"]
    assert first is not None and "branch" not in branches


NESTED = """
def dense_layer(g):
    concat:
        identity
        branch:
            bn
            relu
            conv g 3 padding=same

input 32x32x3
conv 16 3 padding=same
repeat 2:
    dense_layer 8
add:
    branch:
        concat:
            conv 8 1
            add:
                identity
                conv 32 3 padding=same
        conv 32 1
    identity
    conv 32 1
"""


def test_nested_merges_repeats_and_identity_branches_lay_out_cleanly(compile_text):
    svg = ET.fromstring(to_svg(draw(compile_text(NESTED), "nested").scene))
    merges = {g.get("data-kind") + g.get("data-line"): g.get("data-inputs") for g in groups(svg, "merge")}
    assert merges == {"concat2": "2", "add13": "3", "concat15": "2", "add17": "2"}
    frames = [texts(g)[0] for g in groups(svg, "frame")]
    assert frames == ["repeat 2", "dense_layer 8", "bn …", "dense_layer 8", "bn …", "concat …"]
    assert_edges_land(svg)
    assert_no_overlap(svg)
    assert measure(svg).broken == 0


def test_the_flatten_head_is_outlined_with_its_share_and_the_lint_finding():
    svg = picture("flatten-head", None)
    (head,) = groups(svg, "dense-head")
    words = " ".join(texts(head))
    assert "11,508,138 params = 99.4% of the model" in words
    assert "CA101" in words and "72,522" in words
    dense = next(g for g in groups(svg, "row") if texts(g)[0] == "dense 64")
    assert "11,505,728 params (99.4%)" in texts(dense)[1]
    assert not groups(picture("resnet50", 1), "dense-head")  # global pooling: no dense head


def test_boxes_are_coloured_by_family_and_the_legend_lists_the_families_drawn():
    svg = picture("flatten-head", None)
    drawn = groups(svg, "row")
    for group in drawn:
        fill, stroke = PALETTE[group.get("data-family")]
        assert (group.find(f"{SVG}rect").get("fill"), group.find(f"{SVG}rect").get("stroke")) == (fill, stroke)
    families = [g.get("data-family") for g in drawn]
    (legend,) = groups(svg, "legend")
    assert texts(legend) == [LEGEND_NAMES.get(f, f) for f in PALETTE if f in families]
    assert {"convolution", "pooling", "dense", "activation", "normalization"} <= set(texts(legend))


@pytest.mark.parametrize("name, style", [("googlenet", "graph"), ("unet", "volumes"), ("flatten-head", "volumes")])
def test_text_is_at_least_12_px_at_1_to_1(name, style):
    svg = ET.fromstring(to_svg(draw(typed(name), name, style=style).scene))
    sizes = [float(t.get("font-size")) for t in svg.iter(f"{SVG}text")]
    assert len(sizes) > 20 and min(sizes) >= 12


def test_every_layer_kind_has_a_family_with_a_colour():
    for kind in REGISTRY:
        family = layer_family(kind)
        assert family != "block", kind
        assert family in PALETTE
