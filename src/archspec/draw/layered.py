"""The layout of a draw model: a layered (Sugiyama) layout per block, blocks nested in their parents.

Every macro call, `repeat` and `branch` is a block with its own layered layout, drawn as a frame or,
folded, as one box; so is each branch of two or more rows written straight in a merge (a lane, drawn
without a border). The parent lays a block out as one node. A tensor that enters or leaves a block
does so through a port on the frame's top or bottom border, so an edge never runs through a frame's
interior except to reach its target. Per block:

1. layers: longest path from the block's inputs, the first nodes of a merge's branches in one row (a
   branch reading a cell input stands beside its sibling branches, as the spec writes them);
2. long edges pass each layer between their ends as a dummy node; edges from one tensor share them;
3. order in each layer: spec order, then barycentre sweeps and adjacent swaps, kept only when they cut
   the edge crossings counted between layers (so a series-parallel block keeps the order written);
4. position: every node gets a unit position on a half-integer lattice (priority method: chains
   aligned, merges centred under their inputs, fan-outs centred under their source, long edges
   around the nodes and straight where the rows leave room);
5. edges are orthogonal: straight down, or down to a horizontal track in the gap between two layers,
   across, and down. Each tensor that turns in a gap gets a track of its own, ordered to avoid
   crossings, so two edges of different tensors never share a segment (a dogleg where two swap
   columns).

Pixel geometry is not decided here: `archspec.draw.geometry` turns the plan into coordinates from the
sizes of the boxes, for any folding (a folded frame is a box at the same unit position). The same
arithmetic runs in the browser (`draw/viewer.js`) when a reader folds or unfolds a block, so the
interactive HTML needs no layout code of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain, pairwise

from archspec.draw.model import FRAME, MERGE, DrawModel

SWEEPS = 6  # barycentre sweeps per block (blocks are tens of nodes)
PLACE_SWEEPS = 7  # priority-method sweeps for unit positions (odd: the last one reads downwards)
IN, OUT, ITEM, DUMMY = "in", "out", "item", "dummy"


@dataclass
class Slot:
    """A node of a block's layered grid: an item, a dummy point of long edges, or a port."""

    kind: str  # ITEM, DUMMY, IN (an input port on the top border) or OUT (an output port at the bottom)
    key: int  # the item; for a port or a dummy, the item whose tensor passes there
    row: int = 0
    pos: float = 0.0  # unit position, a multiple of 0.5
    order: float = 0.0  # spec order, for the first ordering


@dataclass
class Piece:
    """One edge's route inside one block: slots in consecutive rows, and the track of each hop."""

    source: int  # the item whose tensor it carries
    slots: list[int]  # indices into Block.slots
    out_pin: int  # which output of the first slot: the source item (frames have one port per tensor)
    in_pin: int  # which input of the last slot: a merge's input index, or the source item for a frame
    # per hop: a track in that gap, -1 when straight down, [track, low track] for a dogleg between them
    tracks: list[int | list[int]] = field(default_factory=list)


@dataclass
class Block:
    frame: int | None  # the frame's item; None for the whole model
    slots: list[Slot] = field(default_factory=list)
    rows: list[list[int]] = field(default_factory=list)  # slot indices per row, left to right
    tracks: list[int] = field(default_factory=list)  # tracks in the gap below each row
    pieces: list[Piece] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)  # tensors entering, by port, left to right
    outputs: list[int] = field(default_factory=list)  # tensors leaving, by port, left to right
    width: float = 1.0  # unit positions spanned (for port fractions seen from the parent)

    def port_fraction(self, kind: str, source: int) -> float:
        """Where the port of `source` sits across the block, from -0.5 (left) to 0.5 (right)."""
        for index in self.rows[0 if kind == IN else -1]:
            slot = self.slots[index]
            if slot.kind == kind and slot.key == source:
                return (slot.pos + 0.5) / self.width - 0.5
        return 0.0


@dataclass
class Plan:
    model: DrawModel
    blocks: dict[int | None, Block]  # by frame item, lane id, or None for the whole model
    container: dict[int, int | None]  # item or lane -> the block it is a node of
    lanes: dict[int, int]  # lane id -> its merge item

    def is_block(self, key: int) -> bool:
        return key in self.blocks


