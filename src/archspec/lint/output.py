"""Lint findings rendered in each output format: `full` (ruff-style diagnostics with the source line
and a caret), `concise` (one line each), `json`, `sarif` (SARIF 2.1.0 for code scanning) and
`github` (workflow annotations); the other CI formats are in `output_ci`. Pure text in, text out.
A spec that could not be checked is a report with an `error`, shown as an error diagnostic.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from archspec.errors import Span, SpecError, UserError
from archspec.lint.engine import RULES, Finding
from archspec.source import SourceText
from archspec.text import excerpt

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


class FileReport(NamedTuple):
    """One linted spec: its display name (a path or a template name), its text, what was found and
    fixed, and whether unsafe fixes were enabled for it (they decide which findings `[*]` marks)."""

    name: str
    text: str
    findings: tuple[Finding, ...]
    fixed: tuple[Finding, ...] = ()
    unsafe_fixes: bool = False
    error: UserError | None = None  # why the spec could not be checked (then there are no findings)

    @property
    def error_span(self) -> Span:
        """Where the error is: its place in the spec, else the first line."""
        span = self.error.span if isinstance(self.error, SpecError) else None
        return span if span is not None else Span(1, 1, 2)

    @property
    def error_text(self) -> str:
        return self.error.message + (f"\nhint: {self.error.hint}" if self.error.hint else "")


def checked(reports: list[FileReport]) -> list[FileReport]:
    return [r for r in reports if r.error is None]


def unchecked(reports: list[FileReport]) -> list[FileReport]:
    return [r for r in reports if r.error is not None]


class _Style:
    """ANSI colours for a terminal, nothing otherwise."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def code(self, text: str) -> str:
        return self(text, "1;31")

    def blue(self, text: str) -> str:
        return self(text, "1;34")

    def bold(self, text: str) -> str:
        return self(text, "1")

    def cyan(self, text: str) -> str:
        return self(text, "1;36")


def _marker(finding: Finding, unsafe_fixes: bool) -> str:
    """`[*]` on a finding `--fix` would repair (as ruff marks them): safe fixes, and unsafe ones when enabled."""
    return " [*]" if finding.applicable(unsafe_fixes) else ""


# --- text formats ----------------------------------------------------------------------------------


def render_full(reports: list[FileReport], color: bool = False, width: int | None = None) -> str:
    """Each finding as `CODE message`, ` --> file:line:col`, the source line with a caret, notes, help;
    with a `width`, the message, notes and help wrap to it."""
    style = _Style(color)
    blocks = []
    for report in reports:
        lines = SourceText(report.name, report.text)
        for finding in report.findings:
            blocks.append(_full(report.name, lines, finding, style, report.unsafe_fixes, width))
    return "".join(block + "\n\n" for block in blocks)


def _wrap(text: str, width: int | None, first: int, indent: str) -> list[str]:
    """`text` in lines of `width`, the first one shortened by `first` characters already printed."""
    import textwrap

    if width is None or first + len(text) <= width:
        return [text]
    wrapped = textwrap.wrap(text, width, initial_indent=" " * first, subsequent_indent=indent, break_on_hyphens=False)
    return [wrapped[0][first:], *wrapped[1:]]


def _full(name: str, lines: SourceText, finding: Finding, style: _Style, unsafe_fixes: bool, columns=None) -> str:
    span = finding.span
    gutter = len(str(span.line))
    pad = " " * gutter
    text, start, width = excerpt(lines.line(span.line), span.column, span.end_column)
    head = f"{finding.code}{_marker(finding, unsafe_fixes)} "
    message, *more = _wrap(finding.message, columns, len(head), "    ")
    out = [
        f"{style.code(finding.code)}{style.cyan(_marker(finding, unsafe_fixes))} {style.bold(message)}",
        *(style.bold(line) for line in more),
        f"{pad}{style.blue('-->')} {name}:{span.line}:{span.column}",
        f"{pad} {style.blue('|')}",
        f"{style.blue(str(span.line))} {style.blue('|')} {text}",
        f"{pad} {style.blue('|')} {' ' * start}{style.code('^' * width)}",
        f"{pad} {style.blue('|')}",
    ]
    for note in finding.notes:
        first, *rest = _wrap(note, columns, len(pad) + 9, pad + "         ")
        out.append(f"{pad} {style.blue('=')} {style.bold('note')}: {first}")
        out.extend(rest)
    if finding.help:
        first, *rest = _wrap(finding.help, columns, 6, "      ")
        out.append(f"{style.cyan('help')}: {first}")
        out.extend(rest)
    return "\n".join(out)


