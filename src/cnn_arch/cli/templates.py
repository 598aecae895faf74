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
    format: Format = typer.Option(Format.table, "--format", help="Output format."),
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
    from rich.table import Table
    from rich.text import Text

    from archspec.summary import human_count, shape_text
    from cnn_arch.cli.output import stdout_console

    table = Table(show_edge=False, pad_edge=False)
    table.add_column("Template", style="bold", no_wrap=True)
    table.add_column("Params", justify="right", no_wrap=True)
    table.add_column("MACs", justify="right", no_wrap=True)
    table.add_column("Input", no_wrap=True)
    table.add_column("Description")
    for entry in entries:
        table.add_row(
            Text(entry.name),
            Text(f"{entry.params:,}"),
            Text(human_count(entry.macs)),
            Text(shape_text(entry.input_shape)),
            Text(entry.description),
        )
    stdout_console().print(table)
