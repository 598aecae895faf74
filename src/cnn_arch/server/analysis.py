"""One open document, checked: lint findings or the spec error, and, on demand, what each source line
computes (shapes, parameters, MACs, receptive field) taken from the summary's rows. No LSP types here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property
from typing import NamedTuple

from archspec.compile import CheckCache, Checked, check_spec
from archspec.errors import SpecError
from archspec.lint import Finding, Settings
from archspec.lint.engine import lint_compiled, lint_known
from archspec.lint.incremental import LintCache, lint_incremental
from archspec.source import SourceText
from archspec.syntax import Broken, Def, Module

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Item(NamedTuple):
    """What one place of the network computes: a layer, or a block or macro call with its totals (a
    row of the summary's table)."""

    line: int
    label: str
    is_call: bool
    shape: tuple[int, ...]
    trainable: int
    non_trainable: int
    macs: int
    receptive_field: tuple[int, int] | None
    stride: tuple[int, int]
    layers: int  # layers it covers

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


class Occurrence(NamedTuple):
    """What one source line computes in one place of the network: at top level, once; inside a `def`,
    once per call. Numbers are totals over the line's layers (all of them, with `xN` or `repeat`)."""

    shape: tuple[int, ...]  # the output of the line's last layer
    trainable: int
    non_trainable: int
    macs: int
    last: Item  # the line's last item, for its receptive field and stride
    layers: int  # layers the line expands to
    call: Item | None  # the innermost macro call this occurrence sits in

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


class DocumentCache:
    """What the server keeps of one document between versions, so that an edit costs what it touched:
    its check (`archspec.compile.CheckCache`) and its lint results (`archspec.lint.incremental`)."""

    def __init__(self) -> None:
        self.check = CheckCache()
        self.lint = LintCache()


class Superseded(Exception):
    """A newer version of the document arrived while this one was analysed: the analysis is dropped."""


class Analysis:
    """A document's text checked with recovery: every error, and the facts of every line whose inputs
    are known. Lint runs on what compiles: on a spec with errors, on the layers whose inputs are known,
    with the rules that judge a layer where it is (not those that judge the network as a whole: the
    head's share of the parameters, the receptive field at the output). `cache` is what is kept of the
    document between versions; `check` raises `Superseded` between the steps when a newer version is
    waiting."""

    def __init__(
        self,
        text: str,
        name: str,
        settings: Settings,
        previous: Analysis | None = None,
        cache: DocumentCache | None = None,
        check: Callable[[], None] = lambda: None,
    ) -> None:
        self.text = text
        self.name = name
        self.lines = SourceText("", text)
        self.checked: Checked = check_spec(text, name, cache=cache.check if cache is not None else None)
        check()
        self.errors: tuple[SpecError, ...] = self.checked.errors
        self.more_errors = self.checked.more
        self.findings: list[Finding] = []
        typed = self.checked.typed
        if cache is not None:  # what lint found in the statements the edit left alone is kept
            memo = cache.check.expansion
            self.findings = lint_incremental(self.checked, memo, text, self.lines, settings, cache.lint)
        elif typed is not None:
            self.findings = lint_compiled(text, name, self.checked.module, typed, settings)
        else:  # the layers whose inputs are known, with the rules that judge a layer where it is
            checked = self.checked
            self.findings = lint_known(text, name, checked.module, checked.graph, checked.infos, settings)
        # A `def` whose header is being typed does not parse: completion and go-to-definition use the
        # previous version's. One level only, so analyses never form a chain.
        broken = {s.defines for s in self.checked.raw_body if isinstance(s, Broken) and s.defines}
        kept = previous.definitions if previous is not None else ()
        self.definitions = (*self.checked.defs, *(d for d in kept if d.name in broken))

    @property
    def module(self) -> Module:
        return self.checked.module

    @property
    def error(self) -> SpecError | None:
        """The first error, if any."""
        return self.errors[0] if self.errors else None

    @cached_property
    def _facts(self) -> tuple[dict[int, list[Occurrence]], list[Item]]:
        return line_facts(self.checked)

    @property
    def facts(self) -> dict[int, list[Occurrence]]:
        """By 1-based source line: what the line computes, once per place it is expanded in (places whose
        inputs an error left unknown are left out)."""
        return self._facts[0]

    @property
    def calls(self) -> list[Item]:
        """Every macro call whose numbers are known."""
        return self._facts[1]

    def definition(self, name: str) -> Def | None:
        return next((d for d in self.definitions if d.name == name), None)


def line_facts(checked: Checked) -> tuple[dict[int, list[Occurrence]], list[Item]]:
    """Group the network's items (layers, and blocks with their totals, nested as the summary's rows
    are) by source line. Items of one line under the same parent are one occurrence (`conv 64 3 bn relu
    x2` is six layers, one occurrence); an item nested in an item of its own line is already counted by
    it. An occurrence with any unknown item (its input unknown, or a failed statement inside a block)
    is left out."""
    graph, infos = checked.graph, checked.infos
    scopes = graph.scopes
    unknown = set(checked.incomplete)
    sums: dict[int, list[int]] = {}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for node in graph.nodes:
        info = infos[node.id]
        layer = 0 if node.scope is not None and scopes[node.scope].node == node.id else 1  # a merge is its block
        scope = node.scope
        while scope is not None:
            if info is None:
                unknown.add(scope)
            else:
                total = sums.setdefault(scope, [0, 0, 0, 0])
                total[0] += info.trainable
                total[1] += info.non_trainable
                total[2] += info.macs
                total[3] += layer
            first.setdefault(scope, node.id)
            last[scope] = node.id
            scope = scopes[scope].parent
    items: list[tuple[Item | None, int | None, int]] = []  # (item or None when unknown, parent scope, line)
    scope_items: dict[int, Item | None] = {}
    opened: set[int] = set()
    for node in graph.nodes:
        chain = []
        scope = node.scope
        while scope is not None and scope not in opened:
            chain.append(scope)
            scope = scopes[scope].parent
        for scope_id in reversed(chain):
            opened.add(scope_id)
            scope = scopes[scope_id]
            output = infos[scope.node if scope.node is not None else last[scope_id]]
            item = None
            if scope_id not in unknown and output is not None:
                trainable, non_trainable, macs, layers = sums.get(scope_id, (0, 0, 0, 0))
                item = Item(
                    scope.span.line,
                    scope.label,
                    scope.kind == "call",
                    output.shape,
                    trainable,
                    non_trainable,
                    macs,
                    output.receptive_field,
                    output.stride,
                    layers,
                )
            scope_items[scope_id] = item
            items.append((item, scope.parent, scope.span.line))
        if node.scope is not None and scopes[node.scope].node == node.id:
            continue  # a merge node is its block's item
        info = infos[node.id]
        item = None
        if info is not None:
            item = Item(
                node.line,
                node.label,
                False,
                info.shape,
                info.trainable,
                info.non_trainable,
                info.macs,
                info.receptive_field,
                info.stride,
                1,
            )
        items.append((item, node.scope, node.line))

    runs: dict[tuple[int, int | None], list[Item | None]] = {}
    for item, parent, line in items:
        if parent is not None and scopes[parent].span.line == line:
            continue
        runs.setdefault((line, parent), []).append(item)
    facts: dict[int, list[Occurrence]] = {}
    for (line, parent), members in runs.items():
        if None in members:
            continue
        call = parent
        while call is not None and scopes[call].kind != "call":
            call = scopes[call].parent
        if call is not None and scope_items.get(call) is None:
            continue
        facts.setdefault(line, []).append(
            Occurrence(
                members[-1].shape,
                sum(m.trainable for m in members),
                sum(m.non_trainable for m in members),
                sum(m.macs for m in members),
                members[-1],
                sum(m.layers for m in members),
                scope_items[call] if call is not None else None,
            )
        )
    calls = [item for scope_id, item in scope_items.items() if item is not None and item.is_call]
    return facts, calls


def word_at(line: str, column: int) -> tuple[str, int, int] | None:
    """The word (letters, digits, `_`) under a 0-based column: (word, start, end), or None."""
    for match in _WORD.finditer(line):
        if match.start() <= column <= match.end():
            return match.group(), match.start(), match.end()
    return None


def code_before(line: str, column: int) -> str | None:
    """The line's text before a 0-based column, or None when the column is inside a comment."""
    before = line[:column]
    return None if "#" in before else before


def def_docs(lines: SourceText, definition: Def) -> str:
    """The comment lines right above a `def`, as its documentation (how the templates document macros)."""
    found: list[str] = []
    number = definition.line - 1
    while number >= 1 and lines.line(number).lstrip().startswith("#"):
        found.append(lines.line(number).lstrip()[1:].strip())
        number -= 1
    return " ".join(reversed(found))


def def_signature(lines: SourceText, definition: Def) -> str:
    """`def bottleneck(f, stride=1)`, as written."""
    return lines.line(definition.line).split("#", 1)[0].strip().rstrip(":").rstrip()