def render_concise(reports: list[FileReport], color: bool = False) -> str:
    """One line per finding: `file:line:col: CODE [*] message`; `file:line:col: error: message` for
    a spec that could not be checked."""
    style = _Style(color)
    errors = "".join(
        f"{style.bold(f'{r.name}:{r.error_span.line}:{r.error_span.column}:')} {style.code('error:')} "
        f"{r.error.message}\n"
        for r in unchecked(reports)
    )
    return errors + "".join(
        f"{style.bold(f'{report.name}:{f.span.line}:{f.span.column}:')} {style.code(f.code)}"
        f"{style.cyan(_marker(f, report.unsafe_fixes))} {f.message}\n"
        for report in reports
        for f in report.findings
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(reports: list[FileReport], errors: int = 0) -> str:
    """`Found 3 findings (1 fixable).`, `Found 2 findings (1 fixed, 1 remaining).` or `All checks passed!`;
    fixes that only `--unsafe-fixes` applies are counted apart (`1 more with --unsafe-fixes`), and
    `errors` specs that could not be checked after it."""
    found = sum(len(r.findings) for r in reports)
    fixed = sum(len(r.fixed) for r in reports)
    fixable = sum(f.applicable(r.unsafe_fixes) for r in reports for f in r.findings)
    hidden = sum(f.fixable for r in reports for f in r.findings) - fixable
    counts = [f"{fixed} fixed, {found} remaining"] if fixed else [f"{fixable} fixable"] if fixable else []
    if hidden:
        counts.append(f"{hidden} {'more ' if counts else ''}fixable with `--unsafe-fixes`")
    if fixed or found or errors:
        line = f"Found {_plural(found + fixed, 'finding')}" + (f" ({'; '.join(counts)})." if counts else ".")
    else:
        return "All checks passed!"
    if errors:
        line += f" {_plural(errors, 'spec')} could not be checked (see the errors above)."
    return line


def render_fixed(reports: list[FileReport]) -> str:
    """What `--fix` changed: `Fixed file:line:col: CODE fix title`, with `(unsafe fix)` after a fix that
    changed the trained network."""
    return "".join(
        f"Fixed {report.name}:{f.span.line}:{f.span.column}: {f.code} {f.fix.title}"
        f"{'' if f.fix.safe else ' (unsafe fix)'}\n"
        for report in reports
        for f in report.fixed
    )


def render_available_fixes(reports: list[FileReport]) -> str:
    """`--show-fixes`: what `--fix` would do for each remaining finding with an applicable fix."""
    lines = [
        f"  {report.name}:{f.span.line}:{f.span.column}: {f.code} {f.fix.title}{'' if f.fix.safe else ' (unsafe fix)'}"
        for report in reports
        for f in report.findings
        if f.applicable(report.unsafe_fixes)
    ]
    return "Fixes available:\n" + "\n".join(lines) + "\n" if lines else ""


# --- machine formats ---------------------------------------------------------------------------------


def _position(line: int, column: int) -> dict:
    return {"row": line, "column": column}


def render_json(reports: list[FileReport]) -> str:
    import json

    return json.dumps(json_items(reports), indent=2) + "\n"


def json_items(reports: list[FileReport]) -> list[dict]:
    """One JSON object per finding, and one (`code` null, `severity` "error") per unchecked spec."""
    items = [
        {
            "code": None,
            "name": "spec-error",
            "severity": "error",
            "message": r.error.message,
            "help": r.error.hint,
            "notes": [],
            "filename": r.name,
            "location": _position(r.error_span.line, r.error_span.column),
            "end_location": _position(r.error_span.line, r.error_span.end_column or r.error_span.column + 1),
            "noqa_row": None,
            "fix": None,
        }
        for r in unchecked(reports)
    ]
    for report in checked(reports):
        for f in report.findings:
            end = f.span.end_column or f.span.column + 1
            items.append(
                {
                    "code": f.code,
                    "name": f.name,
                    "severity": f.severity,
                    "message": f.message,
                    "help": f.help,
                    "notes": list(f.notes),
                    "filename": report.name,
                    "location": _position(f.span.line, f.span.column),
                    "end_location": _position(f.span.line, end),
                    "noqa_row": f.span.line,
                    "fix": None
                    if f.fix is None
                    else {
                        "applicability": _applicability(f),
                        "message": f.fix.title,
                        "edits": [
                            {
                                "content": e.content,
                                "location": _position(e.line, e.column),
                                "end_location": _position(e.end_line, e.end_column),
                            }
                            for e in f.fix.edits
                        ],
                    },
                }
            )
    return items


def _applicability(finding: Finding) -> str:
    return "safe" if finding.fix.safe else "unsafe"


SARIF_LEVELS = {"warning": "warning", "info": "note", "error": "error"}


def _uri(name: str) -> str:
    from urllib.parse import quote

    path = Path(name)
    return path.as_uri() if path.is_absolute() else quote(path.as_posix())


def _region(line: int, column: int, end_line: int, end_column: int) -> dict:
    return {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column}


def render_sarif(reports: list[FileReport]) -> str:
    """A SARIF 2.1.0 log with one run: every rule in `tool.driver.rules`, one result per finding."""
    import json

    from archspec import __version__

    codes = list(RULES)
    rules = [
        {
            "id": r.code,
            "name": r.name,
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": r.docs},
            "help": {"text": r.docs, "markdown": r.docs},
            "defaultConfiguration": {"level": SARIF_LEVELS[r.severity]},
            "properties": {"fixable": r.fixable},
        }
        for r in RULES.values()
    ]
    results, notifications = [], []
    for report in unchecked(reports):
        span = report.error_span
        location = {
            "physicalLocation": {
                "artifactLocation": {"uri": _uri(report.name)},
                "region": _region(span.line, span.column, span.line, span.end_column or span.column + 1),
            }
        }
        message = {"text": report.error_text}
        results.append({"ruleId": "spec-error", "level": "error", "message": message, "locations": [location]})
        notifications.append({"level": "error", "message": message, "locations": [location]})
    for report in checked(reports):
        uri = _uri(report.name)
        for f in report.findings:
            end = f.span.end_column or f.span.column + 1
            result = {
                "ruleId": f.code,
                "ruleIndex": codes.index(f.code),
                "level": SARIF_LEVELS[f.severity],
                "message": {"text": f.message + (f"\nhelp: {f.help}" if f.help else "")},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": uri},
                            "region": _region(f.span.line, f.span.column, f.span.line, end),
                        }
                    }
                ],
            }
            if f.fix is not None:
                result["fixes"] = [
                    {
                        "description": {"text": f.fix.title},
                        "properties": {"applicability": _applicability(f)},
                        "artifactChanges": [
                            {
                                "artifactLocation": {"uri": uri},
                                "replacements": [
                                    {
                                        "deletedRegion": _region(e.line, e.column, e.end_line, e.end_column),
                                        "insertedContent": {"text": e.content},
                                    }
                                    for e in f.fix.edits
                                ],
                            }
                        ],
                    }
                ]
            results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "cnn-arch", "version": __version__, "rules": rules}},
                "invocations": [
                    {"executionSuccessful": not notifications, "toolExecutionNotifications": notifications}
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


GITHUB_LEVELS = {"warning": "warning", "info": "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(reports: list[FileReport]) -> str:
    """GitHub Actions workflow commands: `::warning file=...,line=...,col=...,title=CODE::message`;
    `::error ...` for a spec that could not be checked."""
    out = []
    for report in unchecked(reports):
        span = report.error_span
        properties = f"file={_escape_property(report.name)},line={span.line},col={span.column},title=spec error"
        out.append(f"::error {properties}::{_escape_data(report.error_text)}\n")
    for report in checked(reports):
        for f in report.findings:
            end = f.span.end_column or f.span.column + 1
            properties = ",".join(
                [
                    f"file={_escape_property(report.name)}",
                    f"line={f.span.line}",
                    f"col={f.span.column}",
                    f"endLine={f.span.line}",
                    f"endColumn={end}",
                    f"title={f.code}",
                ]
            )
            message = f.message + (f"\nhelp: {f.help}" if f.help else "")
            out.append(f"::{GITHUB_LEVELS[f.severity]} {properties}::{_escape_data(message)}\n")
    return "".join(out)
