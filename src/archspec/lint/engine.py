"""The lint engine: rules registered by code, the context they check, and `lint_source`, which runs
the selected rules over a typed graph and turns what they report into located findings.

A rule reports a `Violation` at a graph node. Nodes expanded from a macro or a repeat share the span
of their word in the source, so the engine reports each (rule, word) once: at the `def` body line,
with a note naming the call site, and with a text fix only when the rule fires for every expansion of
that word and the fix is the same for all of them (an edit inside a `def` changes every call).

Records are NamedTuples: a frozen dataclass costs over a millisecond to define, and lint must start fast.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple

from archspec.compile import compile_with_syntax
from archspec.errors import Span
from archspec.head import DENSE_SHARE_THRESHOLD
from archspec.layers import REGISTRY
from archspec.source import SourceText
from archspec.syntax import Block, If, Line, Module
from archspec.text import expansion_note
from archspec.words import MERGES

if TYPE_CHECKING:
    from archspec.infer import LayerInfo, TypedGraph
    from archspec.ir import Node
    from archspec.lint.edits import Fix

Severity = Literal["warning", "info"]


# --- rules -------------------------------------------------------------------------------------


class Rule:
    """One lint rule. Subclasses set the class attributes, write their docs in the class docstring
    (What it does / Why is this bad? / Example / Use instead) and implement `check`."""

    code: ClassVar[str]  # CA101
    name: ClassVar[str]  # flatten-dense-head
    severity: ClassVar[Severity] = "warning"
    fix_title: ClassVar[str | None] = None  # what the fix does; None: the rule has no automatic fix
    default: ClassVar[bool] = True  # selected unless `select` says otherwise
    # judges the network as a whole (its output, its totals, every conv in it): while a spec has errors,
    # the language server lints the part it knows and runs only the rules that judge layers where they are
    whole_network: ClassVar[bool] = False

    def check(self, ctx: Context) -> Iterable[Violation]:
        """What the rule finds in the network: by default, what `check_node` finds at each layer."""
        check_node = self.check_node
        for node in ctx.nodes:
            found = check_node(ctx, node)
            if found is not None:
                yield found

    def check_node(self, ctx: Context, node: Node) -> Violation | None:
        """A rule that judges a layer where it is: what it finds at `node`, reading the rest of the network
        only through `ctx` (the language server re-checks a layer when what it read there changed)."""
        raise NotImplementedError(self.code)

    # A rule about the suppression comments themselves runs after the others: `check_noqa` gets the
    # codes each line's noqa comment actually suppressed (whatever rules are selected) and returns findings.
    reads_noqa: ClassVar[bool] = False

    def check_noqa(self, ctx: Context, used: dict[int, set[str]]) -> Iterable[Finding]:
        return ()

    @property
    def docs(self) -> str:
        return inspect.cleandoc(type(self).__doc__ or "")

    @property
    def summary(self) -> str:
        """The first sentence of "What it does"."""
        match = re.search(r"## What it does\s+(.+?\.)(\s|$)", self.docs, re.S)
        return " ".join(match.group(1).split()) if match else ""

    @property
    def fixable(self) -> bool:
        return self.fix_title is not None


RULES: dict[str, Rule] = {}  # by code, kept in code order whatever order the rule modules import in


def rule(cls: type[Rule]) -> type[Rule]:
    """Class decorator: register a rule under its code."""
    if cls.code in RULES:
        raise ValueError(f"rule code {cls.code} registered twice")
    RULES[cls.code] = cls()
    for code in sorted(RULES):
        RULES[code] = RULES.pop(code)
    return cls


def rule_by_name() -> dict[str, Rule]:
    return {r.name: r for r in RULES.values()}


class Settings(NamedTuple):
    """What to check: the selected rule codes and the rules' options; whether unsafe fixes apply."""

    codes: frozenset[str]
    dense_share_threshold: float = DENSE_SHARE_THRESHOLD
    unsafe_fixes: bool = False  # apply (and mark `[*]`) fixes that change the trained network too

    @classmethod
    def default(cls) -> Settings:
        """The default rules and options, as with no configuration and no flags."""
        return cls(frozenset(code for code, r in RULES.items() if r.default))


