"""One spec linted (and fixed) into a `FileReport`, and a set of reports rendered in any output format:
what `cnn-arch lint PATH...` does for each file it checks, without the command line around it."""

from __future__ import annotations

from archspec.errors import SpecError
from archspec.lint.engine import Settings
from archspec.lint.output import FileReport

# Every output format, in the order `--help` lists them (the first is the default).
FORMATS = ("full", "concise", "grouped", "json", "json-lines", "junit", "gitlab", "pylint", "sarif", "github")
TEXT_FORMATS = ("full", "concise", "grouped")  # for people: colour, a closing line, errors on stderr


def lint_file(
    name: str, text: str, settings: Settings, input_shape=None, *, fix: bool = False, on_disk: bool = True
) -> FileReport:
    """Lint a spec, or a model file (Keras code, a saved Keras model, an ONNX graph: findings at
    their origins, no fixes; `on_disk` False when `text` came from stdin). With `fix`, the report's
    text is the fixed spec; for a model file it is the listing its findings point into. A file that
    does not compile is a report with its error."""
    from archspec.interop import readers
    from archspec.lint.engine import lint_source
    from archspec.lint.fix import fix_source

    try:
        reader = readers.reader_for(name)
        if reader is not None:
            shown, findings = readers.lint_models(
                name, text if reader.text or not on_disk else None, settings, input_shape
            )
            return FileReport(name, shown, tuple(findings), (), settings.unsafe_fixes)
        if fix:
            outcome = fix_source(text, name, settings, input_shape)
            return FileReport(name, outcome.text, outcome.remaining, outcome.fixed, settings.unsafe_fixes)
        return FileReport(name, text, tuple(lint_source(text, name, settings, input_shape)), (), settings.unsafe_fixes)
    except SpecError as error:
        return FileReport(name, text, (), error=error)


def render(
    reports: list[FileReport],
    format: str,
    *,
    color: bool = False,
    width: int | None = None,
    show_fixes: bool = False,
    statistics: bool = False,
    closing_line: bool = True,
) -> str:
    """The reports in `format` (one of FORMATS). For the text formats: what `--fix` fixed, with
    `show_fixes` what it would fix, with `statistics` counts per rule instead of the findings, and
    the closing line (`Found 2 findings.`); `full` leaves out the specs that could not be checked,
    whose diagnostics go to stderr."""
    from archspec.lint import output, output_ci

    if format in TEXT_FORMATS:
        if statistics:
            text = output_ci.render_statistics(reports)
        else:
            text = {
                "full": lambda: output.render_full(output.checked(reports), color, width),
                "concise": lambda: output.render_concise(reports, color),
                "grouped": lambda: output_ci.render_grouped(reports),
            }[format]() + output.render_fixed(reports)
            if show_fixes:
                text += output.render_available_fixes(reports)
        if closing_line:
            text += output.summary_line(reports, len(output.unchecked(reports))) + "\n"
        return text
    if statistics and format == "json":
        return output_ci.render_statistics(reports, as_json=True)
    return {
        "json": output.render_json,
        "json-lines": output_ci.render_json_lines,
        "junit": output_ci.render_junit,
        "gitlab": output_ci.render_gitlab,
        "pylint": output_ci.render_pylint,
        "sarif": output.render_sarif,
        "github": output.render_github,
    }[format](reports)
