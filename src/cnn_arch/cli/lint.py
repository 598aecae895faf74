"""`cnn-arch lint`: design findings with rule codes, ruff-style, with ruff's everyday flags; `--fix`
and `--diff` rewrite specs with the safe fixes, and with `--unsafe-fixes` also the others.

Exit codes: 0 clean, 1 findings (or, with `--diff`, changes to make), 2 usage errors or a spec that
could not be checked; the other specs are still linted and the unchecked ones are in every format.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import NamedTuple

import typer

from archspec.head import DENSE_SHARE_THRESHOLD
from cnn_arch.cli.lint_targets import STDIN


class OutputFormat(str, Enum):
    full = "full"
    concise = "concise"
    grouped = "grouped"
    json = "json"
    json_lines = "json-lines"
    junit = "junit"
    gitlab = "gitlab"
    pylint = "pylint"
    sarif = "sarif"
    github = "github"


WATCH_ROUNDS = "CNN_ARCH_WATCH_ROUNDS"  # stop `--watch` after this many re-lints (for tests and scripts)


def register(app: typer.Typer) -> None:
    app.command("lint")(lint_command)


def lint_command(
    paths: list[str] = typer.Argument(
        None,
        metavar="[PATH]...",
        help="Spec files, folders (every *.arch under them), built-in template names, or `-` for stdin.  [default: .]",
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
    extend_ignore: list[str] = typer.Option(
        None, "--extend-ignore", metavar="CODES", help="Rules to skip on top of the configured ones (as --ignore)."
    ),
    fix: bool = typer.Option(False, "--fix", help="Apply the safe fixes, rewriting spec files in place."),
    unsafe_fixes: bool = typer.Option(
        None,
        "--unsafe-fixes/--no-unsafe-fixes",
        help="Also apply the fixes that change the trained network (most do: see each rule's Fix safety).",
    ),
    show_fixes: bool = typer.Option(
        False, "--show-fixes", help="Also list the fix each remaining finding would get from --fix."
    ),
    diff: bool = typer.Option(False, "--diff", help="Print the fixes as a unified diff and write nothing."),
    output_format: OutputFormat = typer.Option(
        OutputFormat.full, "--output-format", "--format", help="How to print findings."
    ),
    output_file: Path = typer.Option(
        None, "--output-file", "-o", metavar="PATH", help="Write the findings to this file instead of stdout."
    ),
    statistics: bool = typer.Option(False, "--statistics", help="Print how many findings each rule has."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print the findings only, no closing line."),
    silent: bool = typer.Option(False, "--silent", "-s", help="Print nothing; the exit code tells."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even with findings (2 still for errors)."),
    exit_non_zero_on_fix: bool = typer.Option(
        False, "--exit-non-zero-on-fix", help="Exit 1 when --fix changed a file, even if nothing remains."
    ),
    stdin_filename: str = typer.Option(
        None, "--stdin-filename", metavar="PATH", help="The name of the spec read from stdin (`-`)."
    ),
    exclude: list[str] = typer.Option(
        None, "--exclude", metavar="GLOBS", help="Skip these files and folders when walking folders (comma-separated)."
    ),
    respect_gitignore: bool = typer.Option(
        True, "--respect-gitignore/--no-respect-gitignore", help="Skip what .gitignore ignores when walking folders."
    ),
    watch: bool = typer.Option(False, "--watch", "-w", help="Lint again whenever a spec changes (Ctrl-C stops)."),
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
        help=f"CA101: report a dense head holding more than this share of the parameters.  [default: {DENSE_SHARE_THRESHOLD}]",
    ),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="Override the specs' input shape."),
) -> None:
    """Check specs for design problems, with rule codes (`cnn-arch rule --all` lists them)."""
    from archspec.lint import config as lint_config
    from cnn_arch.cli.common import parse_shape

    cli_options = lint_config.Options(
        lint_config.Selection(
            select=lint_config.selectors(select) if select else None,
            ignore=lint_config.selectors([*(ignore or ()), *(extend_ignore or ())]),
            extend_select=lint_config.selectors(extend_select),
        ),
        dense_share_threshold,
        unsafe_fixes,
    )
    run = Run(
        paths or ["."],
        cli_options,
        parse_shape(input),
        config,
        tuple(p.strip() for value in exclude or () for p in value.split(",") if p.strip()),
        respect_gitignore,
        stdin_filename,
        fix,
        diff,
        show_fixes,
        output_format,
        output_file,
        statistics,
        "silent" if silent else "quiet" if quiet else "normal",
        exit_zero,
        exit_non_zero_on_fix,
    )
    if watch:
        _watch(run)
    raise typer.Exit(lint_once(run))


class Run(NamedTuple):
    """One `cnn-arch lint` invocation's settings, so that `--watch` can run it again."""

    paths: list[str]
    cli_options: object
    input_shape: tuple[int, ...] | None
    config: Path | None
    exclude: tuple[str, ...]
    respect_gitignore: bool
    stdin_filename: str | None
    fix: bool
    diff: bool
    show_fixes: bool
    output_format: OutputFormat
    output_file: Path | None
    statistics: bool
    verbosity: str  # normal, quiet (findings only) or silent (nothing)
    exit_zero: bool
    exit_non_zero_on_fix: bool


