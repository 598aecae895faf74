"""Expanding again only what an edit touched: each top-level statement's expansion is kept as a
`Fragment` (its nodes, scopes, named tensors, work), and the next expansion of the same document reuses
it instead of expanding the statement again when nothing it read has changed: the statement itself
(parsed statements are shared between versions, see `archspec.parse_incremental`), the macros it called,
the tensors it read, and, if it read the stream's `channels`, the shapes it saw.

An edit leaves three runs of statements: those before it, the same objects in the same places; those it
touched; and those after it, the same objects, perhaps a few lines lower. The statements before are taken
whole (their nodes, scopes and work as a slice; their named tensors only when something reads them,
replayed from the last point kept). The touched ones are replayed or expanded one by one. The statements
after are taken whole again when what flows into them is what flowed before up to a renumbering (the
stream and the tensors the touched statements named, of the same shapes where one of them reads the
stream's sizes: a kernel size or a comment edited, a layer line inserted above them): renumbered and
moved to their lines in place, all at once. Otherwise each is replayed on its own. A statement with an
error is always expanded again.

The last version's nodes and scope drafts are changed in place when they are renumbered or moved (a line
inserted at the top of a 10,000-line spec moves thousands; rebuilding them cost ten times more): once
the new version is made nothing reads the old one, and lint, which keeps findings naming nodes, is told
which fragments moved (`ExpansionMemo.moved_keys`).

`infer_partial` keeps each fragment's infos the same way (see `ExpansionMemo.prefix` and `.suffix`).
Used by the language server only (`check_spec(..., cache=...)`); a spec compiled once never comes here.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import replace

from archspec.errors import Span
from archspec.expand_limits import MAX_NODES, MAX_WORK, UNKNOWN
from archspec.expand_names import Binding
from archspec.ir import Origin
from archspec.relocate import LineMap

_KEYS = itertools.count(1)  # fragment keys; 0 stands for the nodes before the first statement


class Fragment:
    """One top-level statement's expansion. (A plain class: a dataclass costs a millisecond to define,
    and every command imports the expander.)"""

    def __init__(self, statement, start: int, scope_start: int, input: int, line: int) -> None:
        self.statement = statement  # the syntax node; None when it failed: then it is never replayed
        self.origin = statement  # the statement it was recorded from, failed or not
        self.key = next(_KEYS)  # kept while it is replayed, moved or renumbered: lint keeps its results by it
        self.line = line  # its statement's first line, at the last expansion
        self.start = start  # id of its first node
        self.end = start  # one past its last node's id
        self.scope_start = scope_start
        self.scopes: list = []  # the expander's scope drafts, for ids scope_start..
        self.input = input  # the stream it read
        self.output = input
        self.work = 0
        self.given_before = 0  # named tensors given in the spec before it (`Names.given`)
        self.lookups: dict = {}  # line names it looked up as macros → the `Def` found (None: not a macro)
        # ("read", name, node, where it was named) / ("define", name, node, span, read before) / ("bind", ...) /
        # ("given", depth, node, name)
        self.names: list = []
        self.stream_shapes: dict = {}  # node id → shape of the nodes before it that it read, when it read `channels`
        self.reads_stream = False
        self.simple = False  # it reads and names no tensor and no stream size: replayed in `_top_level` itself
        self.mapping: dict = {}  # old id → new id of the nodes before it that it reads, while it is replayed
        self.nodes: list = []
        # kept by `infer_partial`
        self.typed_at: int | None = None  # where its infos are in the last expansion's (`ExpansionMemo.infos`)
        self.externals: tuple = ()  # ids of the nodes before it that its nodes read
        self.external_infos: tuple | None = None
        self.infer_errors: tuple = ()
        self.params = 0
        self.known: tuple | None = None  # (external infos, infos) when it was last typed with every info known

    def copy(self, **changes) -> Fragment:
        fragment = object.__new__(Fragment)
        fragment.__dict__.update(self.__dict__, **changes)
        return fragment


class ExpansionMemo:
    """A document's last expansion: its top-level statements and their fragments in order, its nodes,
    scope drafts, named tensors, work and macros; its infos (set by `infer_partial`); from the parse of the
    version being expanded, how its lines moved (`archspec.parse_incremental.StatementCache`). And what
    the last expansion kept, for `infer_partial` and lint."""

    def __init__(self) -> None:
        self.statements: tuple = ()
        self.fragments: list[Fragment] = []
        self.nodes: list = []
        self.scopes: list = []
        self.scope_drafts: list = []  # `scopes` as the graph's `Scope`s were built from them
        self.scope_objects: tuple = ()
        self.bound: dict | None = None  # the top level's named tensors at the end
        self.names_kept: tuple[int, dict] | None = None  # (n, the named tensors after the first n statements)
        self.given: list | None = None
        self.graph_names: tuple[list, tuple] | None = None  # (given, Names.graph_names())
        self.work = 0
        self.defs: dict = {}
        self.failed: list[int] = []  # indices in `fragments` of those that failed
        self.shape_readers: list[int] = []  # indices in `fragments` of those that read the stream's sizes
        self.initial: tuple | None = None  # the expander's state before the first top-level statement
        self.reached: int | None = None  # the output, when the last expansion checked every layer reaches it
        self.infos: tuple | None = None  # the last expansion's infos, once typed
        self.line_map = LineMap()  # last version's line → this version's
        self.moved: dict[int, object] = {}  # id() of a `def` rewritten at new lines → the last version's
        self.place = lambda statement, line=None: statement  # a statement of the parse, its spans at `line`
        self.rewritten: list = []  # (statement, the same at its place) since the last expansion
        # what the last expansion kept: fragments[:prefix] are the version before's, in their places, and
        # from suffix[0] on they are the version before's from suffix[1] on, renumbered by suffix[2]
        self.prefix = 0
        self.suffix: tuple | None = None
        self.removed: list[Fragment] = []  # fragments of the version before that are gone
        # keys of the fragments lint must check again: those expanded anew, gone, reading other nodes than
        # they did, or whose nodes have other readers (set by the expander; `retyped` by `infer_partial`)
        self.changed: set = set()
        self.retyped: set = set()
        self.moved_keys: set = set()  # keys of the fragments whose nodes were renumbered or moved in place
        self.went_dark: set = set()  # keys of fragments whose every info became unknown (lint keeps their results)
        self.came_back: set = set()  # ... and of those whose infos came back as they were before
        self.recorded: list[Fragment] = []
        self.generation = object()  # replaced when what lint must check again was dropped


class Incremental:
    """Mixed into the expander: recording top-level statements as fragments, and reusing them."""

    memo: ExpansionMemo | None = None
    recording: Fragment | None = None
    same_wiring = False  # the nodes read what they read in the last expansion (see `_reaches_as_before`)
    reached_before: int | None = None

    def _top_level(self, statements, current: int, top) -> int:
        memo = self.memo
        if memo is None:
            return self._sequence(statements, current, top)
        if memo.rewritten:
            _rewrite(memo)
        old, old_statements = memo.fragments, memo.statements
        self.placed = list(statements)  # with the statements read at their place during this expansion
        n, m = len(statements), len(old_statements)
        limit = min(n, m)
        # the statements before the edit, the same objects on the same lines; and those after it, the same
        # objects, all on lines that moved by as many lines or none
        first_moved, last_moved = memo.line_map.bounds()
        same = 0
        while same < limit and statements[same] is old_statements[same] and old[same].line < first_moved:
            same += 1
        after = 0
        while (
            after < limit - same
            and statements[n - 1 - after] is old_statements[m - 1 - after]
            and old[m - 1 - after].line > last_moved
        ):
            after += 1
        names = top.names
        initial = (list(self.nodes), current, dict(names.bound), list(names.given), self.work, len(self.scopes))
        same_defs = len(self.defs) == len(memo.defs) and all(memo.defs.get(k) is d for k, d in self.defs.items())
        fragments = self.fragments = []
        self.recorded, self.changed = [], set()  # fragments expanded anew; keys of those lint must check again
        self.transformed = False  # a fragment was renumbered in place before the statements after
        failed, shape_readers = [], []
        prefix = 0
        if same_defs and initial == memo.initial and not self.failed:
            prefix = min(same, memo.failed[0] if memo.failed else m)
        memo.initial = initial
        if memo.names_kept is not None and memo.names_kept[0] > prefix:  # statements before it changed
            memo.names_kept = None
        if prefix:
            current = self._take_prefix(old, prefix, top)
        for index in range(prefix, n - after):
            if index < same:
                fragment = old[index]  # the same statement in the same place
            else:
                if index == max(prefix, same):
                    window = {id(f.origin): f for f in old[same : m - after]}
                fragment = window.get(id(statements[index]))
            current = self._one(index, statements[index], fragment, current, top, index if index < same else None)
            if self.fragments[-1].statement is None:
                failed.append(index)
            if self.fragments[-1].stream_shapes:
                shape_readers.append(index)
        suffix = None
        self.same_wiring = False
        if after:
            renumbering = self._in_sync(old, m - after, prefix, current, same_defs)
            if renumbering is not None:
                begin, end = renumbering.begin, len(self.nodes)
                self.same_wiring = (
                    prefix > 0
                    and not renumbering
                    and not self.transformed  # the last version's nodes there were changed in place
                    and all(a.inputs == b.inputs for a, b in zip(self.nodes[begin:end], memo.nodes[begin:end]))
                )
                removed = self._removed(old, prefix, m - after)  # before the statements after move in place
                self._take_suffix(old, m - after, top, renumbering)
                suffix = (n - after, m - after, renumbering)
                shape_readers += [i + n - m for i in memo.shape_readers if i >= m - after]
                current = fragments[-1].output
            else:
                for index in range(n - after, n):
                    position = index - n + m
                    current = self._one(index, statements[index], old[position], current, top, position)
                    if fragments[-1].statement is None:
                        failed.append(index)
                    if fragments[-1].stream_shapes:
                        shape_readers.append(index)
        if suffix is None:
            removed = self._removed(old, prefix, m)
        for fragment in self.recorded:  # whose nodes now have other readers: those the new ones read
            self.changed.update(_owner(fragments, i)[0] for i in _reads(fragment))
        self.changed.update(f.key for f in removed)
        self.changed.update(f.key for f in self.recorded)
        # kept until lint reads them (it may skip a version that a newer one made stale)
        memo.changed |= self.changed
        memo.removed += removed
        memo.recorded += self.recorded
        if len(memo.recorded) + len(memo.removed) > MAX_NODES:  # never read: lint starts over
            memo.changed, memo.removed, memo.recorded = set(), [], []
            memo.generation = object()
        memo.statements, memo.fragments, memo.nodes, memo.scopes = self.placed, fragments, self.nodes, self.scopes
        memo.bound, memo.given, memo.work = names.bound, names.given, self.work
        memo.defs, memo.prefix, memo.suffix = dict(self.defs), prefix, suffix
        memo.failed = [i for i in memo.failed if i < prefix] + failed
        memo.shape_readers = [i for i in memo.shape_readers if i < prefix] + shape_readers
        self.reached_before, memo.reached = memo.reached, None  # until checked again, or known unchanged
        return current

    def _one(self, index: int, statement, fragment: Fragment | None, current: int, top, position=None) -> int:
        """One top-level statement: its fragment of the last expansion (`position` in its list, when known)
        replayed, renumbered and moved to its lines, when nothing it read changed; else the statement
        expanded and recorded."""
        given = len(top.names.given)
        if fragment is not None and fragment.origin is not statement:
            fragment = None
        line = None if fragment is None else self.memo.line_map(fragment.line)  # where the statement is now
        moves = fragment is not None and self._moves(fragment)
        if (
            fragment is not None
            and fragment.statement is statement
            and not (moves and fragment.infer_errors)  # errors of inference are found again in place
            and self._replayable(fragment, current, top, moves)
        ):
            before = fragment
            fragment = self._replay(fragment, current, top, moves)
            self._note_rewiring(before, position)
        else:
            # spans read by a new expansion must be at their place
            statement = self.placed[index] = self.memo.place(statement, line)
            fragment = self._record(statement, current, top)
            self.recorded.append(fragment)
        fragment.given_before = given
        self.fragments.append(fragment)
        return fragment.output

    def _reaches_as_before(self, output: int) -> bool:
        """Whether every layer reaches the output as in the last expansion, which was checked: the same
        output, and the edit only renamed or re-parametrized layers (each node reads what it read)."""
        if self.memo is None or not self.same_wiring or self.reached_before != output:
            return False
        self.memo.reached = output
        return True

    def _reached(self, output: int) -> None:
        if self.memo is not None:
            self.memo.reached = output

    # --- whole runs of statements --------------------------------------------------------------

    def _take_prefix(self, old: list[Fragment], count: int, top) -> int:
        """The first `count` statements, unchanged: their nodes, scopes and work as they were; their named
        tensors replayed only when something reads the names."""
        memo = self.memo
        end = old[count].start if count < len(old) else len(memo.nodes)
        self.nodes.extend(memo.nodes[len(self.nodes) : end])
        scope_end = old[count].scope_start if count < len(old) else len(memo.scopes)
        self.scopes.extend(memo.scopes[len(self.scopes) : scope_end])
        self.work += sum(f.work for f in old[:count])
        names = top.names
        given_end = old[count].given_before if count < len(old) else len(memo.given)
        names.given.extend(memo.given[len(names.given) : given_end])
        before = names.bound
        names.bound = None
        names.restore = lambda: self._named_before(before, old, count)
        if memo.infos is not None:
            self._stream_infos = list(memo.infos[:end])
        self.fragments.extend(old[:count])
        return old[count - 1].output

    def _named_before(self, before: dict, old: list[Fragment], count: int) -> dict:
        """The top level's named tensors after its first `count` statements (replayed from the nearest
        earlier point where they were kept: typing goes on near the last edit)."""
        memo = self.memo
        start, bound = 0, before
        if memo.names_kept is not None and memo.names_kept[0] <= count:
            start, bound = memo.names_kept
        bound = _named_after(bound, old[start:count])
        memo.names_kept = (count, dict(bound))  # a snapshot: bindings are replaced, never changed
        return bound

    def _in_sync(self, old: list[Fragment], first: int, prefix: int, current: int, same_defs: bool):
        """Whether the statements from `old[first]` on see what they saw in the last expansion, up to a
        renumbering: the same macros, the stream and named tensors of the edited statements made by them as
        before (perhaps other nodes; of the same shapes where one of them reads the stream's sizes), and no
        error among them. Returns the renumbering (`_Renumbering`), or None."""
        memo = self.memo
        start = old[first]
        if not same_defs or self.exhausted or (memo.failed and memo.failed[-1] >= first) or memo.infos is None:
            return None
        begin = self.fragments[prefix].start if len(self.fragments) > prefix else len(self.nodes)
        if begin != (old[prefix].start if prefix < first else start.start):
            return None
        visible: dict[int, int] = {}  # an edited statement's node they can read → its node now

        def same(was: int, now: int) -> bool:
            if was < begin and was != UNKNOWN:
                return was == now
            if begin <= was < start.start or was == UNKNOWN:
                return visible.setdefault(was, now) == now
            return False

        if not same(start.input, current):
            return None
        then = [entry for f in old[prefix:first] for entry in f.names]
        now = [entry for f in self.fragments[prefix:] for entry in f.names]
        if len(then) != len(now):
            return None
        # a merge below describes a branch it reads by the line naming it: that line moved as they did
        moves = self._moves(start)
        at = _span_mover(memo.line_map) if moves else None
        for a, b in zip(then, now):
            if a[0] != b[0] or a[1] != b[1] or not same(a[2], b[2]):
                return None
            if a[0] == "given":
                if a[3] != b[3]:
                    return None
            elif (a[3] if at is None else at(a[3])) != b[3] or a[4:] != b[4:]:
                return None
        infos = memo.infos
        if memo.shape_readers and memo.shape_readers[-1] >= first:  # some read the sizes flowing in
            for was, node in visible.items():
                before = infos[was] if was != UNKNOWN else None
                if self._shape_at(node) != (before.shape if before is not None else None):
                    return None
        if moves and any(f.infer_errors for f in old[first:]):
            return None
        work = sum(f.work for f in old[first:])
        if self.work + work > MAX_WORK or len(self.nodes) + len(memo.nodes) - start.start > MAX_NODES:
            return None
        return _Renumbering(begin, start.start, len(self.nodes) - start.start, visible)

    def _take_suffix(self, old: list[Fragment], first: int, top, renumbering: _Renumbering) -> None:
        """The statements from `old[first]` on, as they were (renumbered, and moved to their lines when
        lines were inserted or deleted above them), and the named tensors as the last expansion left them."""
        memo = self.memo
        names = top.names
        rest = old[first:]
        moves, start = self._moves(rest[0]), rest[0]
        scope_shift = len(self.scopes) - start.scope_start
        if not renumbering and not scope_shift and moves:  # lines inserted or deleted above them: the usual
            self._move_all(rest)
            self.nodes.extend(memo.nodes[start.start :])
            self.scopes.extend(memo.scopes[start.scope_start :])
            at = _span_mover(memo.line_map)
            bound = {
                name: b if at(b.span) is b.span else Binding(b.node, at(b.span), b.read, b.parameter)
                for name, b in memo.bound.items()
            }
            names.given.extend(memo.given[len(names.given) :])
        elif renumbering or scope_shift or moves:
            lines = memo.line_map if moves else None
            shift, mapping = renumbering.shift, renumbering if renumbering else {}
            nodes, scopes = memo.nodes[start.start :], memo.scopes[start.scope_start :]
            self._transform_all(rest, mapping, shift, scope_shift, lines)
            self.nodes.extend(nodes)  # the same objects, renumbered
            self.scopes.extend(scopes)
            at = _span_mover(lines) or (lambda span: span)
            node = renumbering.get
            bound = {
                name: Binding(node(b.node, b.node), at(b.span), b.read, b.parameter) for name, b in memo.bound.items()
            }
            names.given.extend((depth, node(i, i), name) for depth, i, name in memo.given[start.given_before :])
        else:
            self.nodes.extend(memo.nodes[start.start :])
            self.scopes.extend(memo.scopes[start.scope_start :])
            bound = memo.bound
            names.given.extend(memo.given[len(names.given) :])
        self.work += sum(f.work for f in rest)
        names.bound = bound
        self.fragments.extend(rest)

    # --- recording -----------------------------------------------------------------------------

    def _record(self, statement, current: int, top) -> Fragment | None:
        start, scope_start, work, errors = len(self.nodes), len(self.scopes), self.work, len(self.errors)
        failures, given = self.failures, len(top.names.given)
        fragment = Fragment(statement, start, scope_start, current, statement.line)
        self.recording, top.names.log = fragment, fragment.names
        try:
            fragment.output = self._recovering(statement, current, top)
        finally:
            self.recording, top.names.log = None, None
        fragment.end, fragment.work = len(self.nodes), self.work - work
        fragment.nodes = self.nodes[start:]
        fragment.scopes = self.scopes[scope_start:]
        fragment.names.extend(("given", *entry) for entry in top.names.given[given:])
        if fragment.reads_stream:  # its expansion depends on the shapes flowing in
            mapping = self._mapping(fragment, current, top) or {}
            fragment.stream_shapes = {node: self._shape_at(node) for node in mapping.values()}
        fragment.simple = not fragment.names and not fragment.reads_stream
        if len(self.errors) > errors or self.failures > failures or self.exhausted:
            fragment.statement = None  # typed in this run, never replayed: its errors are found again
        return fragment

    def _note_lookup(self, name: str) -> None:
        if self.recording is not None:
            self.recording.lookups[name] = self.defs.get(name)

    def _note_stream_read(self) -> None:
        if self.recording is not None:
            self.recording.reads_stream = True

    # --- replaying -----------------------------------------------------------------------------

    def _mapping(self, fragment: Fragment, current: int, top, moves: bool = False) -> dict[int, int] | None:
        """Old id → new id of each node before the fragment that it read, or None when one is gone. A
        fragment that read no stream size reads an unknown tensor as it read a known one."""
        lines = self.memo.line_map if moves else None
        if fragment.reads_stream and (fragment.input == UNKNOWN) != (current == UNKNOWN):
            return None
        mapping = {fragment.input: current}
        for entry in fragment.names:
            if entry[0] == "read":
                _, name, old, span = entry
                binding = top.names.bound.get(name)
                if binding is None or (fragment.reads_stream and (old == UNKNOWN) != (binding.node == UNKNOWN)):
                    return None
                if binding.span != (span if lines is None else lines.span(span)):
                    return None  # a merge describes its branch by the line that names it
                if mapping.setdefault(old, binding.node) != binding.node:
                    return None
            elif entry[0] == "define":
                _, name, _, _, before = entry
                binding = top.names.bound.get(name)
                if before != (None if binding is None else binding.read):
                    return None
        return mapping

    def _replayable(self, fragment: Fragment, current: int, top, moves: bool = False) -> bool:
        if self.exhausted or self.work + fragment.work > MAX_WORK:
            return False
        if len(self.nodes) + fragment.end - fragment.start > MAX_NODES:
            return False
        defs, moved = self.defs, self.memo.moved
        for name, found in fragment.lookups.items():
            now = defs.get(name)
            if now is not found and (now is None or moved.get(id(now)) is not found):
                return False
        if not fragment.names and not fragment.reads_stream:  # most lines: only the stream flows in
            fragment.mapping = {fragment.input: current}
            return True
        mapping = self._mapping(fragment, current, top, moves)
        if mapping is None:
            return False
        for old, shape in fragment.stream_shapes.items():
            if self._shape_at(mapping.get(old, old)) != shape:
                return False
        fragment.mapping = mapping
        return True

    def _replay(self, fragment: Fragment, current: int, top, moves: bool = False) -> Fragment:
        mapping = fragment.mapping
        if any(found is not None for found in fragment.lookups.values()):
            fragment.lookups = {name: self.defs.get(name) for name in fragment.lookups}  # moved defs: the new ones
        shift = len(self.nodes) - fragment.start
        scope_shift = len(self.scopes) - fragment.scope_start
        renumbered = shift or scope_shift or any(old != new for old, new in mapping.items())
        if renumbered or moves:
            fragment = self._transformed(fragment, mapping, shift, scope_shift, self.memo.line_map if moves else None)
            self.transformed = self.transformed or bool(renumbered)
        self.nodes.extend(fragment.nodes)
        self.scopes.extend(fragment.scopes)  # drafts are changed only while their block is expanded
        self.work += fragment.work
        if fragment.names:
            names = top.names
            for entry in fragment.names:
                if entry[0] == "read":
                    names.replay_read(entry[1])
                elif entry[0] == "define":
                    _, name, node, span, _ = entry
                    names.replay_define(name, node, span)
                elif entry[0] == "bind":
                    _, name, node, span = entry
                    names.replay_bind(name, node, span)
                else:
                    names.given.append(entry[1:])
        return fragment

    def _removed(self, old: list[Fragment], prefix: int, end: int) -> list[Fragment]:
        """The last expansion's fragments from `prefix` to `end` that this one has not kept; those whose
        nodes they read have a reader less (lint checks them again)."""
        kept = {f.key for f in self.fragments[prefix:]}
        removed = [f for f in old[prefix:end] if f.key not in kept]
        for fragment in removed:
            self.changed.update(_owner(old, i)[0] for i in _reads(fragment))
        return removed

    def _note_rewiring(self, fragment: Fragment, position: int | None) -> None:
        """A replayed fragment that reads other nodes than it did (a statement inserted above it, a name
        given again): it, and the fragments of the nodes it read and reads, are checked again by lint.
        (`position`: where it was in the last expansion's list, when known: most statements read the
        stream of the statement before, and that is found without a search.)"""
        old, new = self.memo.fragments, self.fragments
        for was, now in fragment.mapping.items():
            if was == UNKNOWN or now == UNKNOWN:
                if was != now:
                    self.changed.add(fragment.key)
                    self.changed.add(_owner(old, was)[0] if was != UNKNOWN else _owner(new, now)[0])
                continue
            before = old[position - 1] if position else None
            after = new[-1] if new else None
            if (
                before is not None
                and after is not None
                and before.key == after.key
                and before.start <= was < before.end
                and after.start <= now < after.end
                and was - before.start == now - after.start
            ):
                continue
            before, after = _owner(old, was), _owner(new, now)
            if before != after:
                self.changed.update((fragment.key, before[0], after[0]))

    def _moves(self, fragment: Fragment) -> bool:
        """Whether any span of the fragment is on a line that moved since the last expansion: its own
        statement's, or a macro's it expanded."""
        memo = self.memo
        if not memo.line_map:
            return False
        if memo.line_map(fragment.line) != fragment.line:
            return True
        moved = memo.moved
        return bool(moved) and any(
            found is not None and moved.get(id(self.defs.get(name))) is found
            for name, found in fragment.lookups.items()
        )

    def _move_all(self, fragments: list[Fragment]) -> None:
        """Move the statements after an edit to their lines, in place (`_transformed` without the
        renumbering, for thousands of them at once: their fragments are not read as the last version's)."""
        lines = self.memo.line_map
        at, text, put = _span_mover(lines), lines.text, object.__setattr__
        for fragment in fragments:
            for n in fragment.nodes:
                put(n, "span", at(n.span))
                if n.origins:
                    put(n, "origins", tuple([Origin(o.call, at(o.span)) for o in n.origins]))
                if "branches" in n.attrs:
                    put(n, "attrs", {**n.attrs, "branches": tuple([text(b) for b in n.attrs["branches"]])})
            for draft in fragment.scopes:
                draft.span = at(draft.span)
            if fragment.names:
                fragment.names = [
                    entry if entry[0] == "given" else (entry[0], entry[1], entry[2], at(entry[3]), *entry[4:])
                    for entry in fragment.names
                ]
            fragment.line = lines(fragment.line)
        self.memo.moved_keys.update(f.key for f in fragments)

    def _transformed(
        self, fragment: Fragment, mapping: dict, shift: int, scope_shift: int, lines, in_place: bool = False
    ) -> Fragment:
        """The fragment renumbered (its nodes `shift` later, its scopes `scope_shift` later, the nodes
        before it that it read as `mapping` says) and, with a line map, its spans moved: its nodes' and
        their macro call sites', its blocks', its names' (and the line numbers a merge's branches are
        described by).

        Its nodes and scope drafts are changed in place, not rebuilt: a line inserted at the top of a
        10,000-line spec moves thousands, and the last version's graph is not read again once this one is
        made. (Lint, which keeps findings naming nodes, is told which fragments moved: `moved_keys`.)
        The fragment itself is a copy (the last version's list of them is searched by node id while the
        statements are replayed one by one), or, `in_place`, the same (the statements after an edit, last,
        all at once: `_transform_all`)."""
        copy = fragment if in_place else fragment.copy()
        self._transform_all([copy], mapping, shift, scope_shift, lines)
        return copy

    def _transform_all(self, fragments: list[Fragment], mapping, shift: int, scope_shift: int, lines) -> None:
        """`_transformed` of each of `fragments`, in place (the same shift and mapping for all)."""
        at = _span_mover(lines)
        text = lines.text if lines is not None else None
        put = object.__setattr__  # frozen dataclasses, changed as their __init__ sets them
        renumber = bool(shift or mapping)
        get = mapping.get
        reads_known = get(UNKNOWN, UNKNOWN) != UNKNOWN  # what was read unknown is known now
        for fragment in fragments:
            start = fragment.start

            def node_id(old: int) -> int:  # the unknown stream (-1) too, when a known one flows in now
                return old + shift if old >= start else get(old, old)  # noqa: B023 (called in this iteration)

            for n in fragment.nodes:
                if renumber:
                    put(n, "id", n.id + shift)
                    inputs = n.inputs
                    if len(inputs) == 1:
                        i = inputs[0]
                        put(n, "inputs", (i + shift,) if i >= start else (get(i, i),))
                    elif inputs:
                        put(n, "inputs", tuple([node_id(i) for i in inputs]))
                if scope_shift and n.scope is not None:
                    put(n, "scope", n.scope + scope_shift)
                if at is not None:
                    put(n, "span", at(n.span))
                    if n.origins:
                        put(n, "origins", tuple([Origin(o.call, at(o.span)) for o in n.origins]))
                    if "branches" in n.attrs:
                        put(n, "attrs", {**n.attrs, "branches": tuple([text(b) for b in n.attrs["branches"]])})
            for draft in fragment.scopes:
                if scope_shift and draft.parent is not None:
                    draft.parent += scope_shift
                if renumber and draft.node is not None:
                    draft.node = node_id(draft.node)
                if renumber and draft.call is not None:  # the node ids of a macro call's record
                    draft.call = _call_renumbered(draft.call, node_id, shift)
                if at is not None:
                    draft.span = at(draft.span)
            if fragment.names and (renumber or at is not None):
                fragment.names = [
                    ("given", entry[1], node_id(entry[2]), entry[3])
                    if entry[0] == "given"
                    else (entry[0], entry[1], node_id(entry[2]), entry[3] if at is None else at(entry[3]), *entry[4:])
                    for entry in fragment.names
                ]
            read_unknown = reads_known and (
                fragment.input == UNKNOWN or any(e[0] == "read" and e[2] == UNKNOWN for e in fragment.names)
            )
            fragment.start, fragment.end = start + shift, fragment.end + shift
            fragment.scope_start += scope_shift
            if lines is not None:
                fragment.line = lines(fragment.line)
            if renumber:
                fragment.input, fragment.output = node_id(fragment.input), node_id(fragment.output)
                if fragment.stream_shapes:
                    fragment.stream_shapes = {node_id(old): shape for old, shape in fragment.stream_shapes.items()}
                fragment.externals = tuple([node_id(old) for old in fragment.externals])
                if read_unknown or UNKNOWN in fragment.externals:  # what it reads became (un)known
                    fragment.externals, fragment.external_infos, fragment.known = (), None, None
        self.memo.moved_keys.update(f.key for f in fragments)

    # --- what the graph is built from ------------------------------------------------------------

    def _graph_parts(self, top):
        """The graph's scopes and named tensors: those of the last expansion where nothing changed."""
        from archspec.ir import Scope

        names = top.names
        memo = self.memo
        if memo is None:
            scopes = tuple(
                Scope(i, s.parent, s.kind, s.label, s.span, s.node, s.call) for i, s in enumerate(self.scopes)
            )
            return scopes, names.graph_names()
        old_drafts, old_scopes = memo.scope_drafts, memo.scope_objects
        scopes = tuple(
            old_scopes[i]
            if i < len(old_drafts)
            and s is old_drafts[i]
            and (old_scopes[i].parent, old_scopes[i].span, old_scopes[i].node) == (s.parent, s.span, s.node)
            and old_scopes[i].call is s.call
            else Scope(i, s.parent, s.kind, s.label, s.span, s.node, s.call)
            for i, s in enumerate(self.scopes)
        )
        memo.scope_drafts, memo.scope_objects = list(self.scopes), scopes
        given = names.given
        if memo.graph_names is not None and memo.graph_names[0] == given:
            graph_names = memo.graph_names[1]
        else:
            graph_names = names.graph_names()
        memo.graph_names = (list(given), graph_names)
        return scopes, graph_names


def _call_renumbered(call, node_id, shift: int):
    """A macro call's record with its node ids moved as the replayed fragment's are."""
    return replace(
        call,
        tensors=tuple((param, node_id(node)) for param, node in call.tensors),
        input=node_id(call.input),
        output=node_id(call.output),
        start=call.start + shift,
    )


class _Renumbering:
    """Old node id → new id for the statements after an edit: theirs `shift` later, the nodes of the edited
    statements they can read as `visible` says, those before unchanged. False when nothing changes."""

    __slots__ = ("begin", "old_start", "shift", "visible")

    def __init__(self, begin: int, old_start: int, shift: int, visible: dict[int, int]) -> None:
        self.begin, self.old_start, self.shift, self.visible = begin, old_start, shift, visible

    def get(self, old: int, default: int | None = None) -> int:
        if old >= self.old_start:
            return old + self.shift
        if old >= self.begin or old == UNKNOWN:
            return self.visible.get(old, old)
        return old

    def __bool__(self) -> bool:
        return bool(self.shift) or any(was != now for was, now in self.visible.items())


def _span_mover(lines: LineMap | None):
    """A function moving a span as `lines` says (a new span only where its line moves), or None."""
    if lines is None:
        return None
    tail_from, delta, moved = lines.tail_from, lines.tail_delta, lines.moved
    new, put = object.__new__, object.__setattr__

    def at(span: Span) -> Span:
        line = span.line
        if delta and line >= tail_from:
            line += delta
        else:
            line = moved.get(line)
            if line is None:
                return span
        moved_span = new(Span)
        put(moved_span, "line", line)
        put(moved_span, "column", span.column)
        put(moved_span, "end_column", span.end_column)
        return moved_span

    return at


def _start(fragment: Fragment) -> int:
    return fragment.start


def _owner(fragments: list[Fragment], node: int) -> tuple[int | None, int]:
    """Which fragment of `fragments` (in order) holds node `node`, and where in it: (key, offset). Key 0
    stands for the nodes before the first fragment (`input`)."""
    index = bisect.bisect_right(fragments, node, key=_start) - 1
    if index < 0:
        return 0, node
    fragment = fragments[index]
    return (fragment.key, node - fragment.start) if node < fragment.end else (None, node)


def _reads(fragment: Fragment, unknown: bool = False) -> set[int]:
    """The nodes before a fragment that it reads: its stream and the named tensors it reads (and, with
    `unknown`, `UNKNOWN` when it reads an unknown one)."""
    found = {entry[2] for entry in fragment.names if entry[0] == "read"}
    found.add(fragment.input)
    if not unknown:
        found.discard(UNKNOWN)
    return found


def _rewrite(memo: ExpansionMemo) -> None:
    """Statements the parse has rewritten at their place since the last expansion (for a reader of the
    whole syntax tree): their fragments are theirs."""
    position = {id(s): i for i, s in enumerate(memo.statements)}
    statements = list(memo.statements)
    for was, now in memo.rewritten:
        index = position.get(id(was))
        if index is not None:
            statements[index] = now
            fragment = memo.fragments[index]
            statement = now if fragment.statement is was else fragment.statement
            memo.fragments[index] = fragment.copy(statement=statement, origin=now)
    memo.statements = statements
    memo.rewritten.clear()


def _named_after(before: dict, fragments: list[Fragment]) -> dict:
    """The top level's named tensors after `fragments`, from those before them: their log replayed."""
    bound = dict(before)
    for fragment in fragments:
        for entry in fragment.names:
            kind = entry[0]
            if kind == "read":
                binding = bound[entry[1]]
                if not binding.read:
                    bound[entry[1]] = Binding(binding.node, binding.span, True, binding.parameter)
            elif kind == "define":
                bound[entry[1]] = Binding(entry[2], entry[3])
            elif kind == "bind":
                bound[entry[1]] = Binding(entry[2], entry[3], read=True)
    return bound
