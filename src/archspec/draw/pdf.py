"""PDF of a Scene, painted with matplotlib (a dependency already; imported only here).

One scene unit is one typographic point, so font sizes and line widths mean the same as in the SVG.
Fonts are embedded as TrueType (Type 42), as journals and arXiv ask.
"""

from __future__ import annotations

from archspec.draw.scene import FONT, Circle, Line, Polygon, Rect, Scene, Text


def write_pdf(scene: Scene, path: str) -> None:
    """Write `scene` as a vector PDF page of the scene's size in points, fonts embedded."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle as CirclePatch
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.patches import Polygon as PolygonPatch

    figure = Figure(figsize=(scene.width / 72, scene.height / 72), dpi=72)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, scene.width)
    axes.set_ylim(scene.height, 0)
    axes.set_axis_off()
    figure.patch.set_facecolor(scene.background)
    order = 0
    for group in scene.groups:
        for shape in group.shapes:
            order += 1
            common = {"zorder": order}
            if isinstance(shape, Rect):
                axes.add_artist(
                    FancyBboxPatch(
                        (shape.x, shape.y),
                        shape.w,
                        shape.h,
                        boxstyle=f"round,pad=0,rounding_size={shape.radius}" if shape.radius else "square,pad=0",
                        facecolor=shape.fill,
                        edgecolor=shape.stroke,
                        linewidth=shape.stroke_width if shape.stroke != "none" else 0,
                        linestyle=(0, (5, 3)) if shape.dash else "solid",
                        **common,
                    )
                )
            elif isinstance(shape, Circle):
                axes.add_artist(
                    CirclePatch(
                        (shape.cx, shape.cy),
                        shape.r,
                        facecolor=shape.fill,
                        edgecolor=shape.stroke,
                        linewidth=shape.stroke_width,
                        **common,
                    )
                )
            elif isinstance(shape, Polygon):
                axes.add_artist(
                    PolygonPatch(
                        shape.points,
                        closed=True,
                        facecolor=shape.fill,
                        edgecolor=shape.stroke,
                        linewidth=shape.stroke_width if shape.stroke != "none" else 0,
                        joinstyle="round",
                        **common,
                    )
                )
            elif isinstance(shape, Line):
                xs, ys = zip(*shape.points)
                axes.plot(xs, ys, color=shape.stroke, linewidth=shape.stroke_width, solid_joinstyle="miter", **common)
            elif isinstance(shape, Text):
                axes.text(
                    shape.x,
                    shape.y,
                    shape.text,
                    fontsize=shape.size,
                    family=FONT,
                    color=shape.color,
                    ha={"start": "left", "middle": "center", "end": "right"}[shape.anchor],
                    va="baseline",
                    fontweight="bold" if shape.bold else "normal",
                    parse_math=False,
                    **common,
                )
    # Type 42: the TrueType font embedded as it is (subset); matplotlib's default, Type 3, is refused by
    # arXiv and many journals' submission checks.
    with rc_context({"pdf.fonttype": 42}):
        figure.savefig(path, format="pdf", facecolor=scene.background)
