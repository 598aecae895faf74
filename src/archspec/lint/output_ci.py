"""The other CI output formats of lint, as ruff names them: `json-lines`, `junit`, `gitlab` (Code
Quality), `pylint` and `grouped`, and the `--statistics` table. Pure text in, text out.
"""

from __future__ import annotations

import json

from archspec.lint.output import FileReport, _marker, checked, json_items, unchecked
from archspec.text import table


def render_json_lines(reports: list[FileReport]) -> str:
    """One JSON object per line, the same objects as the `json` format."""
    return "".join(json.dumps(item) + "\n" for item in json_items(reports))


def render_junit(reports: list[FileReport]) -> str:
    """A JUnit XML report: a test suite per spec, a failing test case per finding (an error case
    for a spec that could not be checked), a passing one for a clean spec."""
    from xml.sax.saxutils import escape, quoteattr

    suites = []
    for report in reports:
        cases = []
        if report.error is not None:
            span = report.error_span
            cases.append(
                f"    <testcase name={quoteattr(f'spec-error at {span.line}:{span.column}')} "
                f"classname={quoteattr(report.name)}>\n"
                f"      <error message={quoteattr(report.error.message)}>{escape(report.error_text)}</error>\n"
                "    </testcase>"
            )
        for f in report.findings:
            where = f"{report.name}:{f.span.line}:{f.span.column}"
            cases.append(
                f"    <testcase name={quoteattr(f'{f.code} at {f.span.line}:{f.span.column}')} "
                f"classname={quoteattr(report.name)}>\n"
                f"      <failure message={quoteattr(f.message)}>{escape(f'{where}: {f.code} {f.message}')}</failure>\n"
                "    </testcase>"
            )
        if not cases:
            cases.append(f'    <testcase name="lint" classname={quoteattr(report.name)}/>')
        failures = len(report.findings)
        errors = int(report.error is not None)
        suites.append(
            f"  <testsuite name={quoteattr(report.name)} tests={quoteattr(str(max(1, failures + errors)))} "
            f'failures="{failures}" errors="{errors}">\n' + "\n".join(cases) + "\n  </testsuite>"
        )
    failures = sum(len(r.findings) for r in reports)
    errors = len(unchecked(reports))
    tests = sum(max(1, len(r.findings) + (r.error is not None)) for r in reports)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites name="cnn-arch lint" tests="{tests}" failures="{failures}" errors="{errors}">\n'
        + "".join(suite + "\n" for suite in suites)
        + "</testsuites>\n"
    )


GITLAB_SEVERITIES = {"warning": "minor", "info": "info", "error": "blocker"}


def render_gitlab(reports: list[FileReport]) -> str:
    """A GitLab Code Quality report: a JSON list of issues with a stable fingerprint each."""
    import hashlib

    issues = []
    for item in json_items(reports):
        key = f"{item['filename']}:{item['code']}:{item['message']}:{item['location']['row']}"
        issues.append(
            {
                "description": f"{item['code'] or 'spec-error'}: {item['message']}",
                "check_name": item["code"] or "spec-error",
                "severity": GITLAB_SEVERITIES[item["severity"]],
                "fingerprint": hashlib.sha256(key.encode("utf-8")).hexdigest()[:32],
                "location": {
                    "path": item["filename"],
                    "lines": {"begin": item["location"]["row"], "end": item["end_location"]["row"]},
                },
            }
        )
    return json.dumps(issues, indent=2) + "\n"


def render_pylint(reports: list[FileReport]) -> str:
    """`file:line: [CODE] message`, the format pylint's parsers (and editors' problem matchers) read."""
    errors = [f"{r.name}:{r.error_span.line}: [E] {r.error.message}\n" for r in unchecked(reports)]
    return "".join(errors) + "".join(
        f"{r.name}:{f.span.line}: [{f.code}] {f.message}\n" for r in checked(reports) for f in r.findings
    )


def render_grouped(reports: list[FileReport]) -> str:
    """Findings under their file's name, one indented line each (`  line:col CODE [*] message`)."""
    blocks = []
    for report in reports:
        lines = []
        if report.error is not None:
            span = report.error_span
            lines.append(f"  {span.line}:{span.column} error: {report.error.message}")
        lines.extend(
            f"  {f.span.line}:{f.span.column} {f.code}{_marker(f, report.unsafe_fixes)} {f.message}"
            for f in report.findings
        )
        if lines:
            blocks.append(f"{report.name}:\n" + "\n".join(lines) + "\n")
    return "".join(block + "\n" for block in blocks)


def render_statistics(reports: list[FileReport], as_json: bool = False) -> str:
    """How many findings per rule, most frequent first, with `[*]` when `--fix` repairs them all."""
    from archspec.lint import RULES

    counts: dict[str, list[int]] = {}
    for report in checked(reports):
        for f in report.findings:
            entry = counts.setdefault(f.code, [0, 0])
            entry[0] += 1
            entry[1] += f.applicable(report.unsafe_fixes)
    order = sorted(counts, key=lambda code: (-counts[code][0], code))
    if as_json:
        rows = [
            {"code": c, "name": RULES[c].name, "count": counts[c][0], "fixable": counts[c][1] == counts[c][0]}
            for c in order
        ]
        return json.dumps(rows, indent=2) + "\n"
    rows = [(str(counts[c][0]), c, "[*]" if counts[c][1] == counts[c][0] else "", RULES[c].name) for c in order]
    return "".join(line + "\n" for line in table(("", "", "", ""), rows, right={0}, separator="  ", rule=None)[1:])
