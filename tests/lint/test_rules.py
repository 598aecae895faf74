"""Every rule: its fixture flags exactly the lines marked `# bad`, its docs have the four ruff parts,
and its own Example fires while its "Use instead" does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archspec.lint import RULES
from tests.lint.support import FIXTURES, lint, marked, sections

CODES = list(RULES)


@pytest.mark.parametrize("code", CODES)
def test_fixture_flags_exactly_the_bad_lines(code):
    path = FIXTURES / f"{code}.arch"
    assert path.exists(), f"every rule needs a fixture: {path}"
    cases = sections(path)
    assert any(marked(text) for _, text in cases), "a fixture starts with bad cases"
    assert any(marked(text, "# OK") for _, text in cases), "and ends with near misses marked # OK"
    for title, text in cases:
        flagged = {f.span.line for f in lint(text, code)}
        assert flagged == marked(text), f"{code} section '{title}'"


@pytest.mark.parametrize("code", CODES)
def test_rule_metadata_and_docs(code):
    rule = RULES[code]
    assert re.fullmatch(r"CA[1-59]\d\d", rule.code)
    assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)+", rule.name)
    headings = re.findall(r"^## (.+)$", rule.docs, re.M)
    assert headings[:4] == ["What it does", "Why is this bad?", "Example", "Use instead"]
    assert rule.summary.endswith(".") and len(rule.summary) < 120
    assert rule.severity in ("warning", "info")


@pytest.mark.parametrize("code", CODES)
def test_fixable_rules_say_whether_their_fix_is_safe_and_why(code):
    rule = RULES[code]
    safety = re.search(r"^## Fix safety\n(.+?)(\n## |\Z)", rule.docs, re.M | re.S)
    assert (safety is not None) == rule.fixable
    if safety:
        assert re.search(r"\b(safe|unsafe)\b", safety.group(1)) and ":" in safety.group(1)


def test_names_are_unique():
    assert len({r.name for r in RULES.values()}) == len(RULES)


def test_docs_table_lists_every_rule():
    docs = (Path(__file__).parents[2] / "docs" / "lint.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (CA\d+) \| `([a-z-]+)` \|\s*(yes)?\s*\| (yes|opt-in) \|", docs, re.M)
    assert [(code, name, bool(fix), default == "yes") for code, name, fix, default in rows] == [
        (r.code, r.name, r.fixable, r.default) for r in RULES.values()
    ]


def _example(docs: str, heading: str) -> str:
    block = re.search(rf"## {re.escape(heading)}\n```\n(.*?)```", docs, re.S).group(1)
    return block if block.startswith("input") else "input 224x224x3\n" + block


@pytest.mark.parametrize("code", CODES)
def test_docs_example_fires_and_use_instead_does_not(code):
    docs = RULES[code].docs
    assert lint(_example(docs, "Example"), code), "the Example must show the problem"
    assert not lint(_example(docs, "Use instead"), code), "the Use instead must fix it"
