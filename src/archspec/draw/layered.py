"""Layered (Sugiyama-style) layout for a graph with named tensors, which need not be series-parallel:
layers by longest path, dummy points on long edges, barycentre ordering sweeps, then x by the average
of each box's neighbours without overlaps. Frames are not drawn here; folded blocks stay boxes.
"""

from __future__ import annotations

from itertools import pairwise

from archspec.draw.layout import GAP_X, GAP_Y, Placement, Size
from archspec.draw.model import FRAME, MERGE, DrawModel

SWEEPS = 8  # ordering sweeps (down and up); the graphs are a few hundred boxes at most
DUMMY_W = 12.0  # width an edge passing through a layer takes


def layered_layout(model: DrawModel, box_size: Size, merge_size: Size) -> Placement:
    """Place the boxes and merge nodes of `model` (its frames are left out) and route its edges."""
    # in data-flow order: by first IR node (a merge's row comes before its branches' rows)
    shown = sorted((item.id for item in model.items if item.role != FRAME), key=lambda i: model.items[i].own_nodes[0])
    rank = {item: index for index, item in enumerate(shown)}
    size = {}
    for i in shown:
        item = model.items[i]
        size[i] = merge_size(item) if item.role == MERGE else box_size(item)
    edges = [(a, b) for a, b in model.edges if a in size and b in size]
    layer = {i: 0 for i in shown}
    for a, b in sorted(edges, key=lambda e: rank[e[1]]):
        layer[b] = max(layer[b], layer[a] + 1)
    # then each box as late as its first reader allows: a branch stands just above its merge
    for a in reversed(shown):
        readers = [layer[b] for x, b in edges if x == a]
        if readers:
            layer[a] = min(readers) - 1
    # long edges pass through each layer between their ends as a chain of dummy points
    next_id = max(shown, default=0) + 1
    chains: list[list[int]] = []
    for a, b in edges:
        chain = [a]
        for depth in range(layer[a] + 1, layer[b]):
            layer[next_id] = depth
            size[next_id] = (DUMMY_W, 0.0)
            chain.append(next_id)
            next_id += 1
        chains.append([*chain, b])
    count = max(layer.values(), default=0) + 1
    rows: list[list[int]] = [[] for _ in range(count)]
    for node in sorted(layer, key=lambda n: rank.get(n, len(rank) + n)):
        rows[layer[node]].append(node)
    up: dict[int, list[int]] = {n: [] for n in layer}
    down: dict[int, list[int]] = {n: [] for n in layer}
    for chain in chains:
        for a, b in pairwise(chain):
            down[a].append(b)
            up[b].append(a)
    _order(rows, up, down)
    x = _positions(rows, up, down, size)
    _straighten(chains, rows, x, size)
    _align_runs(rows, up, down, x, size)
    heights = [max((size[n][1] for n in row), default=0.0) for row in rows]
    tops, y = [], 0.0
    for h in heights:
        tops.append(y)
        y += h + 2 * GAP_Y
    left = min((x[n] - size[n][0] / 2 for n in layer), default=0.0)
    right = max((x[n] + size[n][0] / 2 for n in layer), default=0.0)
    placement = Placement(right - left, max(0.0, y - 2 * GAP_Y))
    for i in shown:
        w, h = size[i]
        top = tops[layer[i]] + (heights[layer[i]] - h) / 2
        if model.items[i].role == MERGE:  # a circle `h` across; its label is drawn beside it
            placement.rects[i] = (x[i] - left - h / 2, top, h, h)
        else:
            placement.rects[i] = (x[i] - left - w / 2, top, w, h)
    # edges from different sources turn at different heights in a gap, so two buses never read as one
    sources: dict[int, list[int]] = {}
    for chain in chains:
        for hop_from, hop_to in pairwise(chain):
            found = sources.setdefault(layer[hop_to], [])
            if hop_from not in found:
                found.append(hop_from)
    for found in sources.values():
        found.sort(key=lambda n: x[n])
    for (a, b), chain in zip(edges, chains):
        points = [(x[a] - left, _bottom(placement, a)[1])]
        for hop_from, hop_to in pairwise(chain):
            found = sources[layer[hop_to]]
            spread = 0.0 if len(found) == 1 else found.index(hop_from) / (len(found) - 1) - 0.5
            turn = tops[layer[hop_to]] - GAP_Y + spread * 1.2 * GAP_Y
            points += [(points[-1][0], turn), (x[hop_to] - left, turn)]
            if hop_to in placement.rects:
                points.append((x[hop_to] - left, placement.rects[hop_to][1]))
            else:
                points.append((x[hop_to] - left, tops[layer[hop_to]] + heights[layer[hop_to]]))
        placement.routes.append((a, b, _straight(points)))
    return placement


