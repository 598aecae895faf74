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
    from archspec.summary import human_count
    from archspec.text import shape_text, table

    rows = [(e.name, f"{e.params:,}", human_count(e.macs), shape_text(e.input_shape), e.description) for e in entries]
    typer.echo("\n".join(table(("Template", "Params", "MACs", "Input", "Description"), rows, right=(1, 2))))
