"""Random specs built from layer lines that trip the rules: lint never crashes, every output format
renders, and every fix, alone or all together, leaves a spec that compiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from archspec.compile import compile_spec
from archspec.errors import SpecError
from archspec.lint import RULES, Settings, lint_source
from archspec.lint.fix import apply_edits, fix_source
from archspec.lint.output import FileReport, render_full, render_github, render_json, render_sarif

LINES = [
    "conv 8 3 padding=same",
    "conv 8 3 padding=same bn relu",
    "conv 8 5 padding=same relu relu",
    "conv 8 1 bn x2",
    "dwconv 3 padding=same bn",
    "sepconv 8 3 padding=same relu",
    "maxpool 2 padding=same",
    "avgpool 2 padding=same",
    "bn",
    "lrn",
    "relu",
    "relu",
    "sigmoid",
    "dropout 0.3",
    "dropout 0.7",
    "zeropad 1",
    "blk",
    "blk 8 x2",
    "add:\n    identity\n    conv 8 3 padding=same bn",
    "repeat 2:\n    conv 8 3 padding=same",
]
HEADS = [
    "",
    "gap\ndense 10 softmax",
    "flatten\ndense 32\ndense 10 softmax",
    "dropout 0.5\ngap\ndense 10 sigmoid",
    "dense 1 softmax relu",
    "flatten\ndropout 0.2\nbn\ndense 10 softmax softmax",
]
ALL = Settings(frozenset(RULES), unsafe_fixes=True)  # these tests apply every fix; which are safe: test_cli
FUZZ = settings(
    max_examples=int(os.environ.get("CNN_ARCH_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def specs(draw):
    body = draw(st.lists(st.sampled_from(LINES), min_size=1, max_size=12))
    macro = draw(
        st.lists(
            st.sampled_from([line for line in LINES if "\n" not in line and "blk" not in line]), min_size=1, max_size=3
        )
    )
    head = draw(st.sampled_from(HEADS))
    return (
        "def blk(f=8):\n"
        + "".join(f"    {line}\n" for line in macro)
        + "input 16x16x8\n"
        + "\n".join(body)
        + "\n"
        + head
        + "\n"
    )


@pytest.mark.slow  # about 6 s of generated specs, each linted, rendered four ways and fixed
@FUZZ
@given(specs())
def test_lint_and_fix_random_specs(text):
    try:
        compile_spec(text, "fuzz.arch")
    except SpecError:
        assume(False)
    findings = lint_source(text, "fuzz.arch", ALL)
    report = [FileReport("fuzz.arch", text, tuple(findings))]
    for render in (render_full, render_json, render_sarif, render_github):
        render(report)
    for finding in findings:
        if finding.fix is not None:
            compile_spec(apply_edits(text, finding.fix.edits), "fixed.arch")
    outcome = fix_source(text, "fuzz.arch", ALL)
    compile_spec(outcome.text, "fixed.arch")
    assert not [f for f in outcome.remaining if f.fixable], outcome.text
