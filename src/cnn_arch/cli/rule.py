"""`cnn-arch rule`: a lint rule's documentation (`cnn-arch rule CA101`), or the table of all rules."""

from __future__ import annotations

import sys
from enum import Enum

import typer


class RuleFormat(str, Enum):
    text = "text"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command("rule")(rule_command)


def rule_command(
    code: str = typer.Argument(None, metavar="CODE", help="A rule code (CA101) or name (flatten-dense-head)."),
    all: bool = typer.Option(False, "--all", help="List every rule: code, name, fix, summary."),
    output_format: RuleFormat = typer.Option(
        RuleFormat.text, "--output-format", "--format", help="text, or json as ruff's `rule --output-format json`."
    ),
) -> None:
    """Explain a lint rule: what it checks, why, an example and the fix."""
    from archspec.errors import UserError

    if output_format is RuleFormat.json:
        import json

        from archspec.lint import RULES

        value = [rule_json(r) for r in RULES.values()] if all else rule_json(find_rule(code)) if code else None
        if value is not None:
            sys.stdout.write(json.dumps(value, indent=2) + "\n")
            return
    if all:
        from cnn_arch.cli.output import terminal_width

        sys.stdout.write(rule_table(terminal_width()))
        return
    if code is None:
        raise UserError("give a rule code, e.g. `cnn-arch rule CA101`", hint="`cnn-arch rule --all` lists every rule")
    text = rule_docs(find_rule(code))
    if sys.stdout.isatty():
        from rich.markdown import Markdown

        from cnn_arch.cli.output import stdout_console

        stdout_console().print(Markdown(text))
    else:
        sys.stdout.write(text + "\n")


def find_rule(code: str):
    """The rule with this code or name; a did-you-mean `UserError` otherwise."""
    from archspec.errors import UserError
    from archspec.lint import RULES
    from archspec.lint.engine import rule_by_name
    from archspec.text import did_you_mean

    key = code.strip()
    by_name = rule_by_name()
    found = RULES.get(key.upper()) or by_name.get(key.lower())
    if found is not None:
        return found
    hint = (
        did_you_mean(key.upper(), RULES)
        or did_you_mean(key.lower(), by_name)
        or "`cnn-arch rule --all` lists every rule"
    )
    raise UserError(f"unknown rule `{code}`", hint=hint)


def rule_docs(rule) -> str:
    """The rule's page, in Markdown: title, fix availability, default selection, then its docstring."""
    fix = f"Fix is available: {rule.fix_title}. See Fix safety." if rule.fixable else "No automatic fix."
    selected = "Selected by default." if rule.default else f"Not selected by default: `--extend-select {rule.code}`."
    return f"# {rule.name} ({rule.code})\n\n{fix} Severity: {rule.severity}. {selected}\n\n{rule.docs}"


def rule_json(rule) -> dict:
    """A rule as ruff's JSON rule entry: name, code, summary, fix availability, full explanation."""
    import re

    fix = "none"
    safety = re.search(r"## Fix safety\s+(.+?[.:])", rule.docs, re.S)
    if rule.fixable and safety:  # the first sentence of Fix safety says which
        first = " ".join(safety.group(1).split())
        fix = "unsafe" if "is unsafe" in first else "sometimes" if "is safe for" in first else "safe"
    return {
        "name": rule.name,
        "code": rule.code,
        "summary": rule.summary,
        "severity": rule.severity,
        "default": rule.default,
        "fix": fix,
        "fix_title": rule.fix_title,
        "explanation": rule.docs,
    }


def rule_table(width: int | None = None) -> str:
    """Every rule: code, name, `[*]` when fixable, `opt-in` when not selected by default, summary; with a
    `width`, the summary wraps under its column."""
    import textwrap

    from archspec.lint import RULES
    from archspec.text import table

    headers = ("Code", "Name", "Fix", "Default", "Summary")
    rows = [(r.code, r.name, "[*]" if r.fixable else "", "yes" if r.default else "opt-in") for r in RULES.values()]
    lines = table(headers[:4], rows, separator="  ", rule=None)
    column = max(len(line) for line in lines) + 2
    room = max(20, width - column) if width else None
    out = [lines[0].ljust(column) + headers[4]]
    for line, rule in zip(lines[1:], RULES.values()):
        parts = textwrap.wrap(rule.summary, room) if room else [rule.summary]
        out.append(line.ljust(column) + parts[0])
        out.extend(" " * column + part for part in parts[1:])
    return "\n".join(out) + "\n"