def plan(model: DrawModel) -> Plan:
    """The layered plan of every block of `model`, at full depth (folding changes sizes, not the plan).

    Blocks are the frames, and the lanes: a branch of two or more items written straight in a merge
    (`conv 256 1 bn` beside a call) is laid out on its own, without a border, so a short branch is not
    stretched over the rows of a tall one."""
    items = model.items
    lanes: dict[int, int] = {}
    lane_of: dict[int, int] = {}
    for item in items:
        if item.role == MERGE:
            for branch in _branches(model, item):
                if len(branch) >= 2:
                    lane = len(items) + len(lanes)
                    lanes[lane] = item.id
                    lane_of.update(dict.fromkeys(branch, lane))
    container: dict[int, int | None] = {}
    for item in items:
        found, parent = lane_of.get(item.id), item.parent
        while found is None and parent is not None:
            if items[parent].role == FRAME:
                found = parent
                break
            found, parent = lane_of.get(parent), items[parent].parent
        container[item.id] = found
    for lane, merge in lanes.items():
        container[lane] = container[merge]
    chains: dict[int | None, list[int | None]] = {None: [None]}

    def chain(block: int | None) -> list[int | None]:
        if block not in chains:
            chains[block] = [*chain(container[block]), block]
        return chains[block]

    # Each model edge becomes a local edge in every block it passes: up from its source through the
    # output ports of the blocks around it, across the innermost common block, down through input ports.
    local: dict[int | None, dict[tuple, None]] = {None: {}}
    for key in [*(i.id for i in items if i.role == FRAME), *lanes]:
        local[key] = {}
    merge_pin: dict[int, int] = {}
    for source, target in model.edges:
        pin = -1
        if items[target].role == MERGE:
            pin = merge_pin.get(target, 0)
            merge_pin[target] = pin + 1
        up, down = chain(container[source]), chain(container[target])
        common = 0
        while common < min(len(up), len(down)) and up[common] == down[common]:
            common += 1
        for level in range(common, len(up)):  # inside the blocks around the source
            inner = (ITEM, up[level + 1]) if level + 1 < len(up) else (ITEM, source)
            local[up[level]][(inner, source, (OUT, source), source)] = None
        start = (ITEM, up[common]) if common < len(up) else (ITEM, source)
        end = (ITEM, down[common]) if common < len(down) else (ITEM, target)
        local[up[common - 1]][(start, source, end, source if common < len(down) else pin)] = None
        for level in range(common, len(down)):  # inside the blocks around the target
            inner = (ITEM, down[level + 1]) if level + 1 < len(down) else (ITEM, target)
            local[down[level]][((IN, source), source, inner, source if level + 1 < len(down) else pin)] = None
    members: dict[int | None, list[int]] = {block: [] for block in local}
    for key, block in container.items():
        members[block].append(key)
    result = Plan(model, {}, container, lanes)
    # innermost blocks first: a parent needs its children's port positions to order its rows
    for block in sorted(local, key=lambda b: -len(chain(b))):
        result.blocks[block] = _layout_block(result, block, members[block], list(local[block]))
    return result


def _branches(model: DrawModel, merge) -> list[list[int]]:
    """The children of a merge split into its branches, in input order (an input from outside the block,
    `identity` or `@name`, is an empty branch); none when they do not split that way."""
    graph = model.typed.graph
    merge_node = graph.nodes[merge.row.nodes[-1]]
    children = merge.children
    result: list[list[int]] = []
    start = 0
    for source in merge_node.inputs:
        if source not in merge.row.nodes:
            result.append([])
            continue
        end = next((i for i in range(start, len(children)) if source in model.items[children[i]].row.nodes), None)
        if end is None:
            return []
        result.append(children[start : end + 1])
        start = end + 1
    return result if start == len(children) else []


def _first_node(plan: Plan, key: int) -> float:
    """Where a node comes in spec order: its first IR node (a merge's is its merge node)."""
    if key in plan.lanes:
        return min(_first_node(plan, k) for k, b in plan.container.items() if b == key)
    item = plan.model.items[key]
    return float(item.row.nodes[-1] if item.role == MERGE else item.row.nodes[0])