def lint_once(run: Run) -> int:
    """Lint every target once, print the reports, return the exit code."""
    from archspec.errors import SpecError, UserError
    from archspec.interop import readers
    from archspec.lint import config as lint_config
    from archspec.lint.engine import lint_source
    from archspec.lint.fix import FixOutcome, fix_source
    from archspec.lint.output import FileReport
    from cnn_arch.cli import lint_targets
    from cnn_arch.cli.output import print_error

    found = lint_targets.targets(run.paths, run.config, run.exclude, run.respect_gitignore, run.stdin_filename)
    from_stdin = STDIN in run.paths
    if run.fix and not run.diff:
        templates = [t.name for t in found if t.path is None and t.config_folder is None]
        if templates:
            raise UserError(
                f"`{templates[0]}` is a built-in template, which --fix cannot rewrite",
                hint=f"make your own copy with `cnn-arch new {templates[0]}`, then lint --fix that file",
            )
    if (run.fix or run.diff) and any(readers.reader_for(t.name) for t in found):
        name = next(t.name for t in found if readers.reader_for(t.name))
        raise UserError(
            f"--fix and --diff rewrite specs, not `{name}`",
            hint=f"`cnn-arch import {name} -o model.arch`, then lint --fix the spec",
        )
    options = lint_targets.options(found, run.config)  # config errors stop the run before any output
    text_output = run.output_format in (OutputFormat.full, OutputFormat.concise, OutputFormat.grouped)
    reports: list[FileReport] = []
    changed: list[tuple[str, str, str]] = []  # (name, before, after) for --diff
    for target, file_options in zip(found, options):
        if target.error is not None:
            reports.append(FileReport(target.name, "", (), error=target.error))
            continue
        where = target.path or (Path(run.stdin_filename) if run.stdin_filename else None)
        settings = lint_config.settings(file_options, run.cli_options, where)
        try:
            if readers.reader_for(target.name):  # a model file: findings at its origins, no spec fixes
                reader = readers.reader_for(target.name)
                text = target.text if reader.text or target.path is None else None  # stdin: its text
                shown, findings = readers.lint_models(target.name, text, settings, run.input_shape)
                target = target._replace(text=shown)
                outcome = FixOutcome(shown, (), tuple(findings))
            elif run.fix or run.diff:
                outcome = fix_source(target.text, target.name, settings, run.input_shape)
            else:
                findings = lint_source(target.text, target.name, settings, run.input_shape)
                outcome = FixOutcome(target.text, (), tuple(findings))
        except SpecError as error:
            reports.append(FileReport(target.name, target.text, (), error=error))
            continue
        reports.append(FileReport(target.name, outcome.text, outcome.remaining, outcome.fixed, settings.unsafe_fixes))
        if outcome.text != target.text:
            changed.append((target.name, target.text, outcome.text))
            if not run.diff and target.path is not None:
                _write(target.path, outcome.text)
    errors = sum(r.error is not None for r in reports)
    if run.verbosity != "silent" and (text_output or run.output_file is not None):
        for report in reports:
            if report.error is not None:
                print_error(report.error)  # the full diagnostic, with its excerpt, on stderr
    if run.fix and from_stdin and not run.diff:
        # as ruff does: the fixed text goes to stdout, the report to stderr
        sys.stdout.write(next((r.text for r in reports if r.error is None), ""))
        run = run._replace(output_file=run.output_file or Path("/dev/stderr"))
    if run.diff:
        _print_diff(changed, reports)
        code = 1 if changed else 0
    else:
        if run.verbosity != "silent":
            _print_reports(reports, run)
        code = 1 if any(r.findings for r in reports) else 0
        if run.exit_zero:
            code = 0
        if run.exit_non_zero_on_fix and changed:
            code = 1
    return 2 if errors else code


