"""Lint kept between versions of a document (the language server's, `archspec.lint.incremental`) finds
what lint finds in the text anew, after any edit: the findings of the statements an edit left alone are
kept, and those of the statements it touched, or that read them, are found again."""

from __future__ import annotations

import random

import pytest

from archspec import templates
from archspec.compile import CheckCache, check_spec
from archspec.lint import RULES, Settings
from archspec.lint.engine import lint_compiled, lint_known
from archspec.lint.incremental import LintCache, lint_incremental
from archspec.source import SourceText
from tests.editing import random_edit

# Something for most per-layer rules, inside a macro (several expansions) and at the top level, with
# named tensors and noqa comments.
MESSY = """def block(f, k=3):
    conv f k padding=same bn
    conv f k padding=same relu relu
    dropout 0.7
    bn

def head(n):
    flatten
    dense 64
    dropout 0.2
    dense n softmax

input 64x64x3
conv 32 7 stride=2 padding=same relu
conv 32 5 padding=same bn relu -> a
lrn
block 32
block 30 k=5
conv 32 3 padding=same relu softmax relu
add:
    @a
    conv 32 1 padding=same
block 32  # noqa: CA401
dropout 0.3
maxpool 2
conv 20 3 padding=same relu  # noqa
conv 24 3 padding=same bn
conv 24 3 padding=same bias=false bn
head 10
sigmoid
"""


def fresh_findings(text: str, settings: Settings):
    checked = check_spec(text, "spec.arch")
    if checked.typed is not None:
        return lint_compiled(text, "spec.arch", checked.module, checked.typed, settings)
    return lint_known(text, "spec.arch", checked.module, checked.graph, checked.infos, settings)


@pytest.mark.parametrize(
    ("name", "seed"), [("messy", 0), ("messy", 1), ("resnet50", 2), ("nasnet-mobile", 3), ("lenet5", 4)]
)
def test_kept_lint_finds_what_lint_finds_anew(name, seed):
    """Random edits (digits, layer lines inserted and deleted, lines moved, broken and fixed...); every
    rule selected on odd seeds, as `--select ALL` (CA901 judges the noqa comments with all of them)."""
    chooser = random.Random(seed)
    text = MESSY if name == "messy" else templates.path(name).read_text(encoding="utf-8")
    settings = Settings(frozenset(RULES)) if seed % 2 else Settings.default()
    lines = text.split("\n")
    cache, lint_cache = CheckCache(), LintCache()
    found_some = False
    for step in range(25):
        edit = random_edit(chooser, lines) if step else "none"
        text = "\n".join(lines)
        checked = check_spec(text, "spec.arch", cache=cache)
        kept = lint_incremental(checked, cache.expansion, text, SourceText("", text), settings, lint_cache)
        assert kept == fresh_findings(text, settings), (name, step, edit)
        found_some = found_some or bool(kept)
    assert found_some


def test_statements_unknown_below_a_broken_line_come_back_with_their_findings():
    """Typing a line breaks the spec below it until the line is whole: what lint found there is kept
    aside meanwhile, and given back (or found again where it changed) when the line is whole."""
    lines = MESSY.split("\n")
    at = lines.index("block 32  # noqa: CA401")
    cache, lint_cache = CheckCache(), LintCache()
    settings = Settings.default()
    for typed in ["", "c", "co", "conv", "conv 24", "conv 24 3", "conv 24 3 x", "conv 24 3 bn", ""]:
        text = "\n".join([*lines[:at], typed, *lines[at:]])
        checked = check_spec(text, "spec.arch", cache=cache)
        kept = lint_incremental(checked, cache.expansion, text, SourceText("", text), settings, lint_cache)
        assert kept == fresh_findings(text, settings), typed
