"""CA901 unused-noqa: a `# noqa` comment that suppresses nothing (ruff's RUF100)."""

from __future__ import annotations

from archspec.errors import Span
from archspec.lint.edits import Edit, Fix
from archspec.lint.engine import _NOQA, RULES, Finding, Rule, noqa_codes, rule


@rule
class UnusedNoqa(Rule):
    """## What it does
    Checks for `# noqa` comments that suppress nothing.

    It reports unknown codes, and codes (or a bare `# noqa`) on a line where no rule, selected or
    not, reports a finding.

    ## Why is this bad?
    A stale `# noqa` hides the next real finding on its line, and a misspelt code suppresses nothing
    while looking as if it did. Like ruff's RUF100, this rule runs after the others, on what they
    actually reported. It is not selected by default (`--extend-select CA901`), as RUF100 is not.

    ## Example
    ```
    input 32x32x3
    conv 32 3 relu  # noqa: CA101
    gap
    dense 10 softmax
    ```

    ## Use instead
    ```
    input 32x32x3
    conv 32 3 relu
    gap
    dense 10 softmax
    ```

    ## Fix safety
    This fix is safe: it only edits a comment, removing the unused codes (or the whole comment when
    none is used), so the network is the same.
    """

    code = "CA901"
    name = "unused-noqa"
    severity = "info"
    fix_title = "Remove the unused `# noqa` codes"
    default = False

    reads_noqa = True

    def check(self, ctx):
        return ()  # runs after the other rules, in `check_noqa`

    def check_noqa(self, ctx, used):
        return unused_noqa(ctx, used)


def unused_noqa(ctx, used: dict[int, set[str]]) -> list[Finding]:
    """One finding per `# noqa` comment with codes that suppressed nothing; `used` maps a line to the
    codes of the findings suppressed on it."""
    me = RULES[UnusedNoqa.code]
    found = []
    for number in range(1, len(ctx.lines) + 1):
        text = ctx.lines.line(number)
        codes = noqa_codes(text)
        if codes is None:
            continue
        match = _NOQA.search(text, text.find("#"))
        span = Span(number, match.start() + 1, match.end() + 1)
        hit = used.get(number, set())
        if not codes:
            if not hit:
                found.append(_finding(me, span, "Unused blanket `noqa` directive", _removal(number, text, match, ())))
            continue
        unknown = sorted(c for c in codes if c not in RULES)
        unused = sorted(c for c in codes if c in RULES and c not in hit)
        if not (unknown or unused):
            continue
        parts = [f"{label}: {', '.join(group)}" for label, group in (("unused", unused), ("unknown", unknown)) if group]
        keep = tuple(c for c in sorted(codes) if c in hit)
        found.append(
            _finding(me, span, f"Unused `noqa` directive ({'; '.join(parts)})", _removal(number, text, match, keep))
        )
    return found


def _finding(me: Rule, span: Span, message: str, fix: Fix) -> Finding:
    help = "Remove the unused codes" if "(" in message else "Remove the `# noqa` comment"
    return Finding(me.code, me.name, me.severity, message, span, help, fix)


def _removal(number: int, text: str, match, keep: tuple[str, ...]) -> Fix:
    """Keep the used codes; with none left, drop the comment and the blanks before it."""
    start, end = match.start(), match.end()
    if keep:
        content = f"# noqa: {', '.join(keep)}"
    else:
        content = ""
        while start > 0 and text[start - 1] in " \t":
            start -= 1
    return Fix(UnusedNoqa.fix_title, (Edit(number, start + 1, number, end + 1, content),), safe=True)
