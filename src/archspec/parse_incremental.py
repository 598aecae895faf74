"""Reading a document again after an edit, as the language server does at each keystroke: the text is
compared with the last version's, and only the top-level statements around the changed characters are
read again. The statements before them keep their parse; those after keep theirs too, a few lines lower
or higher, and are not rewritten: their spans are moved only when something reads them (`materialized`),
so a line inserted at the top of a 10,000-line spec costs the lines it touched, not 10,000.

Used by `archspec.compile.check_spec(..., cache=...)`.
"""

from __future__ import annotations

import bisect
import itertools
from itertools import chain

from archspec.errors import MAX_ERRORS, ErrorLimit, Span
from archspec.parse import (
    Parsed,
    _normalize,
    _parse_statement,
    _statements,
    parse,
    refuse_whole,
    with_source,
)
from archspec.relocate import LineMap, shifted, shifted_error
from archspec.syntax import Broken, Module


class _Entry:
    """One top-level statement's parse: its text, its syntax (the `Module` of its `def` or statement)
    and parse errors, their spans as read with the statement's first line at line index `parsed`."""

    __slots__ = ("errors", "module", "parsed", "text")

    def __init__(self, text: str, module: Module, errors: tuple, parsed: int) -> None:
        self.text = text
        self.module = module
        self.errors = errors
        self.parsed = parsed


class StatementCache:
    """A document's statements as last parsed, in order, each with its first line now (`starts`; an
    entry whose spans say another line is stale until `materialized`), and what the last parse moved,
    for the expander (`archspec.expand_memo`): the line map from the version before, and the `def`s
    it rewrote at their new lines."""

    def __init__(self) -> None:
        self.text: str | None = None  # the normalized text last parsed; None: read the next one whole
        self.entries: list[_Entry] = []
        self.starts: list[int] = []  # first line index of each entry in `text`
        self.error_count = 0
        self.line_map = LineMap()
        self.moved: dict[int, object] = {}  # id() of a statement rewritten at new lines → the one it replaces
        self._module: Module | None = None  # the last result, every statement at its place
        self.limited: dict[tuple[str, int], _Entry] = {}  # a text read up to MAX_ERRORS: its statements
        self.rewritten: list[
            tuple[object, object]
        ] = []  # (stale statement, its rewrite), until the expander reads them
        self.fresh: set[int] = set()  # id() of the statements read anew by the last parse
        self._index: dict[int, int] | None = None
        self._positions: list[int] | None = None  # each entry's first statement's index in the module's body

    def __bool__(self) -> bool:
        return self.text is not None

    def materialized(self) -> Module:
        """The last parse with every statement's spans at its place (stale statements are rewritten once
        and kept so)."""
        if self._module is None:
            for index in range(len(self.entries)):
                self._materialize(index)
            body = tuple(chain.from_iterable(e.module.body for e in self.entries))
            defs = tuple(chain.from_iterable(e.module.defs for e in self.entries))
            self._module = Module(defs, body)
        return self._module

    def statement_at_place(self, statement, line: int | None = None):
        """`statement`, a top-level statement of the last parse (whose first line is now `line`, 1-based,
        when the caller knows it), with its spans at its place (rewritten once, and kept so)."""
        if line is None:
            if id(statement) in self.fresh:
                return statement
            if self._index is None:  # rare: a statement the expander has no fragment of, not read anew
                self._index = {id(s): i for i, e in enumerate(self.entries) for s in e.module.body}
            index = self._index.get(id(statement), len(self.entries))
        else:
            index = bisect.bisect_left(self.starts, line - 1)
        if index < len(self.entries):
            entry = self.entries[index]
            if entry.parsed != self.starts[index] and any(s is statement for s in entry.module.body):
                position = next(i for i, s in enumerate(entry.module.body) if s is statement)
                self._materialize(index)
                self._module = None
                return self.entries[index].module.body[position]
        return statement

    def top_level_at(self, line: int):
        """The top-level statement or `def` holding 1-based `line`, at its place, and for a statement its
        index among the statements of the last parse's module (None for a `def`); None outside any."""
        index = bisect.bisect_right(self.starts, line - 1) - 1
        if index < 0:
            return None
        if self.entries[index].parsed != self.starts[index]:
            self._materialize(index)
        module = self.entries[index].module
        if module.defs:
            return module.defs[0], None
        if not module.body:
            return None
        if self._positions is None:
            self._positions = list(itertools.accumulate((len(e.module.body) for e in self.entries), initial=0))
        return module.body[0], self._positions[index]

    def _materialize(self, index: int) -> None:
        entry = self.entries[index]
        delta = self.starts[index] - entry.parsed
        if delta:
            errors = tuple(shifted_error(e, delta) for e in entry.errors)
            module = shifted(entry.module, delta)
            self.entries[index] = _Entry(entry.text, module, errors, self.starts[index])
            self.rewritten.extend(zip(entry.module.body, module.body))