# --- what rules report -----------------------------------------------------------------------------


class Violation(NamedTuple):
    """A rule's report at one node: the message with its numbers, a help line, an optional fix."""

    node: Node
    message: str
    help: str | None = None
    fix: Fix | None = None
    span: Span | None = None  # where to report it, when not at the node's word (see Context.top_level_span)

    @property
    def location(self) -> Span:
        return self.span or self.node.span


class Finding(NamedTuple):
    """A located, deduplicated violation, as the user sees it."""

    code: str
    name: str
    severity: Severity
    message: str
    span: Span
    help: str | None = None
    fix: Fix | None = None
    notes: tuple[str, ...] = ()

    @property
    def fixable(self) -> bool:
        """Whether the finding has a fix at all, safe or not."""
        return self.fix is not None

    def applicable(self, unsafe_fixes: bool) -> bool:
        """Whether `--fix` applies this finding's fix: a safe one always, an unsafe one with `--unsafe-fixes`."""
        return self.fix is not None and (self.fix.safe or unsafe_fixes)


# --- the context a rule checks -----------------------------------------------------------------------


class Site(NamedTuple):
    """Where a layer line sits in the syntax tree: its statement, the sequence holding it, its index."""

    statement: Line
    body: tuple
    index: int
    in_merge: bool  # a direct child of `add:`/`concat:`/`multiply:`, where each line is one branch


class Context:
    """The compiled spec a rule checks: typed graph, syntax tree, text, settings, and graph helpers."""

    def __init__(self, text: str, module: Module, typed: TypedGraph, settings: Settings) -> None:
        self.text = text
        self.module = module
        self.typed = typed
        self.settings = settings
        # plain attributes, not properties: rules ask them for every node (the language server lints a
        # 10,000-layer spec at each keystroke)
        self.nodes: tuple[Node, ...] = typed.graph.nodes
        self._infos = typed.infos
        self._usual: str | None = None

    def info(self, node: Node) -> LayerInfo:
        return self._infos[node.id]

    def node(self, node_id: int) -> Node:
        """A node by id (one of another node's `inputs`)."""
        return self.nodes[node_id]

    def shape(self, node: Node) -> tuple[int, ...]:
        return self._infos[node.id].shape

    def input_of(self, node: Node) -> Node | None:
        """The node feeding `node` when it has exactly one input."""
        return self.nodes[node.inputs[0]] if len(node.inputs) == 1 else None

    @cached_property
    def _consumers(self) -> list[list[int]]:
        consumers: list[list[int]] = [[] for _ in self.nodes]
        for node in self.nodes:
            for i in node.inputs:
                consumers[i].append(node.id)
        return consumers

    def consumers(self, node: Node) -> list[Node]:
        return [self.nodes[i] for i in self._consumers[node.id]]

    def next(self, node: Node) -> Node | None:
        """The node `node` feeds when it feeds exactly one."""
        following = self._consumers[node.id]
        return self.nodes[following[0]] if len(following) == 1 else None

    @cached_property
    def _by_span(self) -> dict[Span, list[Node]]:
        found: dict[Span, list[Node]] = {}
        for node in self.nodes:
            found.setdefault(node.span, []).append(node)
        return found

    def expansions(self, node: Node) -> list[Node]:
        """Every node expanded from the same word as `node` (one per macro call or repetition)."""
        return self._by_span[node.span]

    @cached_property
    def lines(self) -> SourceText:
        return SourceText("", self.text)

    @cached_property
    def _sites(self) -> dict[tuple[int, int], Site]:
        sites: dict[tuple[int, int], Site] = {}
        _index_sites(self.module.body, False, sites)
        for definition in self.module.defs:
            _index_sites(definition.body, False, sites)
        return sites

    def site(self, node: Node) -> Site | None:
        """The layer line `node`'s word is on: the line's name, or a trailing `bn`/activation word."""
        return self._sites.get((node.span.line, node.span.column))

    def removable_line(self, node: Node) -> Site | None:
        """The line of `node` when it holds only that layer and deleting it leaves a valid block."""
        site = self.site(node)
        if site is None or site.statement.span != node.span or site.statement.args:
            return None
        if site.in_merge or len(site.body) < 2 or self.lines.continued(node.span.line):
            return None
        return site

    def top_level_span(self, node: Node) -> Span:
        """The top-level line `node` comes from: its outermost macro call, or its own word.
        Findings about the whole network read best there."""
        return node.origins[0].span if node.origins else node.span

    def is_activation(self, node: Node) -> bool:
        return node.layer.family == "activation" and not node.layer.linear

    def usual_activation(self) -> str:
        """The hidden-layer activation the spec uses most (`relu` if it uses none)."""
        if self._usual is None:
            self._usual = usual_activation(Counter(n.kind for n in self.nodes))
        return self._usual