def _layout_block(plan: Plan, frame: int | None, members: list[int], edges: list[tuple]) -> Block:
    block = Block(frame)
    index: dict[tuple, int] = {}

    def slot(key: tuple, order: float) -> int:
        if key not in index:
            index[key] = len(block.slots)
            block.slots.append(Slot(key[0], key[1], order=order))
        return index[key]

    for member in members:
        slot((ITEM, member), _first_node(plan, member))
    for start, source, end, _ in edges:
        for key in (start, end):
            if key[0] in (IN, OUT):
                order = _first_node(plan, source)
                slot(key, order if key[0] == IN else 1e9 + order)
    links = [(index[start], source, index[end], pin) for start, source, end, pin in edges]
    _assign_rows(block, plan, links)
    _add_dummies(block, links)
    _order_rows(block, plan)
    _place(block, plan)
    _assign_tracks(block, plan)
    block.inputs = [block.slots[i].key for i in block.rows[0] if block.slots[i].kind == IN]
    block.outputs = [block.slots[i].key for i in block.rows[-1] if block.slots[i].kind == OUT]
    return block


def _assign_rows(block: Block, plan: Plan, links) -> None:
    """Longest path from the inputs; then the branches of each merge start in one row, as the spec
    writes them side by side (a branch reading a cell input stands beside its sibling, not above it)."""
    slots = block.slots
    preds: dict[int, list[int]] = {i: [] for i in range(len(slots))}
    succs: dict[int, list[int]] = {i: [] for i in range(len(slots))}
    for a, _, b, _ in links:
        preds[b].append(a)
        succs[a].append(b)
    order = _topological(len(slots), preds, succs, [s.order for s in slots])
    first = 1 if any(s.kind == IN for s in slots) else 0
    least = dict.fromkeys(range(len(slots)), 0)
    row: dict[int, int] = {}

    def longest_path() -> None:
        for i in order:
            if slots[i].kind == IN:
                row[i] = 0
            else:
                row[i] = max(least[i], max((row[p] + 1 for p in preds[i]), default=first))
        last = max((row[i] for i in order if slots[i].kind != OUT), default=0) + 1
        for i in order:
            if slots[i].kind == OUT:
                row[i] = last

    longest_path()
    at = {s.key: i for i, s in enumerate(slots) if s.kind == ITEM}
    for i in order:
        found = slots[i]
        if found.kind != ITEM or plan.is_block(found.key) or plan.model.items[found.key].role != MERGE:
            continue
        children = {at[n] for n in _nodes_within(plan, found.key, block.frame) if n in at}
        heads = [c for c in children if not any(p in children for p in preds[c])]
        top = max((row[h] for h in heads), default=0)
        if any(row[h] < top for h in heads):
            for h in heads:
                least[h] = top
            longest_path()
    used = sorted(set(row.values()))
    renumber = {r: n for n, r in enumerate(used)}
    for i, r in row.items():
        slots[i].row = renumber[r]
    block.rows = [[] for _ in used]
    for i in sorted(range(len(slots)), key=lambda i: slots[i].order):
        block.rows[slots[i].row].append(i)


def _nodes_within(plan: Plan, merge: int, block: int | None) -> set[int]:
    """The nodes of `block` that hold the merge's branches: its descendants there, and its lanes."""
    out, stack = set(), list(plan.model.items[merge].children)
    while stack:
        child = stack.pop()
        out.add(child)
        stack.extend(plan.model.items[child].children)
    out |= {plan.container[i] for i in out if plan.container[i] != block}
    return out


def _topological(count: int, preds, succs, keys) -> list[int]:
    """Kahn's order, ties broken by spec order. A cycle (which lifting edges to blocks could make only in a
    contrived spec) is broken at its earliest node in spec order."""
    import heapq

    waiting = {i: len(preds[i]) for i in range(count)}
    ready = [(keys[i], i) for i in range(count) if not waiting[i]]
    heapq.heapify(ready)
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < count:
        if not ready:
            rest = min((keys[i], i) for i in range(count) if i not in seen)
            ready.append(rest)
            for p in list(preds[rest[1]]):
                if p not in seen:
                    preds[rest[1]].remove(p)
                    succs[p].remove(rest[1])
            waiting[rest[1]] = 0
        _, i = heapq.heappop(ready)
        if i in seen:
            continue
        seen.add(i)
        out.append(i)
        for s in succs[i]:
            waiting[s] -= 1
            if waiting[s] == 0:
                heapq.heappush(ready, (keys[s], s))
    return out


