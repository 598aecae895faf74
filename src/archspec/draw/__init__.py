"""Pictures of a typed graph: `graph` (boxes and data flow) and `volumes` (textbook feature-map blocks),
as SVG (written directly), PNG (Pillow), PDF (matplotlib) or an interactive HTML page. No JAX.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archspec.draw.scene import Scene, to_svg
from archspec.infer import TypedGraph

FORMATS = ("svg", "png", "pdf", "html")
STYLES = ("graph", "volumes")
# A static picture (SVG, PNG, PDF: for papers and slides) unfolds only as deep as stays readable: read
# at 1:1 by scrolling down, no wider than a screen and page. Its PNG (2 px per unit) then stays under
# 77 megapixels, below Pillow's decompression-bomb warning. The HTML viewer shows everything.
READABLE = (2400, 8000)  # width, height in scene units (SVG px, PDF pt)


@dataclass
class Picture:
    scene: Scene
    depth: int | None  # the `--depth` drawn (None: every layer)
    full_size: tuple[float, float] | None = None  # the size every layer would take, when folded to fit


def draw(typed: TypedGraph, name: str, *, style: str = "graph", depth: int | None = None, fit: bool = False) -> Picture:
    """The picture of `typed`; `depth` folds blocks below that level like `summarize --depth`. With `fit`
    and no depth, a `graph` too large to read is folded to the deepest level that fits READABLE."""
    from archspec.draw.model import build, fold_depth, max_depth
    from archspec.summary import summarize

    model = build(summarize(typed, name), typed, depth)
    if style == "volumes":
        from archspec.draw.volumes import volumes_scene

        if depth is None:
            model.folded = fold_depth(model, 1)  # blocks whole unless asked
        return Picture(_whole(volumes_scene(model)), depth or 1)
    from archspec.draw.graph import graph_scene
    from archspec.draw.layered import plan

    layered = plan(model)  # one plan serves every folding
    scene = graph_scene(model, layered)
    if not fit or depth is not None or _readable(scene):
        return Picture(_whole(scene), depth)
    full = (math.ceil(scene.width), math.ceil(scene.height))
    for level in range(max_depth(model) - 1, 0, -1):
        model.folded = fold_depth(model, level)
        scene = graph_scene(model, layered)
        if _readable(scene) or level == 1:
            while level > 1 and fold_depth(model, level - 1) == model.folded:
                level -= 1  # the same picture: name the smallest --depth that draws it
            return Picture(_whole(scene), level, full)
    return Picture(_whole(scene), depth)


def _readable(scene: Scene) -> bool:
    return scene.width <= READABLE[0] and scene.height <= READABLE[1]


def interactive(typed: TypedGraph, name: str, *, depth: int | None = None) -> str:
    """The HTML viewer page of `typed`, opened folded at `depth` (every layer by default)."""
    from archspec.draw.html import html_page
    from archspec.draw.layered import plan
    from archspec.draw.model import build
    from archspec.summary import summarize

    model = build(summarize(typed, name), typed, depth)
    return html_page(model, plan(model))


def _whole(scene: Scene) -> Scene:
    scene.width, scene.height = math.ceil(scene.width), math.ceil(scene.height)  # whole pixels in every format
    return scene


def write(scene: Scene, path: str, format: str) -> tuple[int, int]:
    """Write `scene` to `path` as svg, png or pdf; returns the file's size in its own units (pixels for
    PNG, points for PDF). OSError when the file cannot be written."""
    if format == "svg":
        with open(path, "w", encoding="utf-8") as out:
            out.write(to_svg(scene))
        return round(scene.width), round(scene.height)
    if format == "png":
        from archspec.draw.png import write_png

        return write_png(scene, path)
    from archspec.draw.pdf import write_pdf

    write_pdf(scene, path)
    return round(scene.width), round(scene.height)
