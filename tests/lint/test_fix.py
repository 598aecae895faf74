"""Fixes: text edits that keep the rest of the spec as written, and never break it. The property
test applies every fix of every fixture and every template on its own and checks the result."""

from __future__ import annotations

import pytest

from archspec import templates
from archspec.compile import compile_spec
from archspec.errors import Span
from archspec.lint import RULES
from archspec.lint.engine import Finding, Settings
from archspec.lint.fix import Edit, Fix, apply_edits, apply_fixes, fix_source
from tests.conftest import spec
from tests.lint.support import FIXTURES, lint, sections

ALL = Settings(frozenset(RULES), unsafe_fixes=True)  # these tests apply every fix; which are safe: test_cli


def _specs() -> list:
    cases = [
        pytest.param(text, id=f"{path.stem}:{title[:40]}")
        for path in sorted(FIXTURES.glob("*.arch"))
        for title, text in sections(path)
    ]
    cases += [
        pytest.param(templates.path(name).read_text(encoding="utf-8"), id=f"template:{name}")
        for name in templates.names()
    ]
    return cases


@pytest.mark.parametrize("text", _specs())
def test_every_fix_compiles_and_removes_its_finding(text):
    for finding in lint(text):
        if finding.fix is None:
            continue
        fixed = apply_edits(text, finding.fix.edits)
        compile_spec(fixed, "fixed.arch")  # raises if the fix broke the spec
        before = lint(text, finding.code)
        after = lint(fixed, finding.code)
        assert len(after) < len(before), f"{finding.code} still fires as often after its fix"
        if not any(e.end_line > e.line for e in finding.fix.edits):  # no line removed: positions comparable
            assert (finding.span.line, finding.span.column) not in {(f.span.line, f.span.column) for f in after}


def test_edits_apply_right_to_left_and_keep_comments():
    text = "input 16  # the input\ndense 1 softmax  # head\n"
    edits = [Edit(2, 9, 2, 16, "sigmoid"), Edit(1, 7, 1, 9, "32")]
    assert apply_edits(text, edits) == "input 32  # the input\ndense 1 sigmoid  # head\n"


def test_fix_keeps_windows_line_endings():
    text = "input 16\r\n# classifier\r\ndense 1 softmax\r\n"
    outcome = fix_source(text, "crlf.arch", ALL)
    assert outcome.text == "input 16\r\n# classifier\r\ndense 1 sigmoid\r\n"
    assert [f.code for f in outcome.fixed] == ["CA103"]


def test_fix_loop_runs_until_nothing_is_left_to_fix():
    text = spec("""
        input 32x32x3
        conv 32 3 relu relu relu  # three in a row
        lrn
        dropout 0.2
        bn
        gap
        dense 10 softmax
    """)
    outcome = fix_source(text, "t.arch", ALL)
    assert outcome.text == spec("""
        input 32x32x3
        conv 32 3 relu  # three in a row
        bn
        gap
        dropout 0.2
        dense 10 softmax
    """)
    assert sorted(f.code for f in outcome.fixed) == ["CA301", "CA303", "CA304", "CA402", "CA402"]
    assert [f.code for f in outcome.remaining] == ["CA501"]


def test_a_fix_that_would_break_the_spec_is_dropped():
    text = "input 16\ndense 1 softmax\n"
    good = lint(text, "CA103")[0]
    broken = Finding("CA999", "broken", "warning", "x", Span(1, 1, 6), fix=Fix("break", (Edit(1, 1, 1, 6, "inptu"),)))
    fixed, applied = apply_fixes(text, "t.arch", [broken, good])
    assert applied == [good]
    assert fixed == "input 16\ndense 1 sigmoid\n"


def test_overlapping_fixes_wait_for_the_next_pass():
    text = "input 16\ndense 1 softmax\n"
    first = lint(text, "CA103")[0]
    rival = first._replace(fix=Fix("other", (Edit(2, 9, 2, 16, "linear"),)))
    fixed, applied = apply_fixes(text, "t.arch", [first, rival])
    assert applied == [first] and fixed == "input 16\ndense 1 sigmoid\n"


def test_bias_fix_inserts_before_trailing_words_or_at_the_end():
    text = spec("""
        input 32x32x3
        conv 32 3 stride=2 bn relu x2  # stem
        conv 32 3
        bn
        conv 16 3 bias=true bn
        gap
        dense 10 softmax
    """)
    outcome = fix_source(text, "t.arch", Settings(frozenset({"CA302"}), unsafe_fixes=True))
    assert outcome.text == spec("""
        input 32x32x3
        conv 32 3 stride=2 bias=false bn relu x2  # stem
        conv 32 3 bias=false
        bn
        conv 16 3 bias=false bn
        gap
        dense 10 softmax
    """)


def test_missing_activation_is_added_after_trailing_bn_before_the_repeat():
    text = spec("""
        input 32x32x3
        conv 32 3 padding=same bn x2
        conv 32 3 padding=same bn silu
        gap
        dense 10 softmax
    """)
    outcome = fix_source(text, "t.arch", Settings(frozenset({"CA401"}), unsafe_fixes=True))
    assert "conv 32 3 padding=same bn silu x2\n" in outcome.text  # the spec's own activation
