"""Lint kept between versions of a document, as the language server lints at each keystroke.

The rules that judge a layer where it is (`Rule.check_node`) are run one top-level statement at a time,
and what each statement's layers got is kept with the statements whose layers the rules read there
(through the context: a layer's input, its consumers, the other expansions of its word). At the next
version only the statements the expansion marked (expanded anew, gone, reading other nodes than they
did, or whose nodes have other readers: `ExpansionMemo.changed`), those whose infos changed
(`ExpansionMemo.retyped`), and those that read any of these are checked again. The rules that judge the
network as a whole run each time: each looks at the output or stops at its first clue. The findings are
those `lint_compiled` (or, on a spec with errors, `lint_known`) gives for the same text: a test edits
every template at random and compares.
"""

from __future__ import annotations

import bisect
from collections import Counter
from functools import cached_property

from archspec.infer import TypedGraph
from archspec.lint.engine import (
    RULES,
    Context,
    Finding,
    Settings,
    Violation,
    _finding,
    _suppressed,
    index_statement,
    usual_activation,
)
from archspec.source import SourceText


class _Record:
    """What the rules found at one fragment's layers, and what they read elsewhere."""

    __slots__ = ("dormant", "macros", "reads", "stale", "usual", "violations")

    def __init__(self) -> None:
        self.dormant = False  # its fragment is unknown: kept aside, left out of the findings
        self.stale = False  # something it read changed while it was kept aside
        self.violations: list[tuple[str, Violation]] = []  # (code, violation), in node order
        self.reads: set[int] = set()  # keys of the other fragments the rules read
        self.macros: set[str] = set()  # macros whose expansions were counted
        self.usual: str | None = None  # the usual activation it named, if any


class LintCache:
    """A document's per-fragment lint results between versions (the language server keeps one beside the
    document's `archspec.compile.CheckCache`)."""

    def __init__(self) -> None:
        self.codes: list[str] | None = None  # the per-layer rules the records hold
        self.records: dict[int, _Record] = {}
        self.readers: dict[int, set[int]] = {}  # key → keys whose records read that fragment
        self.macro_readers: dict[str, set[int]] = {}
        self.usual_readers: set[int] = set()
        self.violating: set[int] = set()
        self.before_first: tuple | None = None  # the nodes before the first fragment, and their infos
        self.generation = None  # the expansion memo's, when the records were made