def parse_incremental(text: str, name: str, cache: StatementCache) -> Parsed:
    """Parse a new version of a document as `parse_recovering` does, reusing `cache` (left holding this
    version). The module returned may hold statements with stale spans below an inserted or deleted line
    (`cache.materialized()` has them at their place); its errors are at their places."""
    text = text.removeprefix("\ufeff")
    cache.moved, cache.line_map, cache._module, cache._index, cache.fresh = {}, LineMap(), None, None, set()
    cache._positions = None
    refused = refuse_whole(name, text)
    if refused is not None:
        cache.__init__()
        return refused
    new = _normalize(text)
    old = cache.text
    if old is None:
        limited = _read_whole(cache, new, text, name)
        if limited is not None:
            return limited
    elif old != new:
        _read_window(cache, old, new)
    cache.text = new
    for index, entry in enumerate(cache.entries):  # the first statement (`input`): the expander reads its spans
        if entry.module.body:
            if entry.parsed != cache.starts[index]:
                cache._materialize(index)
            if not all(isinstance(s, Broken) and s.defines for s in entry.module.body):
                break
    defs, body, errors = [], [], []
    if cache.error_count:
        for index, entry in enumerate(cache.entries):
            if entry.errors and entry.parsed != cache.starts[index]:
                cache._materialize(index)
    if cache.error_count >= MAX_ERRORS:  # as clang does: past that many, what follows is not read
        for index, entry in enumerate(cache.entries):
            if len(errors) >= MAX_ERRORS:
                body.append(Broken(Span(cache.starts[index] + 1, 1)))
                errors.append(ErrorLimit(Span(cache.starts[index] + 1, 1)))
                break
            defs.extend(entry.module.defs)
            body.extend(entry.module.body)
            errors.extend(entry.errors)
        defs, body = tuple(defs), tuple(body)
    else:
        if cache.error_count:
            errors = list(chain.from_iterable(e.errors for e in cache.entries))
        defs = tuple(chain.from_iterable(e.module.defs for e in cache.entries))
        body = tuple(chain.from_iterable(e.module.body for e in cache.entries))
    return Parsed(Module(defs, body), with_source(errors, name, text))


def _read_whole(cache: StatementCache, new: str, text: str, name: str) -> Parsed | None:
    """The first version: the whole text at once (fastest, and how `parse` reads a correct spec), cut into
    its statements; statement by statement where it does not parse. A text with MAX_ERRORS errors is read
    up to the statement past the limit only, and the next version is read whole again (reusing what was
    read): returns its result."""
    statements = _statements(new)
    try:
        module = parse(text, name)
    except Exception:
        earlier = cache.limited
        entries, count = [], 0
        for start, offset, end in statements:
            if count >= MAX_ERRORS:
                cache.__init__()
                cache.limited = {(e.text, e.parsed): e for e in entries}
                defs = tuple(chain.from_iterable(e.module.defs for e in entries))
                body = (*chain.from_iterable(e.module.body for e in entries), Broken(Span(start + 1, 1)))
                errors = [*chain.from_iterable(e.errors for e in entries), ErrorLimit(Span(start + 1, 1))]
                return Parsed(Module(defs, body), with_source(errors, name, text))
            key = new[offset:end]
            entry = earlier.get((key, start)) or _fresh(key, start)
            entries.append(entry)
            count += len(entry.errors)
    else:
        starts = [start for start, _, _ in statements]
        parts: list[tuple[list, list]] = [([], []) for _ in statements]
        for index, group in ((0, module.defs), (1, module.body)):
            for statement in group:
                parts[bisect.bisect_right(starts, statement.line - 1) - 1][index].append(statement)
        entries = [
            _Entry(new[offset:end], Module(tuple(defs), tuple(body)), (), start)
            for (start, offset, end), (defs, body) in zip(statements, parts)
        ]
    cache.entries = entries
    cache.starts = [start for start, _, _ in statements]
    cache.error_count = sum(len(e.errors) for e in entries)
    cache.limited = {}
    return None


