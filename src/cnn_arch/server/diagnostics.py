"""An analysis as LSP diagnostics (the spec error, or lint findings with their codes) and code actions
(each finding's fix, and "add `# noqa: CODE`"). Spans are 1-based columns in characters; LSP wants
0-based positions in the client's code units (UTF-16 unless negotiated), so every position goes
through the document's position codec.
"""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from archspec.errors import Span, SpecError, UserError
from archspec.lint import Finding
from archspec.lint.engine import _NOQA, noqa_codes
from archspec.lint.fix import Edit, Fix
from archspec.source import SourceText
from cnn_arch.server.analysis import Analysis, word_at

SOURCE = "cnn-arch"
SEVERITY = {"warning": types.DiagnosticSeverity.Warning, "info": types.DiagnosticSeverity.Information}


def fix_safety(fix: Fix) -> str:
    """`safe` or `unsafe` (the fix's own applicability, as `cnn-arch lint` uses it), shown in the action's
    title; only safe fixes are marked preferred (applied by an editor's quick-fix shortcut)."""
    return "safe" if fix.safe else "unsafe"


def position(lines: SourceText, codec: PositionCodec, line: int, column: int) -> types.Position:
    """A 1-based (line, column) of the spec as an LSP position."""
    text = lines.line(line)
    return types.Position(max(line - 1, 0), codec.client_num_units(text[: max(column - 1, 0)]))


def column_of(lines: SourceText, codec: PositionCodec, where: types.Position) -> int:
    """The 0-based character index of an LSP position on its line."""
    return codec.position_from_client_units(
        [lines.line(n) for n in range(1, len(lines) + 1)], types.Position(where.line, where.character)
    ).character


def span_range(lines: SourceText, codec: PositionCodec, span: Span | None) -> types.Range:
    """The range of a span; a span without an end covers the word at its column."""
    if span is None:
        return types.Range(types.Position(0, 0), position(lines, codec, 1, len(lines.line(1)) + 1))
    end = span.end_column
    if end is None or end <= span.column:
        found = word_at(lines.line(span.line), span.column - 1)
        end = found[2] + 1 if found and found[1] == span.column - 1 else span.column + 1
    return types.Range(position(lines, codec, span.line, span.column), position(lines, codec, span.line, end))


def edit_range(lines: SourceText, codec: PositionCodec, edit: Edit) -> types.Range:
    return types.Range(
        position(lines, codec, edit.line, edit.column), position(lines, codec, edit.end_line, edit.end_column)
    )


# --- diagnostics ------------------------------------------------------------------------------------


def diagnostics(
    analysis: Analysis, uri: str, codec: PositionCodec, config_error: UserError | None = None
) -> list[types.Diagnostic]:
    found = []
    if config_error is not None:
        found.append(
            types.Diagnostic(
                span_range(analysis.lines, codec, None),
                f"{config_error.render().removeprefix('error: ')}\n(lint runs with the default rules)",
                severity=types.DiagnosticSeverity.Error,
                source=SOURCE,
            )
        )
    found.extend(error_diagnostic(error, analysis.lines, uri, codec) for error in analysis.errors)
    if analysis.more_errors:
        last = analysis.errors[-1]
        found.append(
            types.Diagnostic(
                span_range(analysis.lines, codec, last.span),
                f"{analysis.more_errors} more errors after this one are not shown; fix these first",
                severity=types.DiagnosticSeverity.Information,
                source=SOURCE,
            )
        )
    found.extend(finding_diagnostic(f, analysis.lines, codec) for f in analysis.findings)
    return found


def error_diagnostic(error: SpecError, lines: SourceText, uri: str, codec: PositionCodec) -> types.Diagnostic:
    """The spec error at its range; the macro call sites it came through as related information."""
    message = error.message + (f"\nhint: {error.hint}" if error.hint else "")
    related = [
        types.DiagnosticRelatedInformation(types.Location(uri, span_range(lines, codec, note.span)), note.message)
        for note in error.notes
        if note.span is not None
    ]
    unlocated = [note.message for note in error.notes if note.span is None]
    if unlocated:
        message += "".join(f"\nnote: {text}" for text in unlocated)
    return types.Diagnostic(
        span_range(lines, codec, error.span),
        message,
        severity=types.DiagnosticSeverity.Error,
        source=SOURCE,
        related_information=related or None,
    )


def finding_diagnostic(finding: Finding, lines: SourceText, codec: PositionCodec) -> types.Diagnostic:
    message = finding.message
    if finding.help:
        message += f"\nhelp: {finding.help}"
    message += "".join(f"\nnote: {note}" for note in finding.notes)
    return types.Diagnostic(
        span_range(lines, codec, finding.span),
        message,
        severity=SEVERITY[finding.severity],
        code=finding.code,
        source=SOURCE,
    )


# --- code actions ------------------------------------------------------------------------------------


def code_actions(analysis: Analysis, uri: str, codec: PositionCodec, wanted: types.Range) -> list[types.CodeAction]:
    """For each finding on the lines of `wanted`: its fix (when it has one), then a `# noqa` action."""
    actions: list[types.CodeAction] = []
    first, last = wanted.start.line + 1, wanted.end.line + 1
    for finding in analysis.findings:
        if not first <= finding.span.line <= last:
            continue
        diagnostic = finding_diagnostic(finding, analysis.lines, codec)
        if finding.fix is not None:
            safety = fix_safety(finding.fix)
            edits = [types.TextEdit(edit_range(analysis.lines, codec, e), e.content) for e in finding.fix.edits]
            actions.append(
                types.CodeAction(
                    f"{finding.code}: {finding.fix.title} ({safety} fix)",
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic],
                    edit=types.WorkspaceEdit(changes={uri: edits}),
                    is_preferred=safety == "safe",
                )
            )
        noqa = noqa_edit(analysis.lines, codec, finding)
        if noqa is not None:
            actions.append(
                types.CodeAction(
                    f"{finding.code}: add `# noqa: {finding.code}` to line {finding.span.line}",
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic],
                    edit=types.WorkspaceEdit(changes={uri: [noqa]}),
                )
            )
    return actions


def noqa_edit(lines: SourceText, codec: PositionCodec, finding: Finding) -> types.TextEdit | None:
    """Append `# noqa: CODE` to the finding's line, or add the code to the line's `# noqa:` list.
    None on a line continued with `\\`, where a comment would end the line early."""
    number = finding.span.line
    text = lines.line(number)
    if lines.continued(number):
        return None
    codes = noqa_codes(text)
    end = position(lines, codec, number, len(text.rstrip()) + 1)
    if codes is None:
        return types.TextEdit(types.Range(end, end), f"  # noqa: {finding.code}")
    # The line's noqa comment names other codes only (a bare one, or one naming this code, would have
    # hidden the finding): rewrite it with this code added, found by the engine's own pattern.
    match = _NOQA.search(text, text.find("#"))
    listed = ", ".join(sorted(codes | {finding.code}))
    return types.TextEdit(
        types.Range(position(lines, codec, number, match.start() + 1), position(lines, codec, number, match.end() + 1)),
        f"# noqa: {listed}",
    )