def _add_dummies(block: Block, links) -> None:
    """A piece per local edge; a long one passes each row on a dummy slot shared by its tensor's edges."""
    slots = block.slots
    shared: dict[tuple[int, int, int], int] = {}  # (start slot, out pin, row) -> dummy
    for a, source, b, pin in sorted(links, key=lambda link: slots[link[2]].row):
        path = [a]
        for r in range(slots[a].row + 1, slots[b].row):
            key = (a, source, r)
            if key not in shared:
                shared[key] = len(slots)
                slots.append(Slot(DUMMY, source, r, order=slots[a].order + 0.5))
                block.rows[r].append(shared[key])
            path.append(shared[key])
        block.pieces.append(Piece(source, [*path, b], source, pin))


def _hops(block: Block):
    """(upper slot, lower slot, out pin, in pin) of every distinct hop, by the gap they cross."""
    gaps: list[dict[tuple, None]] = [{} for _ in block.rows]
    for piece in block.pieces:
        path = piece.slots
        for k, (a, b) in enumerate(pairwise(path)):
            out_pin = piece.out_pin if k == 0 else piece.source
            in_pin = piece.in_pin if k == len(path) - 2 else piece.source
            gaps[block.slots[a].row][(a, b, out_pin, in_pin)] = None
    return [list(g) for g in gaps]


def _fraction(block: Block, plan: Plan, slot: int, side: str, pin: int) -> float:
    """Where on its node a hop attaches, from -0.5 to 0.5 of the node's width: frames' ports and
    merges' inputs are spread; everything else attaches at the centre."""
    found = block.slots[slot]
    if found.kind != ITEM:
        return 0.0
    if plan.is_block(found.key):
        return plan.blocks[found.key].port_fraction(side, pin)
    if plan.model.items[found.key].role == MERGE and side == IN and pin >= 0:
        count = len(plan.model.inputs_of(found.key))
        return 0.0 if count < 2 else (pin / (count - 1) - 0.5) * 0.5
    return 0.0


def _order_rows(block: Block, plan: Plan) -> None:
    hops = _hops(block)
    fractions = {}
    for gap in hops:
        for a, b, out_pin, in_pin in gap:
            fractions[(a, OUT, out_pin)] = _fraction(block, plan, a, OUT, out_pin)
            fractions[(b, IN, in_pin)] = _fraction(block, plan, b, IN, in_pin)
    rows = block.rows

    def crossings(r: int, where: dict[int, int]) -> int:
        ends = [(where[a] + fractions[(a, OUT, o)], where[b] + fractions[(b, IN, i)], a) for a, b, o, i in hops[r]]
        count = 0
        for x, (a1, b1, s1) in enumerate(ends):
            for a2, b2, s2 in ends[x + 1 :]:
                if s1 != s2 and (a1 - a2) * (b1 - b2) < 0:
                    count += 1
        return count

    def total() -> int:
        where = {s: p for row in rows for p, s in enumerate(row)}
        return sum(crossings(r, where) for r in range(len(rows) - 1))

    up = {i: [] for i in range(len(block.slots))}
    down = {i: [] for i in range(len(block.slots))}
    for gap in hops:
        for a, b, out_pin, in_pin in gap:
            down[a].append((b, fractions[(b, IN, in_pin)] - fractions[(a, OUT, out_pin)]))
            up[b].append((a, fractions[(a, OUT, out_pin)] - fractions[(b, IN, in_pin)]))
    # for `_transpose`: each edge's far end, its slot and where on the slot it attaches
    far_up = {i: [(a, fractions[(a, OUT, o)]) for a, b, o, _ in chain(*hops) if b == i] for i in up}
    far_down = {i: [(b, fractions[(b, IN, n)]) for a, b, _, n in chain(*hops) if a == i] for i in down}
    best, best_rows = total(), [list(row) for row in rows]
    for sweep in range(SWEEPS):
        if best == 0:
            break
        upward = sweep % 2 == 0  # the first sweep reads the merges' input order, which is the spec's
        order = range(len(rows) - 2, -1, -1) if upward else range(1, len(rows))
        for r in order:
            neighbour_row = rows[r + 1] if upward else rows[r - 1]
            place = {s: p for p, s in enumerate(neighbour_row)}
            links = down if upward else up
            current = {s: p for p, s in enumerate(rows[r])}

            def key(s, place=place, links=links, current=current):
                found = [place[n] + offset for n, offset in links[s] if n in place]
                return sum(found) / len(found) if found else current[s]

            rows[r].sort(key=key)
        _transpose(rows, far_up, far_down)
        now = total()
        if now < best:
            best, best_rows = now, [list(row) for row in rows]
    block.rows[:] = best_rows


