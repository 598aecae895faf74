"""Applying fixes: their edits (`archspec.lint.edits`) go in right to left, and a fix is kept only
when the edited spec still parses and infers. `fix_source` repeats lint-then-fix until nothing is
left to fix. Edits touch only the words a fix is about, so comments, blank lines, indentation and
the file's line endings stay as written.
"""

from __future__ import annotations

from typing import NamedTuple

from archspec.compile import compile_spec
from archspec.errors import SpecError
from archspec.lint.edits import Edit, Fix
from archspec.lint.engine import Finding, Settings, lint_source
from archspec.source import SourceText

MAX_PASSES = 20  # each pass fixes every non-overlapping finding; later passes pick up what overlapped


# --- applying them -------------------------------------------------------------------------------


def apply_edits(text: str, edits) -> str:
    """Apply non-overlapping edits, right to left so earlier offsets stay valid."""
    lines = SourceText("", text)
    ranges = sorted(
        ((lines.offset(e.line, e.column), lines.offset(e.end_line, e.end_column), e.content) for e in edits),
        reverse=True,
    )
    for start, end, content in ranges:
        text = text[:start] + content + text[end:]
    return text


def _ranges(lines: SourceText, fix: Fix) -> list[tuple[int, int]]:
    return [(lines.offset(e.line, e.column), lines.offset(e.end_line, e.end_column)) for e in fix.edits]


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return (a[0] < b[1] and b[0] < a[1]) or a[0] == b[0]


def _non_overlapping(text: str, findings: list[Finding]) -> list[Finding]:
    lines = SourceText("", text)
    taken: list[tuple[int, int]] = []
    chosen = []
    for finding in findings:
        ranges = _ranges(lines, finding.fix)
        if any(_overlap(r, t) for r in ranges for t in taken):
            continue
        taken.extend(ranges)
        chosen.append(finding)
    return chosen


def _compiles(text: str, name: str, input_shape) -> bool:
    try:
        compile_spec(text, name, input_shape)
    except SpecError:
        return False
    return True


def _edits(findings: list[Finding]) -> list[Edit]:
    return [edit for finding in findings for edit in finding.fix.edits]


def apply_fixes(text: str, name: str, findings: list[Finding], input_shape=None) -> tuple[str, list[Finding]]:
    """Apply the fixes of `findings` that do not overlap; drop any whose result fails to parse or infer.

    Returns the new text and the findings whose fixes were applied.
    """
    chosen = _non_overlapping(text, [f for f in findings if f.fix is not None])
    if not chosen:
        return text, []
    edited = apply_edits(text, _edits(chosen))
    if _compiles(edited, name, input_shape):
        return edited, chosen
    good = [f for f in chosen if _compiles(apply_edits(text, f.fix.edits), name, input_shape)]
    if len(good) > 1:
        edited = apply_edits(text, _edits(good))
        if _compiles(edited, name, input_shape):
            return edited, good
    if good:
        return apply_edits(text, good[0].fix.edits), good[:1]
    return text, []


class FixOutcome(NamedTuple):
    text: str  # the spec after every fix that applied
    fixed: tuple[Finding, ...]  # located in the text of the pass that fixed them
    remaining: tuple[Finding, ...]  # located in `text`


def fix_source(text: str, name: str, settings: Settings, input_shape=None) -> FixOutcome:
    """Lint and fix until no fixable finding is left (or a fix would break the spec). Unsafe fixes
    apply only with `settings.unsafe_fixes`.

    Raises `SpecError` when the original spec does not compile.
    """
    fixed: list[Finding] = []
    findings = lint_source(text, name, settings, input_shape)
    for _ in range(MAX_PASSES):
        applicable = [f for f in findings if f.applicable(settings.unsafe_fixes)]
        text, applied = apply_fixes(text, name, applicable, input_shape)
        if not applied:
            break
        fixed.extend(applied)
        findings = lint_source(text, name, settings, input_shape)
    return FixOutcome(text, tuple(fixed), tuple(findings))
