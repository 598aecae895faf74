"""`cnn-arch templates`: the built-in specs with their parameters, MACs and input size."""

from __future__ import annotations

from enum import Enum

import typer


class Format(str, Enum):
    table = "table"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command("templates")(templates_command)


def templates_command(
    format: Format = typer.Option(Format.table, "--output-format", "--format", help="Output format."),
) -> None:
    """List the built-in templates: parameters, MACs at their input size, and what each one is.

    Use one by name (`cnn-arch summarize resnet50`) or copy it to start from (`cnn-arch new resnet50`).
    """
    from archspec.templates import catalog

    entries = catalog()
    if format is Format.json:
        import json
        from dataclasses import asdict

        typer.echo(json.dumps([{**asdict(e), "input_shape": list(e.input_shape)} for e in entries], indent=2))
    else:
        print_table(entries)


def print_table(entries) -> None:
    """The catalogue as a table. When a row with its description is wider than the terminal (or
    COLUMNS), each description goes under its row instead, wrapped to fit."""
    import textwrap

    from archspec.summary import human_count
    from archspec.text import shape_text, table
    from cnn_arch.cli.output import terminal_width

    rows = [(e.name, f"{e.params:,}", human_count(e.macs), shape_text(e.input_shape), e.description) for e in entries]
    lines = table(("Template", "Params", "MACs", "Input", "Description"), rows, right=(1, 2))
    width = terminal_width()
    if width is None or max(len(line) for line in lines) <= width:
        typer.echo("\n".join(lines))
        return
    header, rule, *body = table(("Template", "Params", "MACs", "Input"), [row[:4] for row in rows], right=(1, 2))
    out = [header, rule]
    for line, entry in zip(body, entries):
        out += [line, *textwrap.wrap(entry.description, width, initial_indent="  ", subsequent_indent="  ")]
    typer.echo("\n".join(out))
