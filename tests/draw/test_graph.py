"""The `graph` picture's SVG, read back: a box per summary row, edges that land on the right boxes,
merge nodes with one input per branch, nothing overlapping, the dense head outlined."""

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

SVG = "{http://www.w3.org/2000/svg}"


@cache
def typed(name: str):
    return compile_spec(templates.path(name).read_text(encoding="utf-8"), name)


@cache
def picture(name: str, depth: int | None) -> ET.Element:
    return ET.fromstring(to_svg(draw(typed(name), name, depth=depth)))


def groups(svg: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if cls in g.get("class", "").split()]


def texts(group: ET.Element) -> list[str]:
    return [t.text for t in group.iter(f"{SVG}text")]


def box_rect(group: ET.Element) -> tuple[float, float, float, float]:
    """x, y, w, h of what edges attach to: a box's front sheet, a merge node's circle, a frame's border."""
    circle = group.find(f"{SVG}circle")
    if circle is not None:
        cx, cy, r = (float(circle.get(k)) for k in ("cx", "cy", "r"))
        return cx - r, cy - r, 2 * r, 2 * r
    rects = group.findall(f"{SVG}rect")
    rect = rects[0] if "frame" in group.get("class") else rects[-1]  # a folded block's front sheet is last
    return tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))


CASES = [
    ("lenet5", None),
    ("flatten-head", None),
    ("googlenet", 1),
    ("googlenet", 2),
    ("googlenet", None),
    ("resnet50", 1),
    ("resnet50", 3),
    ("resnet50", None),
    ("mobilenet-v2", 2),
    ("efficientnet-b0", None),
]


@pytest.mark.parametrize("name, depth", CASES)
def test_one_element_per_summary_row_with_its_label_line_and_shape(name, depth):
    rows = summarize(typed(name), name).folded(depth)
    drawn = groups(picture(name, depth), "row")
    assert len(drawn) == len(rows)
    for group, row in zip(drawn, rows):
        words = texts(group)
        assert row.label in words
        assert group.get("data-line") == str(row.line)
        assert any(t.startswith("x".join(map(str, row.shape))) for t in words)
        if row.params and "merge" not in group.get("class"):
            assert any(f"{row.params:,} params" in t for t in words)


def test_resnet50_at_depth_1_is_sixteen_folded_bottlenecks_in_one_column():
    drawn = groups(picture("resnet50", 1), "row")
    blocks = [g for g in drawn if texts(g)[0].startswith("bottleneck")]
    assert len(blocks) == 16
    assert all("layers" in texts(g)[1] for g in blocks)
    assert len({round(box_rect(g)[0] + box_rect(g)[2] / 2) for g in drawn}) == 1  # one straight column


@pytest.mark.parametrize(
    "name, depth, kind, inputs, count",
    [
        ("resnet50", 3, "add", 2, 16),  # shortcut + residual path
        ("googlenet", 2, "concat", 0, 0),  # folded at depth 2: the concat is a box inside each frame
        ("googlenet", 3, "concat", 4, 9),  # the four Inception branches
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


def test_an_identity_shortcut_is_an_edge_from_the_block_input_to_the_add():
    svg = picture("resnet50", 3)
    rows = {g.get("data-row"): g for g in groups(svg, "row")}
    second_add = [g for g in groups(svg, "merge")][1]  # in `bottleneck 64`, after the projection block
    sources = [rows[e.get("data-from")] for e in groups(svg, "edge") if e.get("data-to") == second_add.get("data-row")]
    assert sorted(texts(s)[0] for s in sources) == ["bottleneck_path 64", "relu"]


def assert_edges_land(svg: ET.Element) -> None:
    rows = {g.get("data-row"): g for g in groups(svg, "row")}
    for edge in groups(svg, "edge"):
        points = [tuple(map(float, p.split(","))) for p in edge.find(f"{SVG}polyline").get("points").split()]
        tip = [tuple(map(float, p.split(","))) for p in edge.find(f"{SVG}polygon").get("points").split()][-1]
        sx, sy, sw, sh = box_rect(rows[edge.get("data-from")])
        tx, ty, tw, _ = box_rect(rows[edge.get("data-to")])
        assert points[0] == pytest.approx((sx + sw / 2, sy + sh), abs=0.2)
        assert tip == pytest.approx((tx + tw / 2, ty), abs=0.2)
        segments = itertools.pairwise([*points, tip])
        assert all(a[0] == pytest.approx(b[0], abs=0.2) or a[1] == pytest.approx(b[1], abs=0.2) for a, b in segments)


def assert_no_overlap(svg: ET.Element) -> None:
    """Boxes and merge nodes never overlap, and every frame holds the rows nested in it."""
    drawn = groups(svg, "row")
    boxes = [box_rect(g) for g in drawn if "frame" not in g.get("class")]
    for (ax, ay, aw, ah), (bx, by, bw, bh) in itertools.combinations(boxes, 2):
        assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
    for index, frame in enumerate(drawn):
        if "frame" not in frame.get("class"):
            continue
        fx, fy, fw, fh = box_rect(frame)
        level = int(frame.get("data-depth"))
        inside = itertools.takewhile(lambda g, level=level: int(g.get("data-depth")) > level, drawn[index + 1 :])
        for x, y, w, h in map(box_rect, inside):
            assert fx <= x and x + w <= fx + fw and fy <= y and y + h <= fy + fh


@pytest.mark.parametrize("name, depth", CASES)
def test_every_edge_leaves_its_source_and_ends_on_its_target(name, depth):
    assert_edges_land(picture(name, depth))


@pytest.mark.parametrize("name, depth", [("googlenet", None), ("resnet50", None), ("mobilenet-v2", 3)])
def test_boxes_never_overlap_and_frames_hold_their_rows(name, depth):
    svg = picture(name, depth)
    assert len(groups(svg, "row")) > 50
    assert_no_overlap(svg)


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
    svg = ET.fromstring(to_svg(draw(compile_text(NESTED), "nested")))
    merges = {g.get("data-kind") + g.get("data-line"): g.get("data-inputs") for g in groups(svg, "merge")}
    assert merges == {"concat2": "2", "add13": "3", "concat15": "2", "add17": "2"}
    frames = [texts(g)[0] for g in groups(svg, "frame")]
    assert frames == ["repeat 2", "dense_layer 8", "branch", "dense_layer 8", "branch", "branch"]
    assert_edges_land(svg)
    assert_no_overlap(svg)


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


def test_every_layer_kind_has_a_family_with_a_colour():
    for kind in REGISTRY:
        family = layer_family(kind)
        assert family != "block", kind
        assert family in PALETTE