def _transpose(rows: list[list[int]], up, down) -> None:
    """Swap neighbours in a row while that removes crossings with the rows above and below. Only the
    edges of the two swapped nodes change order, so only their crossings with each other are counted:
    with u left of v, an edge of u and one of v cross when u's far end lies right of v's (edges from
    one node above, a fan-out, never cross)."""
    where = {s: q for row in rows for q, s in enumerate(row)}

    def between(u: int, v: int) -> int:  # crossings of u's and v's edges, u left of v
        above = sum(1 for a, fa in up[u] for b, fb in up[v] if a != b and where[a] + fa > where[b] + fb)
        return above + sum(1 for a, fa in down[u] for b, fb in down[v] if where[a] + fa > where[b] + fb)

    for _ in range(3):
        improved = False
        for row in rows:
            for p in range(len(row) - 1):
                u, v = row[p], row[p + 1]
                if between(v, u) < between(u, v):
                    row[p], row[p + 1] = v, u
                    where[u], where[v] = p + 1, p
                    improved = True
        if not improved:
            return


def _place(block: Block, plan: Plan) -> None:
    """Unit positions by the priority method: each row, in turn, moves its nodes towards the mean of
    their neighbours in the row before, higher priorities first (merges, then nodes with more links,
    then long edges), pushing only lower-priority nodes, keeping one unit between nodes. A node
    follows the items it reads more than the long edges it reads (a cell stays under the cell before
    it, its skip input runs beside), except a merge, which centres under all its inputs."""
    slots = block.slots
    up: dict[int, list[int]] = {i: [] for i in range(len(slots))}
    down: dict[int, list[int]] = {i: [] for i in range(len(slots))}
    for gap in _hops(block):
        for a, b, _, _ in gap:
            down[a].append(b)
            up[b].append(a)
    merges = {
        i
        for i, s in enumerate(slots)
        if s.kind == ITEM and not plan.is_block(s.key) and plan.model.items[s.key].role == MERGE
    }
    for row in block.rows:
        for p, s in enumerate(row):
            slots[s].pos = round(p - (len(row) - 1) / 2 + 0.25) if len(row) % 2 else p - (len(row) - 1) / 2
        _spread(row, slots)

    def priority(s: int, links) -> float:
        kind = slots[s].kind
        if kind in (IN, OUT):
            return 500.0
        if kind == DUMMY:
            return 1.0
        return (100.0 if s in merges else 10.0) + len(links[s])

    def followed(s: int, links) -> list[int]:
        """The neighbours a node lines up with: all for a merge, else the items (long edges go around)."""
        items = [n for n in links[s] if slots[n].kind != DUMMY]
        return links[s] if s in merges or not items else items

    for sweep in range(PLACE_SWEEPS):
        downward = sweep % 2 == 0
        order = range(1, len(block.rows)) if downward else range(len(block.rows) - 2, -1, -1)
        links = up if downward else down
        for r in order:
            row = block.rows[r]
            wanted = {}
            for s in row:
                if links[s]:
                    found = followed(s, links)
                    wanted[s] = round(2 * sum(slots[n].pos for n in found) / len(found)) / 2
            _centre_runs([s for s in row if slots[s].kind != DUMMY], wanted)
            fixed: set[int] = set()
            for s in sorted(row, key=lambda s: -priority(s, links)):
                if s in wanted:
                    _move(row, row.index(s), wanted[s], slots, fixed)
                fixed.add(s)
    _straighten(block)
    low = min((s.pos for s in slots), default=0.0)
    for s in slots:
        s.pos -= low
    block.width = max((s.pos for s in slots), default=0.0) + 1