class _Context(Context):
    """The whole network of a version, for the rules; while one fragment is checked, it notes what the
    rules read outside it."""

    def __init__(self, text: str, lines: SourceText, checked, typed: bool, settings: Settings) -> None:
        self.text = text
        self.lines = lines
        self.module = None
        self.settings = settings
        self.nodes = checked.graph.nodes
        self._infos = checked.infos
        self.typed = TypedGraph(checked.graph, checked.infos) if typed else None
        self._known_only = not typed
        self._checked = checked
        self._fragments = checked.fragments
        self._usual = None
        self._sites: dict = {}
        self._indexed: set[int] = set()
        self.record: _Record | None = None
        self._low = self._high = 0

    # --- what the rules read, noted ----------------------------------------------------------------

    def _read(self, node_id: int) -> None:
        if self.record is not None and not self._low <= node_id < self._high:
            self.record.reads.add(node_id)

    def node(self, node_id: int):
        self._read(node_id)
        return self.nodes[node_id]

    def input_of(self, node):
        if len(node.inputs) != 1:
            return None
        self._read(node.inputs[0])
        return self.nodes[node.inputs[0]]

    def consumers(self, node):
        """The nodes reading `node`: in its own fragment, in the fragments its stream flows into, and,
        for a named tensor, wherever it is read (found without indexing the whole network)."""
        node_id = node.id
        position = self._position(node_id)
        fragments, nodes = self._fragments, self.nodes
        end = fragments[position].end if position >= 0 else (fragments[0].start if fragments else len(nodes))
        found = [n for n in nodes[node_id + 1 : end] if node_id in n.inputs]
        if node_id in self._named:
            readers = self._readers.get(node_id, ())
        else:  # an unnamed tensor flows on as the stream only: the statements reading it follow
            readers = []
            for index in range(position + 1, len(fragments)):
                if fragments[index].input != node_id:
                    break
                readers.append(fragments[index])
        for fragment in readers:
            found.extend(n for n in nodes[fragment.start : fragment.end] if node_id in n.inputs)
        result = []
        for consumer in found:
            self._read(consumer.id)  # an unknown one too: it may become known
            if not self._known_only or self._infos[consumer.id] is not None:
                result.append(consumer)
        return result

    @cached_property
    def _named(self) -> set[int]:
        """The nodes a spec names (only those are read away from the stream)."""
        named = {node for node, _ in self._checked.graph.names}
        if self._known_only:  # and those a failed statement named (`Names.bind`): only while there are errors
            for fragment in self._fragments:
                named.update(entry[2] for entry in fragment.names if entry[0] == "bind")
        return named

    @cached_property
    def _readers(self) -> dict[int, list]:
        """Node → the fragments reading it from outside their own nodes."""
        readers: dict[int, list] = {}
        for fragment in self._fragments:
            for i in fragment.externals:  # kept by `infer_partial` for each fragment
                readers.setdefault(i, []).append(fragment)
        return readers

    def next(self, node):
        following = self.consumers(node)
        return following[0] if len(following) == 1 else None

    @cached_property
    def _by_span(self) -> dict:
        found: dict = {}
        for node in self.nodes:
            if node.origins:  # a word of a macro's body: its expansions are in every statement calling it
                found.setdefault(node.span, []).append(node)
        return found

    def expansions(self, node):
        if node.origins:
            if self.record is not None:
                self.record.macros.add(node.origins[-1].call.split(" ", 1)[0])
            candidates = self._by_span[node.span]
        else:  # a word of a top-level statement: its expansions are its own fragment's
            low, high = self._range(node.id)
            candidates = [n for n in self.nodes[low:high] if n.span == node.span]
        found = []
        for other in candidates:
            self._read(other.id)
            if not self._known_only or self._infos[other.id] is not None:
                found.append(other)
        return found

    def usual_activation(self) -> str:
        if self._usual is None:
            if self._known_only:  # the known layers only, as `lint_known` sees them
                kinds = Counter(n.kind for n, info in zip(self.nodes, self._infos) if info is not None)
            else:
                kinds = Counter(n.kind for n in self.nodes)
            self._usual = usual_activation(kinds)
        if self.record is not None:
            self.record.usual = self._usual
        return self._usual

    # --- the syntax, read a statement at a time ----------------------------------------------------

    def site(self, node):
        key = (node.span.line, node.span.column)
        found = self._sites.get(key)
        if found is None:
            at = self._checked.top_level_at(node.span.line)
            if at is not None and id(at[0]) not in self._indexed:
                self._indexed.add(id(at[0]))
                statement, index = at
                if index is None:  # a `def`: its body's lines
                    for position, inner in enumerate(statement.body):
                        index_statement(inner, statement.body, position, False, self._sites)
                else:
                    index_statement(statement, self._checked.raw_body, index, False, self._sites)
                found = self._sites.get(key)
        return found

    # --- fragments ----------------------------------------------------------------------------------

    @cached_property
    def _starts(self) -> list[int]:
        return [f.start for f in self._fragments]

    def _position(self, node_id: int) -> int:
        """The index of the fragment holding a node, -1 for the nodes before the first."""
        return bisect.bisect_right(self._starts, node_id) - 1

    def _range(self, node_id: int) -> tuple[int, int]:
        position = self._position(node_id)
        if position < 0:
            return 0, self._starts[0] if self._starts else len(self.nodes)
        fragment = self._fragments[position]
        return fragment.start, fragment.end

    @cached_property
    def by_key(self) -> dict:
        return {f.key: f for f in self._fragments}

    def key_of(self, node_id: int) -> int:
        position = self._position(node_id)
        return 0 if position < 0 else self._fragments[position].key


def lint_incremental(
    checked, memo, text: str, lines: SourceText, settings: Settings, cache: LintCache
) -> list[Finding]:
    """The findings of a version checked with a cache (`archspec.compile.check_spec`): those
    `lint_compiled` gives when it has no error, else those `lint_known` gives."""
    typed = not checked.errors
    selected = sorted(settings.codes)
    noqa = typed and any(RULES[c].reads_noqa for c in selected)
    every = [c for c in (RULES if noqa else selected) if not RULES[c].reads_noqa]
    layer_codes = [c for c in every if not RULES[c].whole_network]
    if layer_codes != cache.codes or memo.generation is not cache.generation:
        cache.__init__()
        cache.codes, cache.generation = layer_codes, memo.generation
    ctx = _Context(text, lines, checked, typed, settings)
    fragments = checked.fragments
    _check_again(ctx, memo, cache, fragments, layer_codes)

    by_code: dict[str, dict] = {}
    violating = sorted(
        (f for f in (_fragment(ctx, key) for key in cache.violating) if f is not None), key=lambda f: f.start
    )
    violating = [f for f in violating if not cache.records[f.key].dormant]
    first = fragments[0].start if fragments else len(ctx.nodes)
    keys = ([0] if 0 in cache.violating and first else []) + [f.key for f in violating]
    for key in keys:
        for code, violation in cache.records[key].violations:
            by_code.setdefault(code, {}).setdefault(violation.location, []).append(violation)
    findings: list[Finding] = []
    for code in every:
        checker = RULES[code]
        if checker.whole_network:
            if not typed:
                continue
            groups: dict = {}
            for violation in checker.check(ctx):
                groups.setdefault(violation.location, []).append(violation)
        else:
            groups = by_code.get(code, {})
        findings.extend(_finding(ctx, checker, group) for group in groups.values())
    shown = [f for f in findings if f.code in settings.codes and not _suppressed(ctx, f)]
    readers = [RULES[code] for code in selected if RULES[code].reads_noqa] if typed else []
    if readers:
        used: dict[int, set[str]] = {}
        for f in findings:
            if _suppressed(ctx, f):
                used.setdefault(f.span.line, set()).add(f.code)
        for reader in readers:
            shown.extend(reader.check_noqa(ctx, used))
    return sorted(shown, key=lambda f: (f.span.line, f.span.column, f.code))


