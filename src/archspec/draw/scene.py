"""A drawing as a list of plain shapes in pixel coordinates (y down), and its SVG text.

Both styles build a Scene; SVG is written here directly (fast, no dependency), PNG and PDF are
painted from the same shapes (`archspec.draw.png`, `archspec.draw.pdf`): the three files match.
All text is monospace, so a label's width is known without a font library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

FONT = "DejaVu Sans Mono"  # shipped with matplotlib, so PNG and PDF get exactly this font
SVG_FONTS = f"'{FONT}', Menlo, Consolas, monospace"
CHAR_WIDTH = 0.602  # advance of one DejaVu Sans Mono character, in font sizes


def text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR_WIDTH


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str = "none"
    stroke: str = "none"
    stroke_width: float = 1.0
    radius: float = 0.0
    dash: bool = False


@dataclass(frozen=True)
class Circle:
    cx: float
    cy: float
    r: float
    fill: str
    stroke: str
    stroke_width: float = 1.0


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # baseline
    text: str
    size: float
    color: str = "#222222"
    anchor: str = "start"  # start, middle or end
    bold: bool = False


@dataclass(frozen=True)
class Line:
    points: tuple[tuple[float, float], ...]
    stroke: str = "#555555"
    stroke_width: float = 1.2


@dataclass(frozen=True)
class Polygon:
    points: tuple[tuple[float, float], ...]
    fill: str
    stroke: str = "none"
    stroke_width: float = 1.0


@dataclass
class Group:
    """Shapes that belong together, with the attributes the SVG carries for them (class, data-*)."""

    attrs: dict[str, str]
    shapes: list = field(default_factory=list)


@dataclass
class Scene:
    width: float
    height: float
    groups: list[Group] = field(default_factory=list)
    background: str = "#ffffff"

    def group(self, **attrs: object) -> Group:
        """A new group, drawn after (over) the ones before; `data_x=1` becomes `data-x="1"`."""
        group = Group({k.replace("_", "-"): str(v) for k, v in attrs.items()})
        self.groups.append(group)
        return group


def to_svg(scene: Scene) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{scene.width:.0f}" height="{scene.height:.0f}" '
        f'viewBox="0 0 {scene.width:.0f} {scene.height:.0f}" font-family="{SVG_FONTS}">',
        f'<rect width="100%" height="100%" fill="{scene.background}"/>',
    ]
    for group in scene.groups:
        attrs = "".join(f" {key}={quoteattr(value)}" for key, value in group.attrs.items())
        out.append(f"<g{attrs}>")
        out.extend(_svg_shape(shape) for shape in group.shapes)
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _points(points) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in points)


def _svg_shape(shape) -> str:
    if isinstance(shape, Rect):
        dash = ' stroke-dasharray="5 3"' if shape.dash else ""
        return (
            f'<rect x="{_n(shape.x)}" y="{_n(shape.y)}" width="{_n(shape.w)}" height="{_n(shape.h)}" '
            f'rx="{_n(shape.radius)}" fill="{shape.fill}" stroke="{shape.stroke}" '
            f'stroke-width="{_n(shape.stroke_width)}"{dash}/>'
        )
    if isinstance(shape, Circle):
        return (
            f'<circle cx="{_n(shape.cx)}" cy="{_n(shape.cy)}" r="{_n(shape.r)}" fill="{shape.fill}" '
            f'stroke="{shape.stroke}" stroke-width="{_n(shape.stroke_width)}"/>'
        )
    if isinstance(shape, Text):
        weight = ' font-weight="bold"' if shape.bold else ""
        return (
            f'<text x="{_n(shape.x)}" y="{_n(shape.y)}" font-size="{_n(shape.size)}" fill="{shape.color}" '
            f'text-anchor="{shape.anchor}"{weight} xml:space="preserve">{escape(shape.text)}</text>'
        )
    if isinstance(shape, Line):
        return (
            f'<polyline points="{_points(shape.points)}" fill="none" stroke="{shape.stroke}" '
            f'stroke-width="{_n(shape.stroke_width)}"/>'
        )
    if isinstance(shape, Polygon):
        return (
            f'<polygon points="{_points(shape.points)}" fill="{shape.fill}" stroke="{shape.stroke}" '
            f'stroke-width="{_n(shape.stroke_width)}" stroke-linejoin="round"/>'
        )
    raise TypeError(f"not a shape: {shape!r}")
