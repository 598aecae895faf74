"""Expanding again only what an edit touched: each top-level statement's expansion is kept as a
`Fragment` (its nodes, scopes, named tensors, work), and the next expansion of the same document replays
it instead of expanding the statement again when nothing it read has changed: the statement itself
(parsed statements are shared between versions, see `parse_recovering`), the macros it called, the
tensors it read, and, if it read the stream's `channels`, the shapes it saw. Node ids are renumbered
when the statements before it made more or fewer nodes. `infer_partial` keeps each fragment's infos
the same way, while the infos flowing into it are equal (an edit whose effect stops at a statement
costs that statement). A statement with an error is always expanded again.

Used by the language server only (`check_spec(..., cache=...)`); a spec compiled once never comes here.
"""

from __future__ import annotations

from dataclasses import replace

from archspec.expand_limits import MAX_NODES, MAX_WORK, UNKNOWN
from archspec.ir import Node


class Fragment:
    """One top-level statement's expansion. (A plain class: a dataclass costs a millisecond to define,
    and every command imports the expander.)"""

    def __init__(self, statement, start: int, scope_start: int, input: int) -> None:
        self.statement = statement  # the syntax node: the same object while its text and first line are
        self.start = start  # id of its first node
        self.end = start  # one past its last node's id
        self.scope_start = scope_start
        self.scopes: list = []  # the expander's scope drafts, for ids scope_start..
        self.input = input  # the stream it read
        self.output = input
        self.work = 0
        self.lookups: dict = {}  # line names it looked up as macros → the `Def` found (None: not a macro)
        # ("read", name, node) / ("define", name, node, span, read before) / ("bind", ...) / ("given", depth, node, name)
        self.names: list = []
        self.stream_shapes: dict = {}  # node id → shape of the nodes before it that it read, when it read `channels`
        self.reads_stream = False
        self.simple = False  # it reads and names no tensor and no stream size: replayed in `_top_level` itself
        self.mapping: dict = {}  # old id → new id of the nodes before it that it reads, while it is replayed
        self.nodes: list = []
        # kept by `infer_partial`
        self.externals: tuple = ()  # ids of the nodes before it that its nodes read
        self.external_infos: tuple | None = None
        self.infos: tuple = ()
        self.infer_errors: tuple = ()
        self.params = 0

    def copy(self, **changes) -> Fragment:
        fragment = object.__new__(Fragment)
        fragment.__dict__.update(self.__dict__, **changes)
        return fragment


class ExpansionMemo:
    """The fragments of a document's last expansion, by statement; and, from the parse of the version
    being expanded, the statements that moved to other lines (see `archspec.parse.StatementCache`)."""

    def __init__(self) -> None:
        self.fragments: dict[int, Fragment] = {}  # by id() of the statement (checked with `is`)
        self.moved: dict[int, object] = {}
        self.lines = None

    def find(self, statement) -> Fragment | None:
        fragment = self.fragments.get(id(statement))
        return fragment if fragment is not None and fragment.statement is statement else None


