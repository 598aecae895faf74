"""`cnn-arch summarize`: the per-layer table of shapes, parameters, MACs and receptive fields."""

from __future__ import annotations

import sys
from enum import Enum

import typer

from archspec.head import DENSE_SHARE_THRESHOLD
from cnn_arch.cli.defaults import DEFAULTS

DEFAULT_BATCH = DEFAULTS["batch_size"]  # the activation memory of the batch `train` would use


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    dot = "dot"


def register(app: typer.Typer) -> None:
    app.command("summarize")(summarize_command)


def summarize_command(
    spec: str = typer.Argument(..., metavar="SPEC_OR_TEMPLATE", help="A spec file or a built-in template name."),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="Override the spec's input shape."),
    batch: int = typer.Option(
        DEFAULT_BATCH,
        "--batch-size",
        "--batch",
        min=1,
        max=1_000_000,
        help="Images per batch, for the activation memory.",
    ),
    format: Format = typer.Option(Format.table, "--output-format", "--format", help="Output format."),
    depth: int = typer.Option(None, "--depth", min=1, help="Fold rows nested deeper than this (1 = top level)."),
    columns: str = typer.Option(
        None,
        "--columns",
        metavar="NAMES",
        help="Table columns, comma-separated, from line, layer, type, shape, params, macs, rf, connected. "
        "[default: those that fit the terminal]",
    ),
    threshold: float = typer.Option(
        DENSE_SHARE_THRESHOLD,
        "--dense-share-threshold",
        min=0.0,
        max=1.0,
        help="Suggest global pooling when the dense head holds more than this share of the parameters.",
    ),
) -> None:
    """Check a spec and print its layers: output shape, parameters, MACs, receptive field."""
    from archspec import summary as report
    from cnn_arch.cli.common import compile_target

    typed = compile_target(spec, input)
    result = report.summarize(typed, spec, batch=batch, threshold=threshold)
    if format is Format.table:
        print_table(result, depth, _columns(columns))
    elif format is Format.dot:  # Graphviz text: the boxes and edges `cnn-arch draw` draws
        from archspec.draw.dot import to_dot
        from archspec.draw.model import build

        typer.echo(to_dot(build(result, typed, depth)), nl=False)
    else:
        render = {Format.json: report.to_json, Format.csv: report.to_csv, Format.markdown: report.to_markdown}
        typer.echo(render[format](result, depth), nl=format is Format.json)


def print_table(summary, depth: int | None = None, columns: tuple[str, ...] | None = None) -> None:
    """Print a summary as the layer table with its footer, fitted to the terminal (also used by `train`)."""
    from archspec.summary_table import to_table
    from cnn_arch.cli.output import terminal_width, use_color

    sys.stdout.write(to_table(summary, depth, color=use_color(sys.stdout), width=terminal_width(), columns=columns))
    sys.stdout.flush()


def _columns(text: str | None) -> tuple[str, ...] | None:
    from archspec.errors import UserError
    from archspec.summary_table import COLUMNS
    from archspec.text import did_you_mean

    if text is None:
        return None
    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    for name in names:
        if name not in COLUMNS:
            raise UserError(
                f"unknown column `{name}` in --columns",
                hint=did_you_mean(name, COLUMNS) or f"columns: {', '.join(COLUMNS)}",
            )
    return names
