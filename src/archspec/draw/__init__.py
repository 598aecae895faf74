"""Pictures of a typed graph: `graph` (boxes and data flow) and `volumes` (textbook feature-map blocks),
as SVG (written directly), PNG (Pillow) or PDF (matplotlib). No JAX.
"""

from __future__ import annotations

import math

from archspec.draw.scene import Scene, to_svg
from archspec.infer import TypedGraph

FORMATS = ("svg", "png", "pdf")
STYLES = ("graph", "volumes")


def draw(typed: TypedGraph, name: str, *, style: str = "graph", depth: int | None = None) -> Scene:
    """The picture of `typed`; `depth` folds blocks below that level like `summarize --depth`."""
    from archspec.draw.model import build
    from archspec.summary import summarize

    summary = summarize(typed, name)
    if style == "volumes":
        from archspec.draw.volumes import volumes_scene

        scene = volumes_scene(build(summary, typed, depth or 1))  # blocks whole unless asked
    else:
        from archspec.draw.graph import graph_scene

        scene = graph_scene(build(summary, typed, depth))
    scene.width, scene.height = math.ceil(scene.width), math.ceil(scene.height)  # whole pixels in every format
    return scene


def write(scene: Scene, path: str, format: str) -> None:
    """Write `scene` to `path` as svg, png or pdf. OSError when the file cannot be written."""
    if format == "svg":
        with open(path, "w", encoding="utf-8") as out:
            out.write(to_svg(scene))
        return
    if format == "png":
        from archspec.draw.png import write_png

        write_png(scene, path)
        return
    from archspec.draw.pdf import write_pdf

    write_pdf(scene, path)