def _watch(run: Run) -> None:
    """Lint, then again each time a linted file (or a config file) changes, until Ctrl-C."""
    import os
    import time

    rounds = int(os.environ.get(WATCH_ROUNDS, "0")) or None
    stamps = None
    done = 0
    try:
        while rounds is None or done < rounds:
            current = _stamps(run)
            if current != stamps:
                stamps = current
                sys.stdout.write(f"[{time.strftime('%H:%M:%S')}] Linting {len(current)} files…\n")
                lint_once(run)
                sys.stdout.write("Watching for changes…\n")
                sys.stdout.flush()
                done += 1
            else:
                time.sleep(0.3)
    except KeyboardInterrupt:
        pass
    raise typer.Exit(0)


def _stamps(run: Run) -> dict[str, float]:
    """Modification times of the files a run lints, and of the config files that could apply."""
    from cnn_arch.cli import lint_targets

    stamps = {}
    for target in lint_targets.targets(run.paths, run.config, run.exclude, run.respect_gitignore, None):
        if target.path is not None and target.path.exists():
            stamps[str(target.path)] = target.path.stat().st_mtime
    for config in [run.config, *Path.cwd().glob("pyproject.toml")]:
        if config is not None and config.exists():
            stamps[str(config)] = config.stat().st_mtime
    return stamps


def _write(path: Path, text: str) -> None:
    from archspec.errors import PathError

    try:
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    except OSError as error:
        raise PathError(str(path), f"cannot write the fixed spec: {error.strerror or error}") from None


def _print_reports(reports, run: Run) -> None:
    from archspec.lint import output, output_ci
    from cnn_arch.cli.output import terminal_width, use_color

    stream = sys.stdout if run.output_file is None else None
    fmt = run.output_format
    if fmt in (OutputFormat.full, OutputFormat.concise, OutputFormat.grouped):
        color = stream is not None and use_color(stream)
        render = {
            OutputFormat.full: lambda r, color: output.render_full(r, color, terminal_width() if stream else None),
            OutputFormat.concise: output.render_concise,
            OutputFormat.grouped: lambda r, color: output_ci.render_grouped(r),
        }[fmt]
        shown = reports if fmt is not OutputFormat.full else output.checked(reports)  # full: errors on stderr
        text = render(shown, color) + output.render_fixed(reports)
        if run.show_fixes:
            text += output.render_available_fixes(reports)
        if run.statistics:
            text = output_ci.render_statistics(reports)
        if run.verbosity == "normal":
            text += output.summary_line(reports, sum(r.error is not None for r in reports)) + "\n"
    elif run.statistics and fmt is OutputFormat.json:
        text = output_ci.render_statistics(reports, as_json=True)
    else:
        text = {
            OutputFormat.json: output.render_json,
            OutputFormat.json_lines: output_ci.render_json_lines,
            OutputFormat.junit: output_ci.render_junit,
            OutputFormat.gitlab: output_ci.render_gitlab,
            OutputFormat.pylint: output_ci.render_pylint,
            OutputFormat.sarif: output.render_sarif,
            OutputFormat.github: output.render_github,
        }[fmt](reports)
    if stream is not None:
        stream.write(text)
        return
    _write_report(run.output_file, text)


def _write_report(path: Path, text: str) -> None:
    from archspec.errors import PathError

    try:
        if str(path) == "/dev/stderr":
            sys.stderr.write(text)
            return
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise PathError(str(path), f"cannot write the lint report: {error.strerror or error}") from None


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
