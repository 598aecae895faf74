"""What a reader of a `graph` picture can trace, measured on the SVG itself (ours, or the DOM the browser
drew): edge crossings, segments two tensors share, edges through boxes, frame borders or titles.

Read from the drawn SVG only, never from the layout's own data, so the same checks judge the static
file and the interactive viewer in Chromium.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass

SVG = "{http://www.w3.org/2000/svg}"
EPS = 0.5


@dataclass
class Quality:
    crossings: int  # a horizontal and a vertical segment of two tensors crossing
    shared: int  # two tensors' segments running on top of each other
    through_boxes: int  # a segment across a box or merge node
    through_frames: int  # a segment across a frame's border (edges enter frames only at their ports)
    through_titles: int  # a segment across a frame's title
    segments: int

    @property
    def broken(self) -> int:
        """Faults a reader cannot trace past; each should be zero."""
        return self.shared + self.through_boxes + self.through_frames + self.through_titles


def _classes(element: ET.Element) -> list[str]:
    return element.get("class", "").split()


def groups(svg: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if cls in _classes(g)]


def texts(group: ET.Element) -> list[str]:
    return [t.text for t in group.iter(f"{SVG}text")]


def box_rect(group: ET.Element) -> tuple[float, float, float, float]:
    """x, y, w, h of what edges attach to: a box's front sheet, a merge node, a frame's border."""
    circle = group.find(f"{SVG}circle")
    if circle is not None:
        cx, cy, r = (float(circle.get(k)) for k in ("cx", "cy", "r"))
        return cx - r, cy - r, 2 * r, 2 * r
    rects = group.findall(f"{SVG}rect")
    if "frame" in _classes(group) or "merge" in _classes(group):
        return _rect(rects[0])
    x, y, w, h = _rect(rects[-1])
    if "folded" in _classes(group):  # the front sheet and the one behind it, 3 px down and right
        return x, y, w + 3, h + 3
    return x, y, w, h


def polyline(edge: ET.Element) -> list[tuple[float, float]]:
    """An edge's points, its arrowhead's tip last."""
    points = _points(edge.find(f"{SVG}polyline").get("points"))
    tip = edge.find(f"{SVG}polygon")
    return [*points, _points(tip.get("points"))[-1]] if tip is not None else points


def assert_edges_land(svg: ET.Element) -> None:
    """Every edge is orthogonal, leaves the bottom of what it comes from and reaches the top of what it
    goes to (a frame: at one of its ports, on its top or bottom border), and an edge that reaches a
    frame's port goes on from the same point on the other side of the border."""
    rows = {g.get("data-row"): g for g in groups(svg, "row")}
    starts, ends = [], []
    for edge in groups(svg, "edge"):
        points = polyline(edge)
        assert all(abs(a[0] - b[0]) < 0.2 or abs(a[1] - b[1]) < 0.2 for a, b in itertools.pairwise(points))
        for (x, y), key, side in (
            (points[0], edge.get("data-from"), "bottom"),
            (points[-1], edge.get("data-to"), "top"),
        ):
            if key == "-1":  # a lane's port: a branch drawn without a border
                continue
            group = rows[key]
            rx, ry, rw, rh = box_rect(group)
            assert rx - 0.2 <= x <= rx + rw + 0.2, (edge.attrib, x, (rx, rw))
            if "frame" in _classes(group):
                assert min(abs(y - ry), abs(y - ry - rh)) < 0.2, (edge.attrib, y, (ry, rh))
                (starts if side == "bottom" else ends).append((round(x, 1), round(y, 1), key))
            elif side == "bottom":
                assert abs(y - ry - rh) < 0.2, (edge.attrib, y, ry + rh)
            else:
                assert ry - 0.2 <= y <= ry + rh / 2, (edge.attrib, y, ry)  # a box's top, or a merge node's rim
    assert sorted(set(starts)) == sorted(set(ends))  # no edge stops at a frame border


def _points(text: str) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in text.split()]


def _rect(element: ET.Element) -> tuple[float, float, float, float]:
    return tuple(float(element.get(k)) for k in ("x", "y", "width", "height"))


def edge_segments(svg: ET.Element) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
    """(tensor, start, end) of every straight piece of every edge, arrowheads included."""
    out = []
    for group in svg.iter(f"{SVG}g"):
        if "edge" not in _classes(group):
            continue
        line = group.find(f"{SVG}polyline")
        points = _points(line.get("points"))
        tip = group.find(f"{SVG}polygon")
        if tip is not None:
            points.append(_points(tip.get("points"))[-1])
        for a, b in itertools.pairwise(points):
            if abs(a[0] - b[0]) >= EPS or abs(a[1] - b[1]) >= EPS:  # a jog under half a pixel is no segment
                out.append((group.get("data-tensor"), a, b))
    return out