def usual_activation(kinds: Counter) -> str:
    """Of the layer kinds counted (in the order they first appear), the hidden-layer activation that
    comes most often, the first of a tie; `relu` if there is none. (Counting every kind and asking each
    kind once is the fast way: lint asks this of a 10,000-layer spec at a keystroke.)"""
    found = [
        (count, -order, kind)
        for order, (kind, count) in enumerate(kinds.items())
        if (layer := REGISTRY[kind]).family == "activation" and not layer.linear and not layer.probability_output
    ]
    return max(found)[2] if found else "relu"


def _index_sites(body: tuple, in_merge: bool, sites: dict[tuple[int, int], Site]) -> None:
    for index, statement in enumerate(body):
        index_statement(statement, body, index, in_merge, sites)


def index_statement(statement, body: tuple, index: int, in_merge: bool, sites: dict[tuple[int, int], Site]) -> None:
    """The sites of one statement (`body[index]`) and of the lines under it."""
    if isinstance(statement, Line):
        site = Site(statement, body, index, in_merge)
        sites[(statement.span.line, statement.span.column)] = site
        for arg in statement.args:
            sites.setdefault((arg.span.line, arg.span.column), site)
    elif isinstance(statement, Block):
        _index_sites(statement.body, statement.name in MERGES, sites)
    elif isinstance(statement, If):  # each clause's body is a sequence of its own
        for clause in statement.clauses:
            _index_sites(clause.body, False, sites)


# --- running the rules ----------------------------------------------------------------------------

# Codes separated by commas and/or spaces, as ruff accepts: `noqa: CA101, CA302` or `noqa: CA101 CA302`.
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Za-z]+[0-9]+(?:(?:\s*,\s*|\s+)[A-Za-z]+[0-9]+)*))?", re.IGNORECASE)


def noqa_codes(line: str) -> frozenset[str] | None:
    """The codes a `# noqa: CA101, CA302` comment suppresses; an empty set for a bare `# noqa`
    (everything); None without one."""
    comment = line.find("#")
    if comment < 0:
        return None
    match = _NOQA.search(line, comment)
    if match is None:
        return None
    codes = match.group("codes")
    return frozenset(c.upper() for c in re.split(r"[\s,]+", codes.strip())) if codes else frozenset()


def lint_source(text: str, name: str, settings: Settings, input_shape: tuple[int, ...] | None = None) -> list[Finding]:
    """Lint a spec's text. Raises `SpecError` when it does not compile."""
    module, typed = compile_with_syntax(text, name, input_shape)
    return lint_compiled(text, name, module, typed, settings)