def _centre_runs(row: list[int], wanted: dict[int, float]) -> None:
    """Neighbours that want one position (the branches under the node they all read) spread around it,
    one unit apart, so a fan-out is centred under its source instead of starting at it. Long edges are
    left out: they give way to the nodes beside them."""
    start = 0
    while start < len(row):
        end = start
        target = wanted.get(row[start])
        while end + 1 < len(row) and target is not None and wanted.get(row[end + 1]) == target:
            end += 1
        for offset, s in enumerate(row[start : end + 1]):
            if target is not None:
                wanted[s] = target + offset - (end - start) / 2
        start = end + 1


def _straighten(block: Block) -> None:
    """Line up each run of dummies (a long edge) on one position where every row it passes has room,
    so a long edge is one straight vertical run instead of a staircase."""
    slots = block.slots
    where = {s: (r, p) for r, row in enumerate(block.rows) for p, s in enumerate(row)}
    for piece in block.pieces:
        dummies = [s for s in piece.slots if slots[s].kind == DUMMY]
        if len(dummies) < 2:
            continue
        choices = sorted({slots[d].pos for d in dummies}, key=lambda t: sum(abs(slots[d].pos - t) for d in dummies))
        for target in choices:
            if all(_fits(block.rows[where[d][0]], where[d][1], target, slots) for d in dummies):
                for d in dummies:
                    slots[d].pos = target
                break


def _fits(row: list[int], p: int, target: float, slots: list[Slot]) -> bool:
    return (p == 0 or slots[row[p - 1]].pos + 1 <= target) and (
        p + 1 == len(row) or target + 1 <= slots[row[p + 1]].pos
    )


def _spread(row: list[int], slots: list[Slot]) -> None:
    for a, b in pairwise(row):
        slots[b].pos = max(slots[b].pos, slots[a].pos + 1)


def _move(row: list[int], p: int, target: float, slots: list[Slot], fixed: set[int]) -> None:
    """Move row[p] towards `target` as far as fixed nodes allow, pushing the others along."""
    current = slots[row[p]].pos
    if target > current:
        limit = target
        for q in range(p + 1, len(row)):
            if row[q] in fixed:
                limit = min(limit, slots[row[q]].pos - (q - p))
                break
        new = max(current, limit)
        slots[row[p]].pos = new
        for q in range(p + 1, len(row)):
            slots[row[q]].pos = max(slots[row[q]].pos, slots[row[q - 1]].pos + 1)
    elif target < current:
        limit = target
        for q in range(p - 1, -1, -1):
            if row[q] in fixed:
                limit = max(limit, slots[row[q]].pos + (p - q))
                break
        new = min(current, limit)
        slots[row[p]].pos = new
        for q in range(p - 1, -1, -1):
            slots[row[q]].pos = min(slots[row[q]].pos, slots[row[q + 1]].pos - 1)


