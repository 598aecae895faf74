"""The layered layout on graphs that are not series-parallel (named tensors): every edge of the true graph
lands on its boxes, nothing overlaps, and NASNet-Mobile's cells can be traced by eye: no two tensors
share a segment, no edge runs through a box, a frame or a title, and crossings stay few.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from archspec.compile import compile_spec
from archspec.draw import draw
from archspec.draw.scene import to_svg
from tests.draw.picture_checks import assert_edges_land, groups, measure, texts
from tests.draw.test_graph import assert_no_overlap, picture, traced_from
from tests.test_named_tensors import CELL, DENSE, UNET


def named(text: str, depth: int | None = None) -> ET.Element:
    return ET.fromstring(to_svg(draw(compile_spec(text, "named.arch"), "named", depth=depth).scene))


def edges_by_label(svg: ET.Element) -> set[tuple[str, str]]:
    rows = {g.get("data-row"): texts(g)[0] for g in groups(svg, "row")}
    return {
        (texts(traced_from(svg, e))[0], rows[e.get("data-to")]) for e in groups(svg, "edge") if e.get("data-to") in rows
    }


@pytest.mark.parametrize("text, depth", [(CELL, None), (CELL, 1), (CELL, 2), (UNET, None), (DENSE, None)])
def test_edges_land_and_boxes_do_not_overlap(text, depth):
    svg = named(text, depth)
    assert groups(svg, "edge")
    assert_edges_land(svg)
    assert_no_overlap(svg)
    assert measure(svg).broken == 0


def test_the_drawing_has_the_true_graphs_edges():
    edges = edges_by_label(named(CELL, 1))
    # each cell reads the previous cell (the stream) and the one before it (`prev=@...`)
    assert ("conv 16 3x3 same -> c0", "cell 16 prev=@c0 -> c2") in edges
    assert ("conv 16 3x3 same -> c1", "cell 16 prev=@c0 -> c2") in edges
    assert ("conv 16 3x3 same -> c1", "cell 16 prev=@c1 -> c3") in edges
    assert ("cell 16 prev=@c0 -> c2", "cell 24 @c2") in edges
    skips = edges_by_label(named(UNET))
    assert ("relu -> e1", "‖") in skips and ("relu -> e2", "‖") in skips  # a merge node shows its symbol first


def test_merge_nodes_get_one_edge_per_input():
    svg = named(DENSE)
    merges = [g for g in groups(svg, "row") if "merge" in g.get("class").split()]
    assert [int(g.get("data-inputs")) for g in merges] == [2, 3]
    for merge in merges:
        ends = [e for e in groups(svg, "edge") if e.get("data-to") == merge.get("data-row")]
        assert len(ends) == int(merge.get("data-inputs"))


# Measured when the layout was written (December 2025): every layer 3,753x32,298 with 196 crossings,
# --depth 2 2,257x5,079 with 16. The previous layout, one flat layered graph, had 131 crossings and 577
# segments shared by two tensors at full depth; 9 and 52 at --depth 2.
NASNET_CROSSINGS = {None: 196, 2: 16}


@pytest.mark.parametrize("depth", [None, 2])
def test_nasnet_mobile_cells_can_be_traced(depth):
    quality = measure(picture("nasnet-mobile", depth))
    assert quality.segments > (3000 if depth is None else 300)
    assert quality.broken == 0, quality  # no shared segment, nothing through a box, frame border or title
    assert quality.crossings <= NASNET_CROSSINGS[depth], quality


def test_the_tracing_checks_see_what_a_reader_would_trip_on():
    """The checks behind the thresholds above, on a hand-made picture with one fault of each kind."""
    svg = ET.fromstring(
        '<svg xmlns="http://www.w3.org/2000/svg">'
        '<g class="row box" data-row="0"><rect x="0" y="0" width="40" height="20"/></g>'
        '<g class="row frame" data-row="1"><rect x="100" y="0" width="80" height="80"/>'
        '<text x="110" y="18" font-size="13">title</text></g>'
        # tensor 1 runs down through the box; tensor 2 shares 5 units of its vertical; tensor 3 crosses both
        '<g class="edge" data-tensor="1"><polyline points="20,-10 20,30 60,30"/></g>'
        '<g class="edge" data-tensor="2"><polyline points="20,25 20,35"/></g>'
        '<g class="edge" data-tensor="3"><polyline points="10,28 30,28"/></g>'
        # tensor 4 crosses the frame's side, tensor 5 its title
        '<g class="edge" data-tensor="4"><polyline points="90,50 120,50"/></g>'
        '<g class="edge" data-tensor="5"><polyline points="115,-5 115,15"/></g>'
        "</svg>"
    )
    quality = measure(svg)
    assert (quality.through_boxes, quality.shared, quality.crossings) == (1, 1, 2), quality
    assert (quality.through_frames, quality.through_titles) == (2, 1), quality  # tensor 5 enters the top too