def lint_known(text: str, name: str, module: Module, graph, infos, settings: Settings) -> list[Finding]:
    """Lint what is known of a spec that does not compile (`archspec.compile.check_spec`): the layers
    whose inputs are known, with the rules that judge a layer where it is (not the network as a whole,
    whose head or totals an unknown part would falsify), and no verdict on `# noqa` comments."""
    from archspec.infer import TypedGraph
    from archspec.ir import Graph, Node, Scope

    known = [node for node in graph.nodes if infos[node.id] is not None]
    if not known:
        return []
    ids = {node.id: index for index, node in enumerate(known)}
    nodes = tuple(
        Node(ids[n.id], n.kind, n.attrs, tuple(ids[i] for i in n.inputs), n.span, n.scope, n.origins) for n in known
    )
    scopes = tuple(Scope(s.id, s.parent, s.kind, s.label, s.span, ids.get(s.node)) for s in graph.scopes)
    names = tuple((ids[node], label) for node, label in graph.names if node in ids)
    partial = TypedGraph(Graph(nodes, scopes, graph.source, names), tuple(infos[n.id] for n in known))
    ctx = Context(text, module, partial, settings)
    codes = sorted(c for c in settings.codes if not RULES[c].whole_network and not RULES[c].reads_noqa)
    findings = [f for f in _run(ctx, codes) if not _suppressed(ctx, f)]
    return sorted(findings, key=lambda f: (f.span.line, f.span.column, f.code))


def lint_compiled(text: str, name: str, module: Module, typed: TypedGraph, settings: Settings) -> list[Finding]:
    """Lint a spec compiled already (the language server compiles it on its own, with recovery)."""
    ctx = Context(text, module, typed, settings)
    findings = _run(ctx, sorted(settings.codes))
    kept = [f for f in findings if not _suppressed(ctx, f)]
    readers = [RULES[code] for code in sorted(settings.codes) if RULES[code].reads_noqa]
    if readers:
        # A code counts as used when its rule fires on the line, selected here or not: the comment
        # still does its job for a configuration (or a file of per-file-ignores) that selects it.
        every = _run(ctx, [c for c, r in RULES.items() if c not in settings.codes and not r.reads_noqa])
        used: dict[int, set[str]] = {}
        for f in (*findings, *every):
            if _suppressed(ctx, f):
                used.setdefault(f.span.line, set()).add(f.code)
        for reader in readers:
            kept.extend(reader.check_noqa(ctx, used))
    return sorted(kept, key=lambda f: (f.span.line, f.span.column, f.code))


def _run(ctx: Context, codes: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    for code in codes:
        checker = RULES[code]
        groups: dict[Span, list[Violation]] = {}
        for violation in checker.check(ctx):
            groups.setdefault(violation.location, []).append(violation)
        findings.extend(_finding(ctx, checker, group) for group in groups.values())
    return findings


def _finding(ctx: Context, checker: Rule, group: list[Violation]) -> Finding:
    first = group[0]
    node = first.node
    if first.location != node.span:  # reported at a call site, about the whole network
        return Finding(
            checker.code, checker.name, checker.severity, first.message, first.location, first.help, first.fix
        )
    notes: list[str] = []
    if node.origins:
        notes.append(", ".join(expansion_note(o.call, o.span.line) for o in reversed(node.origins)))
    total = len(ctx.expansions(node))
    if len(group) > 1:
        notes.append(
            f"found in all {total} expansions of this line; the message describes the first"
            if len(group) == total
            else f"found in {len(group)} of the {total} expansions of this line; the message describes the first"
        )
    fix = first.fix
    if fix is not None and (len(group) < total or any(v.fix != fix for v in group)):
        fix = None
        notes.append(
            f"no automatic fix: an edit here would change all {total} expansions of this line, "
            f"and the finding holds for {len(group)}"
        )
    return Finding(
        checker.code, checker.name, checker.severity, first.message, node.span, first.help, fix, tuple(notes)
    )


def _suppressed(ctx: Context, finding: Finding) -> bool:
    codes = noqa_codes(ctx.lines.line(finding.span.line))
    return codes is not None and (not codes or finding.code in codes)
