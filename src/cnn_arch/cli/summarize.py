"""`cnn-arch summarize`: the per-layer table of shapes, parameters, MACs and receptive fields."""

from __future__ import annotations

from enum import Enum

import typer


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


def register(app: typer.Typer) -> None:
    app.command("summarize")(summarize_command)


def summarize_command(
    spec: str = typer.Argument(..., metavar="SPEC_OR_TEMPLATE", help="A spec file or a built-in template name."),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="Override the spec's input shape."),
    batch: int = typer.Option(32, "--batch", min=1, max=1_000_000, help="Batch size for the activation memory."),
    format: Format = typer.Option(Format.table, "--format", help="Output format."),
    depth: int = typer.Option(None, "--depth", min=1, help="Fold rows nested deeper than this (1 = top level)."),
    threshold: float = typer.Option(
        0.5, "--dense-share-threshold", min=0.0, max=1.0,
        help="Suggest global pooling when the dense head holds more than this share of the parameters.",
    ),
) -> None:
    """Check a spec and print its layers: output shape, parameters, MACs, receptive field."""
    from archspec import summary as report
    from cnn_arch.cli.common import compile_target

    typed = compile_target(spec, input)
    result = report.summarize(typed, spec, batch=batch, threshold=threshold)
    if format is Format.table:
        print_table(result, depth)
    else:
        render = {Format.json: report.to_json, Format.csv: report.to_csv, Format.markdown: report.to_markdown}
        typer.echo(render[format](result, depth), nl=format is Format.json)


def print_table(result, depth: int | None) -> None:
    from rich.table import Table
    from rich.text import Text

    from archspec.summary import footer_lines, rf_text, shape_text, suggestion_line
    from cnn_arch.cli.output import stdout_console

    console = stdout_console()
    table = Table(title=f"{result.name}", title_justify="left", show_edge=False, pad_edge=False, expand=False)
    table.add_column("Line", justify="right", style="dim")
    table.add_column("Layer")
    table.add_column("Type")
    table.add_column("Output shape")
    table.add_column("Params", justify="right")
    table.add_column("MACs", justify="right")
    table.add_column("RF", justify="right")
    for row in result.folded(depth):
        label = Text("  " * (row.depth - 1) + row.label, style="bold" if row.group else "")
        table.add_row(str(row.line), label, row.type, shape_text(row.shape), f"{row.params:,}", f"{row.macs:,}",
                      rf_text(row))
    console.print(table)
    console.print()
    for line in footer_lines(result):
        console.print(line, markup=False)
    suggestion = suggestion_line(result)
    if suggestion:
        console.print(Text(suggestion, style="yellow"))