def _check_again(ctx: _Context, memo, cache: LintCache, fragments: list, codes: list[str]) -> None:
    """Run the per-layer rules again where what they read may have changed.

    While a spec has errors, the statements below a broken line are often all unknown, and known again
    (the same) once it is fixed: a fragment whose every layer is unknown finds nothing, and its result is
    kept aside (`dormant`) rather than replaced, to be taken back when it comes back as it was, unless
    something it read changed meanwhile (`stale`). Those that read it are checked again both times."""
    nodes, infos = ctx.nodes, ctx._infos
    first = fragments[0].start if fragments else len(nodes)
    before_first = (nodes[:first], infos[:first])
    dirty = set(memo.changed) | set(memo.retyped)
    if before_first != cache.before_first:
        dirty.add(0)
        cache.before_first = before_first
    if not cache.records:  # nothing kept: every fragment
        stale = {f.key for f in fragments} | {0}
        again = set(stale)
    else:
        stale = set(dirty)
        for key in dirty:
            stale.update(cache.readers.get(key, ()))
        for fragment in memo.recorded:
            for call, found in fragment.lookups.items():
                if found is not None:  # a macro called once more or less: its other calls' expansions
                    stale.update(cache.macro_readers.get(call, ()))
        if cache.usual_readers and ctx.usual_activation() != next(
            (cache.records[k].usual for k in cache.usual_readers if k in cache.records), None
        ):
            stale.update(cache.usual_readers)
        moved = memo.moved_keys
        for key in cache.violating:  # findings name nodes and lines: those of a moved or renumbered fragment
            record = cache.records.get(key)
            if record is not None and (key in moved or not moved.isdisjoint(record.reads)):
                stale.add(key)
                record.stale = True
        again = stale | memo.went_dark | memo.came_back
        for key in memo.went_dark | memo.came_back:  # what reads them sees them (un)known
            again.update(cache.readers.get(key, ()))
    for fragment in memo.removed:
        _forget(cache, fragment.key)
    memo.changed, memo.retyped, memo.recorded, memo.removed = set(), set(), [], []
    memo.went_dark, memo.came_back, memo.moved_keys = set(), set(), set()
    for key in again:
        if key == 0:
            _check(ctx, cache, 0, 0, first, codes)
            continue
        fragment = _fragment(ctx, key)
        if fragment is None:
            _forget(cache, key)
            continue
        record = cache.records.get(key)
        if ctx._known_only and fragment.end > fragment.start and not any(infos[fragment.start : fragment.end]):
            if record is not None:  # unknown: it finds nothing; what it found is kept aside
                record.dormant = True
                record.stale = record.stale or key in stale
            continue
        if record is not None and record.dormant and not record.stale and key not in stale:
            record.dormant = False  # back as it was, and so is all it read
            continue
        _check(ctx, cache, key, fragment.start, fragment.end, codes)
    ctx.record = None


def _fragment(ctx: _Context, key: int):
    """The fragment of this version with `key`."""
    return ctx.by_key.get(key)


def _check(ctx: _Context, cache: LintCache, key: int, low: int, high: int, codes: list[str]) -> None:
    _forget(cache, key)
    record = ctx.record = _Record()
    ctx._low, ctx._high = low, high
    checks = [RULES[code].check_node for code in codes]
    infos, known_only = ctx._infos, ctx._known_only
    for node in ctx.nodes[low:high]:
        if known_only and infos[node.id] is None:
            continue
        for code, check in zip(codes, checks):
            found = check(ctx, node)
            if found is not None:
                record.violations.append((code, found))
    ctx.record = None
    reads = {ctx.key_of(i) for i in record.reads}
    reads.discard(key)
    record.reads = reads
    if record.violations:
        cache.violating.add(key)
    cache.records[key] = record
    for other in reads:
        cache.readers.setdefault(other, set()).add(key)
    for macro in record.macros:
        cache.macro_readers.setdefault(macro, set()).add(key)
    if record.usual is not None:
        cache.usual_readers.add(key)


def _forget(cache: LintCache, key: int) -> None:
    record = cache.records.pop(key, None)
    if record is None:
        return
    for other in record.reads:
        readers = cache.readers.get(other)
        if readers is not None:
            readers.discard(key)
    for macro in record.macros:
        cache.macro_readers.get(macro, set()).discard(key)
    cache.usual_readers.discard(key)
    cache.violating.discard(key)