def _shared(segments: list[tuple], line: int, low: int, high: int) -> int:
    """Pairs of segments of two tensors on one line (same y, or same x) that overlap."""
    on_line = collections.defaultdict(list)
    for segment in segments:
        on_line[round(segment[line], 1)].append(segment)
    return sum(
        a[0] != b[0] and min(a[high], b[high]) - max(a[low], b[low]) > EPS
        for found in on_line.values()
        for a, b in itertools.combinations(found, 2)
    )


def measure(svg: ET.Element) -> Quality:
    segments = edge_segments(svg)
    horizontal = [(t, min(a[0], b[0]), max(a[0], b[0]), a[1]) for t, a, b in segments if abs(a[1] - b[1]) < EPS]
    vertical = [(t, a[0], min(a[1], b[1]), max(a[1], b[1])) for t, a, b in segments if abs(a[0] - b[0]) < EPS]
    assert len(horizontal) + len(vertical) == len(segments), "an edge is not orthogonal"
    by_x = sorted(vertical, key=lambda v: v[1])
    xs = [v[1] for v in by_x]
    crossings = 0
    for t1, x0, x1, y in horizontal:
        for t2, _, y0, y1 in by_x[bisect.bisect_right(xs, x0 + EPS) : bisect.bisect_left(xs, x1 - EPS)]:
            crossings += t1 != t2 and y0 + EPS < y < y1 - EPS
    shared = _shared(horizontal, 3, 1, 2) + _shared(vertical, 1, 2, 3)
    boxes, frames, titles = [], [], []
    for group in svg.iter(f"{SVG}g"):
        classes = _classes(group)
        if "row" not in classes:
            continue
        if "frame" in classes:
            frames.append(_rect(group.find(f"{SVG}rect")))
            for line in group.findall(f"{SVG}text"):  # each line of the title: its ink, roughly
                size, x, y = (float(line.get(k)) for k in ("font-size", "x", "y"))
                titles.append((x, y - 0.75 * size, len(line.text or "") * size * 0.602, 0.95 * size))
        elif group.find(f"{SVG}circle") is not None:
            cx, cy, r = (float(group.find(f"{SVG}circle").get(k)) for k in ("cx", "cy", "r"))
            boxes.append((cx - r, cy - r, 2 * r, 2 * r))
        else:
            boxes.append(_rect(group.findall(f"{SVG}rect")[-1]))

    by_y = sorted(horizontal, key=lambda h: h[3])
    ys = [h[3] for h in by_y]

    def near(low_x: float, high_x: float, low_y: float, high_y: float):
        """Horizontal segments with y, and vertical ones with x, strictly inside the given ranges."""
        return (
            by_y[bisect.bisect_right(ys, low_y) : bisect.bisect_left(ys, high_y)],
            by_x[bisect.bisect_right(xs, low_x) : bisect.bisect_left(xs, high_x)],
        )

    def across(rect, shrink: float, ending: bool = True) -> int:
        """Segments into the rectangle's inside; with `ending`, not those ending on it (as an edge's
        last segment does, on a box's top or a merge node's rim)."""
        x, y, w, h = rect
        x0, y0, x1, y1 = x + shrink, y + shrink, x + w - shrink, y + h - shrink

        def on(px, py) -> bool:
            return ending and x - EPS <= px <= x + w + EPS and y - EPS <= py <= y + h + EPS

        rows, columns = near(x0, x1, y0, y1)
        hits = sum(1 for _, a0, a1, yy in rows if a0 < x1 and a1 > x0 and not (on(a0, yy) or on(a1, yy)))
        return hits + sum(1 for _, xx, b0, b1 in columns if b0 < y1 and b1 > y0 and not (on(xx, b0) or on(xx, b1)))

    def over_border(rect) -> int:
        x, y, w, h = rect
        rows, columns = near(x, x + w, y, y + h)
        sides = sum(1 for _, a0, a1, _ in rows for bx in (x, x + w) if a0 + EPS < bx < a1 - EPS)
        return sides + sum(1 for _, _, b0, b1 in columns for by in (y, y + h) if b0 + EPS < by < b1 - EPS)

    return Quality(
        crossings,
        shared,
        sum(across(b, 1.0) for b in boxes),
        sum(over_border(f) for f in frames),
        sum(across(t, 0.0, ending=False) for t in titles),
        len(segments),
    )