class Incremental:
    """Mixed into the expander: recording top-level statements as fragments, and replaying them."""

    memo: ExpansionMemo | None = None
    recording: Fragment | None = None

    def _top_level(self, statements, current: int, top) -> int:
        if self.memo is None:
            return self._sequence(statements, current, top)
        kept: dict[int, Fragment] = {}
        fragments = self.memo.fragments
        moved = self.memo.moved
        nodes, scopes, defs = self.nodes, self.scopes, self.defs
        for statement in statements:
            fragment = fragments.get(id(statement))
            if (  # the common case, inline: a line that reads only the stream, in its place, unchanged
                fragment is not None
                and fragment.statement is statement
                and fragment.simple
                and fragment.input == current
                and fragment.start == len(nodes)
                and fragment.scope_start == len(scopes)
                and not self.exhausted
                and self.work + fragment.work <= MAX_WORK
                and all(defs.get(name) is found for name, found in fragment.lookups.items())
            ):
                nodes.extend(fragment.nodes)
                scopes.extend(fragment.scopes)
                self.work += fragment.work
                current = fragment.output
                kept[id(statement)] = fragment
                continue
            if fragment is None and id(statement) in moved:
                fragment = self._moved(fragments.get(id(moved[id(statement)])), moved[id(statement)], statement)
            if fragment is not None and fragment.statement is statement and self._replayable(fragment, current, top):
                fragment = self._replay(fragment, current, top)
            else:
                fragment = self._record(statement, current, top)
            current = fragment.output
            kept[id(statement)] = fragment
        self.fragments = list(kept.values())
        self.memo.fragments = kept
        return current

    # --- recording -----------------------------------------------------------------------------

    def _record(self, statement, current: int, top) -> Fragment | None:
        start, scope_start, work, errors = len(self.nodes), len(self.scopes), self.work, len(self.errors)
        failures, given = self.failures, len(top.names.given)
        fragment = Fragment(statement, start, scope_start, current)
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

    def _mapping(self, fragment: Fragment, current: int, top) -> dict[int, int] | None:
        """Old id → new id of each node before the fragment that it read, or None when one is gone."""

        if (fragment.input == UNKNOWN) != (current == UNKNOWN):
            return None
        mapping = {fragment.input: current}
        for entry in fragment.names:
            if entry[0] == "read":
                _, name, old = entry
                binding = top.names.bound.get(name)
                if binding is None or (old == UNKNOWN) != (binding.node == UNKNOWN):
                    return None
                if mapping.setdefault(old, binding.node) != binding.node:
                    return None
            elif entry[0] == "define":
                _, name, _, _, before = entry
                binding = top.names.bound.get(name)
                if before != (None if binding is None else binding.read):
                    return None
        return mapping

    def _replayable(self, fragment: Fragment, current: int, top) -> bool:

        if self.exhausted or self.work + fragment.work > MAX_WORK:
            return False
        if len(self.nodes) + fragment.end - fragment.start > MAX_NODES:
            return False
        defs, moved = self.defs, self.memo.moved
        for name, found in fragment.lookups.items():
            now = defs.get(name)
            if now is not found and (now is None or moved.get(id(now)) is not found):
                return False
        if not fragment.names and not fragment.stream_shapes:  # most lines: only the stream flows in
            if (fragment.input == UNKNOWN) != (current == UNKNOWN):
                return False
            fragment.mapping = {fragment.input: current}
            return True
        mapping = self._mapping(fragment, current, top)
        if mapping is None:
            return False
        for old, shape in fragment.stream_shapes.items():
            if self._shape_at(mapping.get(old, old)) != shape:
                return False
        fragment.mapping = mapping
        return True

    def _replay(self, fragment: Fragment, current: int, top) -> Fragment:
        mapping = fragment.mapping
        fragment.lookups = {name: self.defs.get(name) for name in fragment.lookups}  # moved defs: the new ones
        shift = len(self.nodes) - fragment.start
        scope_shift = len(self.scopes) - fragment.scope_start
        moved = shift or scope_shift or any(old != new for old, new in mapping.items())
        if not moved and not fragment.names:
            self.nodes.extend(fragment.nodes)
            self.scopes.extend(fragment.scopes)
            self.work += fragment.work
            return fragment
        if moved:
            fragment = self._renumbered(fragment, mapping, shift, scope_shift)
        self.nodes.extend(fragment.nodes)
        self.scopes.extend(fragment.scopes)  # drafts are changed only while their block is expanded
        self.work += fragment.work
        names = top.names
        for entry in fragment.names:
            if entry[0] == "read":
                names.bound[entry[1]].read = True
            elif entry[0] == "define":
                _, name, node, span, _ = entry
                names.replay_define(name, node, span)
            elif entry[0] == "bind":
                _, name, node, span = entry
                names.replay_bind(name, node, span)
            else:
                names.given.append(entry[1:])
        return fragment

    def _moved(self, fragment: Fragment | None, old, statement) -> Fragment | None:
        """The fragment of `old`, a statement now at other lines (`statement`), with its spans moved: its
        nodes' and their macro call sites', its blocks', its names' (and the line numbers a merge's
        branches are described by). Infos have no lines: they are kept."""
        if fragment is None or fragment.statement is not old or fragment.infer_errors:
            return None
        lines = self.memo.lines
        nodes = []
        for n in fragment.nodes:
            attrs = n.attrs
            if "branches" in attrs:
                attrs = {**attrs, "branches": tuple(lines.text(b) for b in attrs["branches"])}
            origins = tuple(replace(o, span=lines.span(o.span)) for o in n.origins)
            nodes.append(Node(n.id, n.kind, attrs, n.inputs, lines.span(n.span), n.scope, origins))
        names = [
            (entry[0], entry[1], entry[2], lines.span(entry[3]), *entry[4:])
            if entry[0] in ("define", "bind")
            else entry
            for entry in fragment.names
        ]
        scopes = [replace(s, span=lines.span(s.span)) for s in fragment.scopes]
        return fragment.copy(statement=statement, nodes=nodes, names=names, scopes=scopes)

    def _renumbered(self, fragment: Fragment, mapping: dict, shift: int, scope_shift: int) -> Fragment:

        def node_id(old: int) -> int:
            if old == UNKNOWN:
                return UNKNOWN
            return old + shift if old >= fragment.start else mapping.get(old, old)

        def scope_id(old):
            return None if old is None else old + scope_shift

        nodes = [
            Node(
                n.id + shift, n.kind, n.attrs, tuple(node_id(i) for i in n.inputs), n.span, scope_id(n.scope), n.origins
            )
            for n in fragment.nodes
        ]
        scopes = [
            replace(
                s,
                parent=scope_id(s.parent),
                node=None if s.node is None else node_id(s.node),
                call=None if s.call is None else _call_renumbered(s.call, node_id, shift),
            )
            for s in fragment.scopes
        ]
        names = []
        for entry in fragment.names:
            if entry[0] == "read":
                names.append(("read", entry[1], node_id(entry[2])))
            elif entry[0] in ("define", "bind"):
                names.append((entry[0], entry[1], node_id(entry[2]), *entry[3:]))
            else:
                names.append(("given", entry[1], node_id(entry[2]), entry[3]))
        return fragment.copy(
            start=fragment.start + shift,
            end=fragment.end + shift,
            scope_start=fragment.scope_start + scope_shift,
            scopes=scopes,
            input=node_id(fragment.input),
            output=node_id(fragment.output),
            names=names,
            stream_shapes={node_id(old): shape for old, shape in fragment.stream_shapes.items()},
            nodes=nodes,
            externals=tuple(node_id(old) for old in fragment.externals),
        )


def _call_renumbered(call, node_id, shift: int):
    """A macro call's record with its node ids moved as the replayed fragment's are."""
    return replace(
        call,
        tensors=tuple((param, node_id(node)) for param, node in call.tensors),
        input=node_id(call.input),
        output=node_id(call.output),
        start=call.start + shift,
    )