def _bottom(placement: Placement, item: int) -> tuple[float, float]:
    """The bottom centre of a placed item, where its outgoing edges start."""
    x, y, w, h = placement.rects[item]
    return x + w / 2, y + h


def _order(rows: list[list[int]], up: dict[int, list[int]], down: dict[int, list[int]]) -> None:
    """Barycentre sweeps: each layer sorted by the mean position of its neighbours in the layer before."""
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        indices = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
        for index in indices:
            before = rows[index - 1] if downward else rows[index + 1]
            place = {n: p for p, n in enumerate(before)}
            neighbours = up if downward else down
            current = {n: p for p, n in enumerate(rows[index])}

            def key(node, place=place, neighbours=neighbours, current=current):
                linked = [place[m] for m in neighbours[node] if m in place]
                return sum(linked) / len(linked) if linked else current[node]

            rows[index].sort(key=key)


def _positions(rows, up, down, size) -> dict[int, float]:
    """x of each node's centre: packed left to right, then pulled towards its neighbours' mean while
    keeping the order and a gap (a few rounds of averaging and two overlap-removing passes)."""
    x: dict[int, float] = {}
    for row in rows:
        cursor = 0.0
        for node in row:
            x[node] = cursor + size[node][0] / 2
            cursor += size[node][0] + GAP_X
    for round_ in range(2 * SWEEPS):
        order = rows if round_ % 2 == 0 else rows[::-1]
        for row in order:
            for node in row:
                linked = up[node] + down[node]
                if linked:
                    x[node] = sum(x[m] for m in linked) / len(linked)
            _separate(row, x, size)
    return x


def _straighten(chains: list[list[int]], rows: list[list[int]], x: dict[int, float], size) -> None:
    """Line up the dummy points of each long edge on one x where the boxes beside them leave room, so a
    long skip is one straight vertical run instead of a staircase."""
    where = {node: (index, row.index(node)) for index, row in enumerate(rows) for node in row}
    for chain in chains:
        dummies = chain[1:-1]
        if len(dummies) < 2:
            continue
        for target in sorted({x[d] for d in dummies}, key=lambda t: sum(abs(x[d] - t) for d in dummies)):
            if all(_fits(rows[where[d][0]], where[d][1], target, x, size) for d in dummies):
                for d in dummies:
                    x[d] = target
                break


def _align_runs(rows, up, down, x: dict[int, float], size) -> None:
    """A box fed by one box that feeds only it stands right under it, where the row leaves room."""
    for row in rows:
        for position, node in enumerate(row):
            if len(up[node]) == 1 and len(down[up[node][0]]) == 1:
                target = x[up[node][0]]
                if _fits(row, position, target, x, size):
                    x[node] = target


def _fits(row: list[int], position: int, target: float, x: dict[int, float], size) -> bool:
    half = size[row[position]][0] / 2
    if position > 0 and x[row[position - 1]] + size[row[position - 1]][0] / 2 + GAP_X > target - half:
        return False
    return not (
        position + 1 < len(row) and x[row[position + 1]] - size[row[position + 1]][0] / 2 - GAP_X < target + half
    )


def _separate(row: list[int], x: dict[int, float], size) -> None:
    """Push apart neighbours closer than their half-widths and a gap, keeping the row's centre."""
    if not row:
        return
    centre = sum(x[n] for n in row) / len(row)
    for a, b in pairwise(row):
        least = x[a] + (size[a][0] + size[b][0]) / 2 + GAP_X
        x[b] = max(x[b], least)
    for a, b in zip(row[::-1][1:], row[::-1]):
        most = x[b] - (size[a][0] + size[b][0]) / 2 - GAP_X
        x[a] = min(x[a], most)
    shift = centre - sum(x[n] for n in row) / len(row)
    for n in row:
        x[n] += shift


def _straight(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    from archspec.draw.layout import _simplify

    return _simplify(points)