def _read_window(cache: StatementCache, old: str, new: str) -> None:
    """Read again the statements around the characters that differ between `old` and `new`; keep the
    others. Whether a line starts a statement depends on it and the line before it only, so outside the
    lines that differ (and the line after them) the statements are where they were."""
    first = _common_prefix(old, new)
    common_end = _common_suffix(old, new, min(len(old), len(new)) - first)
    changed = new.count("\n", 0, first)  # the first line that differs
    after = new.find("\n", len(new) - common_end)  # the line after the last differing one starts past it
    delta = new.count("\n") - old.count("\n")
    aligned = new.count("\n", 0, after + 1) if after >= 0 else new.count("\n") + 1  # new index; old: - delta
    starts, entries = cache.starts, cache.entries
    i0 = max(bisect.bisect_right(starts, changed - 1) - 1, 0)  # the statement holding the line before
    j0 = bisect.bisect_left(starts, aligned - delta + 1)  # the first statement past the line after
    line0 = starts[i0]
    start = _line_offset(new, line0, first, changed)
    if j0 < len(starts):
        end_line = starts[j0] + delta
        end = _line_offset(new, end_line, after + 1, aligned)
        cache.line_map = LineMap(starts[j0] + 1, delta)
    else:
        end = len(new)
    candidates: dict[str, dict[int, _Entry]] = {}
    for index in range(i0, j0):
        candidates.setdefault(entries[index].text, {})[starts[index]] = index
    statements = _statements(new, start, end, line0)
    texts = [new[offset:stop] for _, offset, stop in statements]
    found: list = [None] * len(statements)
    for number, ((line, _, _), key) in enumerate(zip(statements, texts)):  # first, those that stayed
        same = candidates.get(key)
        if same and line in same:
            found[number] = same.pop(line)
    window, window_starts = [], []
    shift = 0
    moved_lines = cache.line_map
    for number, ((line, _, _), key) in enumerate(zip(statements, texts)):
        index = found[number]
        if index is None:
            index = _take(candidates.get(key), line, shift)
            if index is not None:  # the same statement at other lines: kept, its spans moved when read
                shift = line - starts[index]
                moved_lines.add(starts[index] + 1, key.count("\n"), shift)
        else:
            shift = 0
        entry = _fresh(key, line, cache.fresh) if index is None else entries[index]
        window.append(entry)
        window_starts.append(line)
    removed = entries[i0:j0]
    cache.error_count += sum(len(e.errors) for e in window) - sum(len(e.errors) for e in removed)
    tail = starts[j0:]
    if delta:
        tail = [line + delta for line in tail]
    cache.entries = [*entries[:i0], *window, *entries[j0:]]
    cache.starts = [*starts[:i0], *window_starts, *tail]
    # a `def` at other lines is rewritten now: a macro call expanded from it must say where its lines are
    for index in chain(range(i0, i0 + len(window)), range(i0 + len(window), len(cache.entries)) if delta else ()):
        entry = cache.entries[index]
        if entry.module.defs and entry.parsed != cache.starts[index]:
            cache._materialize(index)
            for was, now in zip(entry.module.defs, cache.entries[index].module.defs):
                cache.moved[id(now)] = was


def _fresh(text: str, start: int, fresh: set[int] | None = None) -> _Entry:
    module, problems = _parse_statement(text.split("\n")[:-1], start)
    if fresh is not None:
        fresh.update(id(s) for s in module.body)
    return _Entry(text, module, problems, start)


def _take(entries: dict[int, int] | None, start: int, shift: int) -> int | None:
    """The entry of a moved statement's text: the one that moved as the statement before did, else the
    nearest; taken out (a text written twice, `relu`, has two)."""
    if not entries:
        return None
    if start - shift in entries:
        return entries.pop(start - shift)
    return entries.pop(min(entries, key=lambda old: abs(old - start)))


def _line_offset(text: str, line: int, known_offset: int, known_line: int) -> int:
    """The offset of line index `line` in `text`, counted from a known point (`known_offset` lies on
    line `known_line`)."""
    position = text.rfind("\n", 0, known_offset) + 1 if known_offset > 0 else 0
    while known_line > line:
        position = text.rfind("\n", 0, position - 1) + 1
        known_line -= 1
    while known_line < line:
        position = text.index("\n", position) + 1
        known_line += 1
    return position


_CHUNK = 4096


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix, compared a chunk at a time (C speed)."""
    limit = min(len(a), len(b))
    low = 0
    while low + _CHUNK <= limit and a[low : low + _CHUNK] == b[low : low + _CHUNK]:
        low += _CHUNK
    high = min(low + _CHUNK, limit)
    while low < high:  # a[:low] == b[:low]; they differ before `high` (or it is the limit)
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(a: str, b: str, limit: int) -> int:
    """The length of the longest common suffix, at most `limit`."""
    la, lb = len(a), len(b)
    low = 0
    while low + _CHUNK <= limit and a[la - low - _CHUNK : la - low] == b[lb - low - _CHUNK : lb - low]:
        low += _CHUNK
    high = min(low + _CHUNK, limit)
    while low < high:
        middle = (low + high + 1) // 2
        if a[la - middle : la - low] == b[lb - middle : lb - low]:
            low = middle
        else:
            high = middle - 1
    return low
