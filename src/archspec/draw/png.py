"""PNG of a Scene, painted with Pillow (a dependency already): it imports in milliseconds where
matplotlib takes half a second, which keeps `draw -o model.png` within the 1 s target.

Shapes are painted at twice the final size and reduced, which smooths their edges (Pillow's shapes
are not anti-aliased); text uses DejaVu Sans Mono from matplotlib's package data, as the PDF does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from archspec.draw.scene import Circle, Line, Polygon, Rect, Scene, Text

PNG_SCALE = 2  # pixels per scene unit: sharp on high-density screens
SUPERSAMPLE = 2
MAX_SIDE = 30_000  # pixels of the final image; a taller drawing gets a smaller scale
MAX_CANVAS = 40_000_000  # pixels painted before the reduction (120 MB of RGB); above it, no supersampling


def _font_file(bold: bool) -> str:
    # find_spec locates matplotlib without importing it (the import is what this module avoids)
    package = Path(importlib.util.find_spec("matplotlib").submodule_search_locations[0])
    return str(package / "mpl-data" / "fonts" / "ttf" / ("DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"))


def write_png(scene: Scene, path: str) -> tuple[int, int]:
    """Paint `scene` into a PNG file; returns its size in pixels."""
    from PIL import Image, ImageDraw, ImageFont

    scale = min(PNG_SCALE, MAX_SIDE / max(scene.width, scene.height))
    size = (max(1, round(scene.width * scale)), max(1, round(scene.height * scale)))
    factor = SUPERSAMPLE if size[0] * size[1] * SUPERSAMPLE**2 <= MAX_CANVAS else 1
    k = scale * factor
    image = Image.new("RGB", (size[0] * factor, size[1] * factor), scene.background)
    draw = ImageDraw.Draw(image)
    fonts: dict[tuple[float, bool], ImageFont.FreeTypeFont] = {}

    def px(value: float) -> float:
        return value * k

    def width(value: float) -> int:
        return max(1, round(value * k))

    def color(value: str) -> str | None:
        return None if value == "none" else value

    for group in scene.groups:
        for shape in group.shapes:
            if isinstance(shape, Rect):
                box = (px(shape.x), px(shape.y), px(shape.x + shape.w), px(shape.y + shape.h))
                outline = None if shape.dash else color(shape.stroke)
                draw.rounded_rectangle(
                    box,
                    radius=px(shape.radius),
                    fill=color(shape.fill),
                    outline=outline,
                    width=width(shape.stroke_width),
                )
                if shape.dash and color(shape.stroke):
                    _dashed_rect(draw, box, px(shape.radius), shape.stroke, width(shape.stroke_width), k)
            elif isinstance(shape, Circle):
                box = (px(shape.cx - shape.r), px(shape.cy - shape.r), px(shape.cx + shape.r), px(shape.cy + shape.r))
                draw.ellipse(box, fill=color(shape.fill), outline=color(shape.stroke), width=width(shape.stroke_width))
            elif isinstance(shape, Polygon):
                points = [(px(x), px(y)) for x, y in shape.points]
                draw.polygon(
                    points, fill=color(shape.fill), outline=color(shape.stroke), width=width(shape.stroke_width)
                )
            elif isinstance(shape, Line):
                points = [(px(x), px(y)) for x, y in shape.points]
                draw.line(points, fill=shape.stroke, width=width(shape.stroke_width), joint="curve")
            elif isinstance(shape, Text):
                key = (shape.size, shape.bold)
                if key not in fonts:
                    fonts[key] = ImageFont.truetype(_font_file(shape.bold), round(shape.size * k))
                anchor = {"start": "ls", "middle": "ms", "end": "rs"}[shape.anchor]
                draw.text((px(shape.x), px(shape.y)), shape.text, fill=shape.color, font=fonts[key], anchor=anchor)
    if factor > 1:
        image = image.reduce(factor)
    image.save(path, format="PNG", compress_level=1)  # zlib level 1: a little larger, several times faster
    return image.size


def _dashed_rect(draw, box, radius: float, stroke: str, line_width: int, k: float) -> None:
    """Dashes (5 on, 3 off, in scene units) along the sides of a rounded rectangle; its corners solid."""
    x0, y0, x1, y1 = box
    d = 2 * radius
    for corner, start in (((x0, y0), 180), ((x1 - d, y0), 270), ((x1 - d, y1 - d), 0), ((x0, y1 - d), 90)):
        if radius:
            draw.arc((*corner, corner[0] + d, corner[1] + d), start, start + 90, fill=stroke, width=line_width)
    on, off = 5 * k, 3 * k
    sides = [((x0 + radius, y0), (x1 - radius, y0)), ((x0 + radius, y1), (x1 - radius, y1))]
    sides += [((x0, y0 + radius), (x0, y1 - radius)), ((x1, y0 + radius), (x1, y1 - radius))]
    for (ax, ay), (bx, by) in sides:
        length = abs(bx - ax) + abs(by - ay)
        dx, dy = (bx - ax) / length if length else 0, (by - ay) / length if length else 0
        t = 0.0
        while t < length:
            end = min(t + on, length)
            draw.line([(ax + dx * t, ay + dy * t), (ax + dx * end, ay + dy * end)], fill=stroke, width=line_width)
            t = end + off
