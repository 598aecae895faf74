"""Specs with named tensors are drawn with the layered layout: every edge of the true graph (long skips,
a cell reading the cell before last) lands on its boxes, nothing overlaps, `--depth` folding still works."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from archspec.compile import compile_spec
from archspec.draw import draw
from archspec.draw.scene import to_svg
from tests.draw.test_graph import assert_edges_land, assert_no_overlap, groups, texts
from tests.test_named_tensors import CELL, DENSE, UNET


def picture(text: str, depth: int | None = None) -> ET.Element:
    return ET.fromstring(to_svg(draw(compile_spec(text, "named.arch"), "named", depth=depth)))


def edges_by_label(svg: ET.Element) -> set[tuple[str, str]]:
    rows = {g.get("data-row"): texts(g)[0] for g in groups(svg, "row")}
    return {(rows[e.get("data-from")], rows[e.get("data-to")]) for e in groups(svg, "edge")}


@pytest.mark.parametrize("text, depth", [(CELL, None), (CELL, 1), (CELL, 2), (UNET, None), (DENSE, None)])
def test_edges_land_and_boxes_do_not_overlap(text, depth):
    svg = picture(text, depth)
    assert groups(svg, "edge")
    assert_edges_land(svg)
    assert_no_overlap(svg)
    assert not groups(svg, "frame")  # the layered layout draws blocks open, without frames


def test_the_drawing_has_the_true_graphs_edges():
    edges = edges_by_label(picture(CELL, 1))
    # each cell reads the previous cell (the stream) and the one before it (`prev=@...`)
    assert ("conv 16 3x3 same -> c0", "cell 16 prev=@c0 -> c2") in edges
    assert ("conv 16 3x3 same -> c1", "cell 16 prev=@c0 -> c2") in edges
    assert ("conv 16 3x3 same -> c1", "cell 16 prev=@c1 -> c3") in edges
    assert ("cell 16 prev=@c0 -> c2", "cell 24 @c2") in edges
    skips = edges_by_label(picture(UNET))
    assert ("relu -> e1", "‖") in skips and ("relu -> e2", "‖") in skips  # a concat node shows its symbol first


def test_merge_nodes_get_one_edge_per_input():
    svg = picture(DENSE)
    merges = [g for g in groups(svg, "row") if "merge" in g.get("class").split()]
    assert [int(g.get("data-inputs")) for g in merges] == [2, 3]