def _assign_tracks(block: Block, plan: Plan) -> None:
    """A track in each gap for every tensor that turns there, ordered so that few edges cross and no
    edge runs down through another's horizontal segment at the same x. Where two tensors swap columns
    in one gap, no order of their tracks keeps their vertical runs apart: one of them then takes a
    dogleg, across on its track, down at the middle of its span, across on a track of its own at the
    bottom of the gap."""
    slots = block.slots
    hops = _hops(block)
    block.tracks = [0] * len(block.rows)
    track_of: dict[tuple[int, int, int], int] = {}  # (gap, upper slot, out pin) -> track
    dogleg: dict[tuple[int, int, int, int], int] = {}  # (gap, upper slot, out pin, lower slot) -> low track
    for r, gap in enumerate(hops):
        nets: dict[tuple[int, int], dict] = {}
        for a, b, out_pin, in_pin in gap:
            top = (slots[a].pos, _fraction(block, plan, a, OUT, out_pin))
            bottom = (slots[b].pos, _fraction(block, plan, b, IN, in_pin))
            net = nets.setdefault((a, out_pin), {"top": top, "bottoms": [], "lower": []})
            net["bottoms"].append(bottom)
            net["lower"].append(b)
        turning = [key for key, net in nets.items() if not _straight(block, plan, key[0], net)]
        loose = {slots[s].pos for hop in gap for s in hop[:2] if _is_block(block, plan, s)}
        ordered = [turning[i] for i in _order_nets([nets[k] for k in turning], loose)]
        for track, key in enumerate(ordered):
            track_of[(r, *key)] = track
        count = len(ordered)
        for above, key in enumerate(ordered):
            net = nets[key]
            for below in ordered[above + 1 :]:
                rising = nets[below]["top"]
                for bottom, lower in zip(net["bottoms"], net["lower"]):
                    if _may_meet(bottom, rising, loose) and (r, *key, lower) not in dogleg:
                        dogleg[(r, *key, lower)] = count
                        count += 1
        block.tracks[r] = count
    for piece in block.pieces:
        piece.tracks = []
        for k, a in enumerate(piece.slots[:-1]):
            out_pin = piece.out_pin if k == 0 else piece.source
            track = track_of.get((slots[a].row, a, out_pin), -1)
            low = dogleg.get((slots[a].row, a, out_pin, piece.slots[k + 1]))
            piece.tracks.append(track if low is None else [track, low])


def _straight(block: Block, plan: Plan, upper: int, net: dict) -> bool:
    """Whether a net is one vertical line at any size: both ends centred on nodes at one position."""
    if net["top"] != (block.slots[upper].pos, 0.0) or any(b != net["top"] for b in net["bottoms"]):
        return False
    return not any(_is_block(block, plan, s) for s in (upper, *net["lower"]))


def _is_block(block: Block, plan: Plan, slot: int) -> bool:
    found = block.slots[slot]
    return found.kind == ITEM and plan.is_block(found.key)


def _may_meet(bottom: tuple[float, float], top: tuple[float, float], loose: set[float]) -> bool:
    """Whether one net's bottom pin and another's top pin can be drawn at one x: at one fraction of one
    position, or at any fractions in a position where a frame or lane ends a hop (`loose`). A block's port
    lies where its contents put it (folded, at its box's centre), not at its fraction of the unit width,
    so its fraction does not compare with another node's; a merge's, a box's or a dummy's does."""
    return bottom == top or (bottom[0] == top[0] and top[0] in loose)


def _order_nets(nets: list[dict], loose: set[float]) -> list[int]:
    """Top-to-bottom order of the nets turning in one gap. Net A above net B costs a crossing where B's
    top pin lies within A's span and where A's bottom pins lie within B's span; an order that has A's
    vertical run down through B's horizontal at a shared x (A's bottom pin may meet B's top pin, see
    `_may_meet`) is ruled out."""
    if len(nets) < 2:
        return list(range(len(nets)))

    def span(net):
        points = [net["top"], *net["bottoms"]]
        return min(points), max(points)

    spans = [span(n) for n in nets]

    def inside(point, s) -> bool:
        return s[0] < point < s[1]

    def cost(a: int, b: int) -> int:  # a above b
        na, nb = nets[a], nets[b]
        c = inside(nb["top"], spans[a]) + sum(inside(p, spans[b]) for p in na["bottoms"])
        if any(_may_meet(p, nb["top"], loose) for p in na["bottoms"]):  # a's drop and b's rise would share a segment
            c += 1000
        return c

    order: list[int] = []
    for n in range(len(nets)):
        best, best_cost = 0, None
        for place in range(len(order) + 1):
            trial = [*order[:place], n, *order[place:]]
            total = sum(cost(trial[i], trial[j]) for i in range(len(trial)) for j in range(i + 1, len(trial)))
            if best_cost is None or total < best_cost:
                best, best_cost = place, total
        order.insert(best, n)
    return order
