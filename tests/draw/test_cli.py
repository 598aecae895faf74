"""`cnn-arch draw` and `summarize --format dot` as a user runs them: files written, formats readable by
other tools (Pillow, pydot), user mistakes reported with exit code 2, no JAX imported."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pydot
import pytest
from PIL import Image

from archspec import templates
from archspec.summary import summarize
from tests.draw.test_graph import SVG, groups, typed

TEMPLATES = templates.names()


def svg_size(path) -> tuple[float, float]:
    root = ET.parse(path).getroot()
    return float(root.get("width")), float(root.get("height"))


@pytest.mark.parametrize("style", ["graph", "volumes"])
@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_draws_as_svg_in_both_styles(cli, tmp_path, name, style):
    out = tmp_path / f"{name}.svg"
    result = cli("draw", name, "--style", style, "-o", str(out))
    assert result.code == 0, result.err
    assert f"Wrote {out}" in result.err
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    drawn = groups(root, "row" if style == "graph" else "volume")
    assert drawn


@pytest.mark.parametrize(
    "args",
    [("lenet5",), ("googlenet", "--depth", "1"), ("resnet50", "--style", "volumes")],
    ids=["lenet5", "googlenet-depth-1", "resnet50-volumes"],
)
def test_png_and_pdf_show_the_same_page_as_the_svg(cli, tmp_path, args):
    svg, png, pdf = (tmp_path / f"picture.{ext}" for ext in ("svg", "png", "pdf"))
    for path in (svg, png, pdf):
        assert cli("draw", *args, "-o", str(path)).code == 0
    width, height = svg_size(svg)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == (round(2 * width), round(2 * height))  # 2 pixels per point: sharp on HiDPI
        assert len(image.getcolors(1 << 16) or range(257)) > 256  # anti-aliased text and colours, not blank
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    media = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert (float(media[1]), float(media[2])) == pytest.approx((width, height), abs=1)


def test_without_o_it_writes_name_svg_here_and_dash_writes_svg_to_stdout(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("draw", "lenet5").code == 0
    assert (tmp_path / "lenet5.svg").is_file()
    result = cli("draw", "lenet5", "-o", "-")
    assert result.code == 0
    assert ET.fromstring(result.out).tag == f"{SVG}svg"


@pytest.mark.parametrize(
    "output, message",
    [
        ("net.jpg", "`-o net.jpg`: cnn-arch draws .svg, .png or .pdf files, got `.jpg`"),
        ("net", "`-o net`: cnn-arch draws .svg, .png or .pdf files, got no extension"),
        ("missing/net.svg", "missing/net.svg: error: cannot write the picture: its folder does not exist"),
        ("missing/net.png", "missing/net.png: error: cannot write the picture: its folder does not exist"),
        ("folder.svg", "folder.svg: error: cannot write the picture: Is a directory"),
    ],
)
def test_bad_outputs_are_user_errors(cli, tmp_path, monkeypatch, output, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.svg").mkdir()
    result = cli("draw", "lenet5", "-o", output)
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err


def test_a_bad_spec_is_reported_at_its_line_and_column(cli, tmp_path):
    spec = tmp_path / "bad.arch"
    spec.write_text("input 8x8x1\nconv 4 3\nmaxpool 9\n", encoding="utf-8")
    result = cli("draw", str(spec), "-o", str(tmp_path / "bad.svg"))
    assert result.code == 2
    assert "bad.arch:3:1: error: maxpool 9 needs at least 9x9 input, got 6x6" in result.err
    assert not (tmp_path / "bad.svg").exists()


def test_bad_options_exit_2(cli):
    assert cli("draw", "lenet5", "--depth", "0").code == 2
    assert cli("draw", "lenet5", "--style", "cubes").code == 2
    assert cli("draw", "nosuch-template").code == 2


@pytest.mark.parametrize("format", ["svg", "png"])
def test_svg_and_png_need_neither_jax_nor_matplotlib(tmp_path, format):
    code = (
        "import sys; from cnn_arch.cli.app import main;\n"
        f"sys.argv=['cnn-arch','draw','resnet50','--depth','1','-o',{str(tmp_path / ('r.' + format))!r}]\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('jax', 'flax', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")
    assert (tmp_path / f"r.{format}").stat().st_size > 10_000


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydot 4 calls pyparsing's old names
@pytest.mark.parametrize("name, depth", [("googlenet", 3), ("resnet50", 1), ("flatten-head", None)])
def test_summarize_dot_is_graphviz_text_with_a_node_per_box_and_a_cluster_per_block(cli, name, depth):
    args = ("--depth", str(depth)) if depth else ()
    result = cli("summarize", name, "--format", "dot", *args)
    assert result.code == 0
    (graph,) = pydot.graph_from_dot_data(result.out)
    rows = summarize(typed(name), name).folded(depth)
    expanded = [i + 1 < len(rows) and rows[i + 1].depth > r.depth for i, r in enumerate(rows)]
    frames = sum(e and r.kind not in ("add", "concat", "multiply") for r, e in zip(rows, expanded))

    def walk(g):
        yield g
        for sub in g.get_subgraphs():
            yield from walk(sub)

    every = list(walk(graph))
    nodes = [n for g in every for n in g.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    assert len(nodes) == len(rows) - frames
    assert len(every) - 1 == frames
    labels = {n.get("label").strip('"').split("\\n")[0] for n in nodes}
    assert {r.label for r, e in zip(rows, expanded) if not e} <= labels
    edges = [e for g in every for e in g.get_edges()]
    assert len(edges) >= len(nodes) - 1  # connected: every node but the input has an edge in
