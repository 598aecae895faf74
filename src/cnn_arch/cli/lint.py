"""`cnn-arch lint`: design findings with rule codes, ruff-style; `--fix` and `--diff` rewrite specs
with the safe fixes, and with `--unsafe-fixes` also with those that change the trained network.

Exit codes: 0 clean, 1 findings (or, with `--diff`, changes to make), 2 usage or spec errors.
Spec errors are printed and the other specs still linted.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import NamedTuple

import typer

from archspec.head import DENSE_SHARE_THRESHOLD


class OutputFormat(str, Enum):
    full = "full"
    concise = "concise"
    json = "json"
    sarif = "sarif"
    github = "github"


def register(app: typer.Typer) -> None:
    app.command("lint")(lint_command)


def lint_command(
    paths: list[str] = typer.Argument(
        None,
        metavar="[PATH]...",
        help="Spec files, folders (every *.arch under them) or built-in template names. Default: the current folder.",
    ),
    select: list[str] = typer.Option(
        None,
        "--select",
        metavar="CODES",
        help="Rules to check, replacing the configured set: codes or prefixes (CA1 = CA1xx, ALL), comma-separated.",
    ),
    ignore: list[str] = typer.Option(None, "--ignore", metavar="CODES", help="Rules to skip (codes or prefixes)."),
    extend_select: list[str] = typer.Option(
        None, "--extend-select", metavar="CODES", help="Rules to check on top of the configured set."
    ),
    fix: bool = typer.Option(False, "--fix", help="Apply the safe fixes, rewriting spec files in place."),
    unsafe_fixes: bool = typer.Option(
        None,
        "--unsafe-fixes/--no-unsafe-fixes",
        help="Also apply the fixes that change the trained network (most do: see each rule's Fix safety).",
    ),
    diff: bool = typer.Option(False, "--diff", help="Print the fixes as a unified diff and write nothing."),
    output_format: OutputFormat = typer.Option(OutputFormat.full, "--output-format", help="How to print findings."),
    config: Path = typer.Option(
        None,
        "--config",
        metavar="PATH",
        help="Read [tool.cnn-arch.lint] from this TOML file instead of the nearest pyproject.toml.",
    ),
    dense_share_threshold: float = typer.Option(
        None,
        "--dense-share-threshold",
        min=0.0,
        max=1.0,
        metavar="SHARE",
        help=f"CA101: report a dense head holding more than this share of the parameters. Default: {DENSE_SHARE_THRESHOLD}.",
    ),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="Override the specs' input shape."),
) -> None:
    """Check specs for design problems, with rule codes (`cnn-arch rule --all` lists them)."""
    from archspec.errors import SpecError, UserError
    from archspec.interop.keras_check import is_python, lint_python
    from archspec.lint import config as lint_config
    from archspec.lint.engine import lint_source
    from archspec.lint.fix import FixOutcome, fix_source
    from archspec.lint.output import FileReport
    from cnn_arch.cli.common import parse_shape
    from cnn_arch.cli.output import print_error

    cli_options = lint_config.Options(
        lint_config.Selection(
            select=lint_config.selectors(select) if select else None,
            ignore=lint_config.selectors(ignore),
            extend_select=lint_config.selectors(extend_select),
        ),
        dense_share_threshold,
        unsafe_fixes,
    )
    input_shape = parse_shape(input)
    targets = _targets(paths or ["."])
    if fix and not diff:
        templates = [t.name for t in targets if t.path is None]
        if templates:
            raise UserError(
                f"`{templates[0]}` is a built-in template, which --fix cannot rewrite",
                hint=f"make your own copy with `cnn-arch new {templates[0]}`, then lint --fix that file",
            )
    if (fix or diff) and any(is_python(t.name) for t in targets):
        raise UserError(
            "--fix and --diff rewrite specs, not Python",
            hint="`cnn-arch import model.py -o model.arch`, then lint --fix the spec",
        )
    options = _options(targets, config)  # config errors stop the run before any output

    errors = sum(t.error is not None for t in targets)
    reports: list[FileReport] = []
    changed: list[tuple[str, str, str]] = []  # (name, before, after) for --diff
    for target, file_options in zip(targets, options):
        if target.error is not None:
            print_error(target.error)
            continue
        settings = lint_config.settings(file_options, cli_options)
        try:
            if is_python(target.name):  # Keras source: findings at its Python lines, no spec fixes
                findings = lint_python(target.text, target.name, settings, input_shape)
                outcome = FixOutcome(target.text, (), tuple(findings))
            elif fix or diff:
                outcome = fix_source(target.text, target.name, settings, input_shape)
            else:
                findings = lint_source(target.text, target.name, settings, input_shape)
                outcome = FixOutcome(target.text, (), tuple(findings))
        except SpecError as error:
            print_error(error)
            errors += 1
            continue
        reports.append(FileReport(target.name, outcome.text, outcome.remaining, outcome.fixed, settings.unsafe_fixes))
        if outcome.text != target.text:
            changed.append((target.name, target.text, outcome.text))
            if not diff:
                _write(target.path, outcome.text)

    if diff:
        _print_diff(changed, reports)
        code = 1 if changed else 0
    else:
        _print_reports(reports, output_format, errors)
        code = 1 if any(r.findings for r in reports) else 0
    raise typer.Exit(2 if errors else code)


class _Target(NamedTuple):
    """A spec to lint: a file (`path`) or a template (`path` None), its text, or why it cannot be read."""

    name: str
    path: Path | None
    text: str = ""
    error: Exception | None = None


def _targets(paths: list[str]) -> list[_Target]:
    from archspec import templates
    from archspec.errors import UserError
    from cnn_arch.cli.common import read_target

    found: list[_Target] = []
    seen: set[str] = set()
    for spec in paths:
        folder = Path(spec)
        if spec and folder.is_dir():  # Path("") is the current folder; an empty argument is a mistake
            files = sorted(
                f
                for f in folder.rglob(f"*{templates.SUFFIX}")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts)
            )
            if not files:
                sys.stderr.write(f"warning: no {templates.SUFFIX} files under {spec}\n")
            names = [str(f) for f in files]
        else:
            names = [spec]
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            is_template = not Path(name).exists() and templates.path(name) is not None
            try:
                _, text = read_target(name)
            except UserError as error:
                found.append(_Target(name, Path(name), error=error))
                continue
            found.append(_Target(name, None if is_template else Path(name), text))
    return found


def _options(targets: list[_Target], config: Path | None) -> list:
    """Each target's config-file options: from `--config`, else from the nearest pyproject.toml above
    the spec (above the working folder for a template)."""
    from archspec.lint import config as lint_config

    if config is not None:
        return [lint_config.load_config(config, explicit=True)] * len(targets)
    by_folder: dict[Path, lint_config.Options] = {}
    options = []
    for target in targets:
        folder = (target.path.parent if target.path is not None else Path.cwd()).resolve()
        if folder not in by_folder:
            found = lint_config.find_config(folder)
            by_folder[folder] = lint_config.load_config(found) if found else lint_config.Options()
        options.append(by_folder[folder])
    return options


def _write(path: Path, text: str) -> None:
    from archspec.errors import PathError

    try:
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    except OSError as error:
        raise PathError(str(path), f"cannot write the fixed spec: {error.strerror or error}") from None


def _print_reports(reports, output_format: OutputFormat, errors: int) -> None:
    from archspec.lint import output
    from cnn_arch.cli.output import use_color

    if output_format in (OutputFormat.full, OutputFormat.concise):
        render = output.render_full if output_format is OutputFormat.full else output.render_concise
        text = render(reports, use_color(sys.stdout)) + output.render_fixed(reports)
        sys.stdout.write(text + output.summary_line(reports, errors) + "\n")
        return
    render = {
        OutputFormat.json: output.render_json,
        OutputFormat.sarif: output.render_sarif,
        OutputFormat.github: output.render_github,
    }[output_format]
    sys.stdout.write(render(reports))


def _print_diff(changed: list[tuple[str, str, str]], reports) -> None:
    import difflib

    for name, before, after in changed:
        for line in difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile=name, tofile=name
        ):
            sys.stdout.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    fixed = sum(len(r.fixed) for r in reports)
    if fixed:
        remaining = sum(len(r.findings) for r in reports)
        sys.stderr.write(
            f"Would fix {fixed} finding{'s' if fixed != 1 else ''}"
            + (f" ({remaining} remaining)." if remaining else ".")
            + "\n"
        )
    else:
        hidden = sum(f.fixable and not f.applicable(r.unsafe_fixes) for r in reports for f in r.findings)
        more = f" ({hidden} can be enabled with `--unsafe-fixes`)" if hidden else ""
        sys.stderr.write(f"No fixes available{more}.\n")
