"""The HTML viewer (`cnn-arch draw SPEC -o net.html`) in headless Chromium, used as a reader uses it:
the page opens from a file with no network, draws every layer, folds and unfolds blocks on a click,
shows a layer's numbers on hover, finds a layer by name, outlines the dense head, and what it draws
passes the same tracing checks as the static SVG.

Chromium must be installed (Debian: `apt-get install -y chromium`); without it these tests fail.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from archspec.compile import compile_spec
from archspec.draw import interactive
from archspec.summary import summarize
from tests.draw.chromium import Browser
from tests.draw.picture_checks import assert_edges_land, measure
from tests.draw.test_graph import typed
from tests.draw.test_random_graphs import SWAP

pytestmark = pytest.mark.slow  # a browser process


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("viewer")
    for name in ("resnet50", "nasnet-mobile", "flatten-head"):
        (folder / f"{name}.html").write_text(interactive(typed(name), name), encoding="utf-8")
    swap = compile_spec(SWAP, "swap.arch")
    (folder / "swap.html").write_text(interactive(swap, "swap"), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def browser():
    with Browser(1280, 800) as page:
        yield page


def rows(page) -> list[dict]:
    return page.evaluate(
        "[...document.querySelectorAll('#viewport .row')].map(g => ({id: +g.dataset.row,"
        " cls: g.getAttribute('class'), label: g.querySelector('text:not([text-anchor=middle])').textContent}))"
    )


def centre(page, selector: str) -> tuple[float, float]:
    box = page.evaluate(
        f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    return box[0], box[1]


def nested_rows(name: str, label: str) -> int:
    """How many rows `cnn-arch summarize` lists inside the first block labelled `label`."""
    rows = summarize(typed(name), name).rows
    start = next(i for i, r in enumerate(rows) if r.label == label)
    inside = itertools.takewhile(lambda r: r.depth > rows[start].depth, rows[start + 1 :])
    return sum(1 for _ in inside)


def drawn_svg(page) -> ET.Element:
    return ET.fromstring(page.evaluate("new XMLSerializer().serializeToString(document.getElementById('canvas'))"))


def test_the_page_opens_offline_and_draws_every_layer(browser, pages, tmp_path):
    browser.open(pages / "resnet50.html")
    browser.settle()
    shot = browser.screenshot(tmp_path / "resnet50.png")
    assert shot.stat().st_size > 20_000  # boxes, text and colours, not a blank page
    assert browser.errors() == []
    assert browser.requests() == [(pages / "resnet50.html").as_uri()]  # nothing fetched but the file itself
    drawn = rows(browser)
    assert len(drawn) == 210  # every row of `cnn-arch summarize resnet50`
    svg = drawn_svg(browser)
    assert_edges_land(svg)
    quality = measure(svg)
    assert (quality.crossings, quality.broken) == (0, 0), quality
    title = browser.evaluate("document.querySelector('header .title').textContent")
    assert "resnet50" in title and "25,636,712 params" in title


def test_clicking_a_title_folds_its_block_and_clicking_the_box_unfolds_it(browser, pages):
    browser.open(pages / "resnet50.html")
    browser.settle()
    before = rows(browser)
    block = next(r for r in before if r["label"] == "bottleneck_projection 64 stride=1")
    browser.click(*centre(browser, f'.row[data-row="{block["id"]}"] .fold-target'))
    browser.settle()
    folded = rows(browser)
    mine = next(r for r in folded if r["id"] == block["id"])
    assert "folded" in mine["cls"].split()
    assert len(folded) == len(before) - nested_rows("resnet50", block["label"])  # now one box
    assert measure(drawn_svg(browser)).broken == 0
    browser.click(*centre(browser, f'.row[data-row="{block["id"]}"]'))
    browser.settle()
    assert len(rows(browser)) == len(before)
    browser.click(*centre(browser, "#fold-all"))
    browser.settle()
    assert [r["label"] for r in rows(browser)].count("bottleneck 64") == 2  # the top level only: 26 rows
    assert len(rows(browser)) == 26


def test_hovering_a_layer_shows_its_shape_parameters_macs_and_receptive_field(browser, pages):
    browser.open(pages / "resnet50.html")
    browser.settle()
    conv = next(r for r in rows(browser) if r["label"] == "conv 64 7x7 /2")
    browser.mouse("mouseMoved", *centre(browser, f'.row[data-row="{conv["id"]}"] rect'))
    browser.settle()
    tip = browser.evaluate(
        "(() => { const t = document.getElementById('tip'); return t.hidden ? null : t.innerText; })()"
    )
    assert tip is not None
    for fact in ("conv 64 7x7 /2", "Conv2D", "112x112x64", "9,472", "118,013,952", "receptive field", "7 (stride 2x2)"):
        assert fact in tip, (fact, tip)


def test_search_finds_a_layer_inside_a_folded_block_and_brings_it_into_view(browser, pages):
    browser.open(pages / "nasnet-mobile.html")
    browser.settle()
    browser.click(*centre(browser, "#fold-all"))
    browser.settle()
    assert len(rows(browser)) < 30  # the cells, folded
    browser.click(*centre(browser, "#search"))
    browser.type("sepconv 176 7x7")
    browser.key("Enter", 13)
    browser.settle()
    found = browser.evaluate(
        "(() => { const g = document.querySelector('.row.current'); if (!g) return null;"
        " const r = g.getBoundingClientRect(), c = document.getElementById('canvas').getBoundingClientRect();"
        " return {label: g.querySelector('text').textContent, inside: r.top >= c.top && r.bottom <= c.bottom"
        " && r.left >= c.left && r.right <= c.right, count: document.getElementById('found').textContent}; })()"
    )
    assert found is not None and found["label"].startswith("sepconv 176 7x7")
    assert found["inside"]  # unfolded and scrolled to where the reader sees it
    assert found["count"].startswith("1 of ")
    assert measure(drawn_svg(browser)).broken == 0


def test_every_layer_of_nasnet_is_drawn_traceably_in_the_browser(browser, pages, tmp_path):
    browser.open(pages / "nasnet-mobile.html")
    browser.settle()
    browser.screenshot(tmp_path / "nasnet.png")
    assert browser.errors() == []
    assert len(rows(browser)) == 998
    quality = measure(drawn_svg(browser))
    assert quality.broken == 0 and quality.crossings <= 196, quality


def test_a_graph_that_needs_a_dogleg_is_drawn_traceably_in_the_browser(browser, pages):
    browser.open(pages / "swap.html")
    browser.settle()
    svg = drawn_svg(browser)
    assert_edges_land(svg)
    assert measure(svg).broken == 0
    assert browser.errors() == []


def test_the_dense_head_is_outlined_with_its_share(browser, pages):
    browser.open(pages / "flatten-head.html")
    browser.settle()
    head = browser.evaluate("document.querySelector('.dense-head').textContent")
    assert "11,508,138 params = 99.4% of the model" in head and "CA101" in head
