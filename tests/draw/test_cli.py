"""`cnn-arch draw` and `summarize --format dot` as a user runs them: files written, formats readable by
other tools (Pillow, the PDF's own font dictionaries, pydot), big networks folded to a readable size
with a message, user mistakes reported with exit code 2, no JAX imported."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pydot
import pytest
from PIL import Image

from archspec import templates
from archspec.draw.model import build
from archspec.summary import summarize
from tests.draw.picture_checks import SVG, groups
from tests.draw.test_graph import typed

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
    said = {}
    for path in (svg, png, pdf):
        result = cli("draw", *args, "-o", str(path))
        assert result.code == 0
        said[path.suffix] = re.search(r"\(\w+, ([\d,]+)x([\d,]+)", result.err).groups()
    width, height = svg_size(svg)
    assert said[".svg"] == (f"{width:,.0f}", f"{height:,.0f}")
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == (round(2 * width), round(2 * height))  # 2 pixels per point: sharp on HiDPI
        assert said[".png"] == tuple(f"{side:,}" for side in image.size)  # the message tells the file's size
        assert len(image.getcolors(1 << 16) or range(257)) > 256  # anti-aliased text and colours, not blank
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    media = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert (float(media[1]), float(media[2])) == pytest.approx((width, height), abs=1)


def test_pdf_fonts_are_embedded_truetype_not_type_3(cli, tmp_path):
    """arXiv and many journals refuse Type 3 fonts: the PDF embeds its fonts as TrueType (Type 42)."""
    pdf = tmp_path / "googlenet.pdf"
    assert cli("draw", "googlenet", "--depth", "2", "-o", str(pdf)).code == 0
    data = pdf.read_bytes()
    subtypes = re.findall(rb"/Subtype\s*/(\w+)", data)
    assert b"Type3" not in subtypes
    assert subtypes.count(b"CIDFontType2") >= 2  # regular and bold DejaVu Sans Mono, TrueType outlines
    assert data.count(b"/FontFile2") == subtypes.count(b"CIDFontType2")  # each one embedded


def test_a_network_too_big_to_read_is_folded_with_a_message_saying_how_to_see_it_all(cli, tmp_path):
    out = tmp_path / "nasnet.svg"
    result = cli("draw", "nasnet-mobile", "-o", str(out))
    assert result.code == 0
    assert "Folded to --depth 2 to stay readable: every layer would take 3,753x32,298." in result.err
    assert "`--depth N` unfolds further; `-o nasnet-mobile.html` shows every layer, with folding." in result.err
    width, height = svg_size(out)
    assert width <= 2400 and height <= 8000
    assert (2 * width) * (2 * height) < Image.MAX_IMAGE_PIXELS  # its PNG opens without Pillow's bomb warning
    result = cli("draw", "nasnet-mobile", "--depth", "3", "-o", str(tmp_path / "deeper.svg"))
    assert result.code == 0 and "Folded" not in result.err  # a depth asked for is drawn as asked
    assert svg_size(tmp_path / "deeper.svg")[1] > 15000


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
        ("net.jpg", "`-o net.jpg`: cnn-arch draws .svg, .png, .pdf or .html files, got `.jpg`"),
        ("net", "`-o net`: cnn-arch draws .svg, .png, .pdf or .html files, got no extension"),
        ("missing/net.html", "missing/net.html: error: cannot write the picture: its folder does not exist"),
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


def test_bad_options_exit_2(cli, tmp_path):
    assert cli("draw", "lenet5", "--depth", "0").code == 2
    assert cli("draw", "lenet5", "--style", "cubes").code == 2
    assert cli("draw", "nosuch-template").code == 2
    result = cli("draw", "lenet5", "--style", "volumes", "-o", str(tmp_path / "l.html"))
    assert result.code == 2 and "the HTML viewer draws the graph" in result.err


@pytest.mark.parametrize("format", ["svg", "png", "html"])
def test_svg_png_and_html_need_neither_jax_nor_matplotlib(tmp_path, format):
    code = (
        "import sys; from cnn_arch.cli.app import main;\n"
        f"sys.argv=['cnn-arch','draw','resnet50','--depth','1','-o',{str(tmp_path / ('r.' + format))!r}]\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('jax', 'flax', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")
    assert (tmp_path / f"r.{format}").stat().st_size > 10_000


def expanded_frames(name: str, depth: int | None) -> list:
    """The block rows (not merges) a picture at `depth` unfolds: a frame each."""
    from tests.draw.test_graph import expected_rows

    rows = expected_rows(name, depth)
    nested = [i + 1 < len(rows) and rows[i + 1].depth > r.depth for i, r in enumerate(rows)]
    return [r for r, n in zip(rows, nested) if n and r.kind not in ("add", "concat", "multiply")]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydot 4 calls pyparsing's old names
@pytest.mark.parametrize("name, depth", [("googlenet", 3), ("resnet50", 1), ("flatten-head", None)])
def test_summarize_dot_is_graphviz_text_with_a_node_per_box_and_a_cluster_per_block(cli, name, depth):
    from tests.draw.test_graph import expected_rows

    args = ("--depth", str(depth)) if depth else ()
    result = cli("summarize", name, "--format", "dot", *args)
    assert result.code == 0
    (graph,) = pydot.graph_from_dot_data(result.out)

    def walk(g):
        yield g
        for sub in g.get_subgraphs():
            yield from walk(sub)

    every = list(walk(graph))
    frames = expanded_frames(name, depth)
    nodes = [n for g in every for n in g.get_nodes() if re.fullmatch(r"n\d+", n.get_name())]
    titles = [n for g in every for n in g.get_nodes() if re.fullmatch(r"t\d+", n.get_name())]
    assert len(nodes) == len(expected_rows(name, depth)) - len(frames)
    assert len(every) - 1 == len(titles) == len(frames)
    labels = {n.get("label").strip('"').split("\\n")[0] for n in nodes}
    boxes = [r for r in expected_rows(name, depth) if r not in frames and r.kind not in ("branch", "add", "concat")]
    assert {r.label for r in boxes} <= labels
    edges = [e for g in every for e in g.get_edges() if "invis" not in str(e.get("style"))]
    assert len(edges) >= len(nodes) - 1  # connected: every node but the input has an edge in


def graphviz_layout(dot_text: str) -> tuple[dict, list]:
    """Nodes (name -> x, y, w, h, label) and edges (tail, head, points) as Graphviz lays them out."""
    import shlex

    dot = shutil.which("dot")
    assert dot, "Graphviz is needed for this test: apt-get install -y graphviz"
    plain = subprocess.run([dot, "-Tplain"], input=dot_text, capture_output=True, text=True, check=True).stdout
    nodes, edges = {}, []
    for line in plain.splitlines():
        words = shlex.split(line)
        if words[0] == "node":
            nodes[words[1]] = (*map(float, words[2:6]), words[6])
        elif words[0] == "edge" and words[-2] != "invis":
            count = int(words[3])
            values = list(map(float, words[4 : 4 + 2 * count]))
            edges.append((words[1], words[2], list(zip(values[::2], values[1::2]))))
    return nodes, edges


def _bezier(points, steps: int = 12):
    """Points along a B-spline as Graphviz writes it: cubic Bezier pieces sharing their ends."""
    for k in range(0, len(points) - 3, 3):
        p0, p1, p2, p3 = points[k : k + 4]
        for i in range(steps + 1):
            t = i / steps
            a, b, c, d = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t**3
            yield (a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1])


@pytest.mark.parametrize("name, depth", [("googlenet", 2), ("resnet50", 2), ("nasnet-mobile", 2)])
def test_graphviz_keeps_the_spec_order_and_no_edge_crosses_a_block_title(cli, name, depth):
    result = cli("summarize", name, "--format", "dot", "--depth", str(depth))
    nodes, edges = graphviz_layout(result.out)
    written = re.findall(r"^  (n\d+) -> (n\d+);$", result.out, re.M)  # edges in the order of the spec
    ends = {}
    for tail, head, points in edges:
        ends.setdefault((tail, head), []).append(points[-1][0])
    items = build(summarize(typed(name), name), typed(name), depth).items

    def inside(tail: str, merge: str) -> bool:  # a node of one of the merge's own branches
        parent = items[int(tail[1:])].parent
        while parent is not None and parent != int(merge[1:]):
            parent = items[parent].parent
        return parent is not None

    merges = [n for n, found in nodes.items() if found[4] in ("‖", "⊕", "⊗")]
    assert merges
    for merge in merges:  # branches left to right as the spec writes them: a merge's inputs arrive in order
        xs = [ends[edge].pop(0) for edge in written if edge[1] == merge]
        # (an input from outside the block, an identity shortcut or `@name`, may come in on either side)
        tails = [edge[0] for edge in written if edge[1] == merge]
        xs = [x for x, tail in zip(xs, tails) if inside(tail, merge)]
        assert xs == sorted(xs), (name, merge, xs)
    titles = [found for n, found in nodes.items() if n.startswith("t")]
    assert titles
    for tail, head, points in edges:
        for x, y in _bezier(points):
            for tx, ty, tw, th, label in titles:
                assert not (abs(x - tx) < tw / 2 - 0.02 and abs(y - ty) < th / 2 - 0.02), (tail, head, label)
