"""`cnn-arch draw`: a picture of the network as SVG, PNG or PDF (graph of boxes, or textbook volumes), or an
interactive HTML page that pans, zooms and folds."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer


class Style(str, Enum):
    graph = "graph"
    volumes = "volumes"


def register(app: typer.Typer) -> None:
    app.command("draw")(draw_command)


def draw_command(
    spec: str = typer.Argument(..., metavar="SPEC_OR_TEMPLATE", help="A spec file or a built-in template name."),
    output: str = typer.Option(
        None,
        "-o",
        "--output",
        metavar="FILE.svg|.png|.pdf|.html",
        help="Where to write the picture; the extension picks the format (.html: interactive, with folding "
        "and search); `-` writes SVG to stdout.  [default: SPEC_NAME.svg in the current folder]",
    ),
    depth: int = typer.Option(
        None,
        "--depth",
        min=1,
        help="Fold blocks nested deeper than this, as `summarize --depth` (1 = top level).  [default: every "
        "layer, folded as far as needed to stay readable in SVG, PNG and PDF]",
    ),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="Override the spec's input shape."),
    style: Style = typer.Option(
        Style.graph, "--style", help="graph: a box per layer or block; volumes: feature maps as 3-D blocks."
    ),
) -> None:
    """Draw a spec: a box per layer or folded block, data flowing down, blocks framed, merges as nodes."""
    from archspec.errors import UserError
    from cnn_arch.cli.common import compile_target

    target, format = output_target(spec, output)
    if format == "html" and style is not Style.graph:
        raise UserError("`--style volumes` is drawn as SVG, PNG or PDF; the HTML viewer draws the graph")
    typed = compile_target(spec, input)
    if format == "html":
        from archspec.draw import interactive

        page = interactive(typed, spec, depth=depth)
        _write(target, lambda path: Path(path).write_text(page, encoding="utf-8"))
        size = len(page.encode())
        size_text = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"
        typer.echo(f"Wrote {target} (HTML viewer, {size_text}; opens in any browser).", err=True)
        return
    from archspec.draw import draw, write

    picture = draw(typed, spec, style=style.value, depth=depth, fit=True)
    scene = picture.scene
    if picture.full_size is not None:
        width, height = picture.full_size
        typer.echo(
            f"Folded to --depth {picture.depth} to stay readable: every layer would take {width:,}x{height:,}. "
            f"`--depth N` unfolds further; `-o {Path(spec).stem}.html` shows every layer, with folding.",
            err=True,
        )
    if target == "-":
        from archspec.draw.scene import to_svg

        sys.stdout.write(to_svg(scene))
        return
    size = _write(target, lambda path: write(scene, path, format))
    unit = {"png": " px", "pdf": " pt"}.get(format, "")
    typer.echo(f"Wrote {target} ({format.upper()}, {size[0]:,}x{size[1]:,}{unit}).", err=True)


def _write(target: str, writer):
    from archspec.errors import PathError

    try:
        return writer(target)
    except OSError as error:
        if not Path(target).parent.is_dir():
            raise PathError(target, "cannot write the picture: its folder does not exist") from None
        raise PathError(target, f"cannot write the picture: {error.strerror or error}") from None


def output_target(spec: str, output: str | None) -> tuple[str, str]:
    """(path, format) for `-o`; refuses an extension cnn-arch cannot write before any work is done."""
    from archspec.draw import FORMATS
    from archspec.errors import UserError

    if output is None:
        return f"{Path(spec).stem or 'model'}.svg", "svg"
    if output == "-":
        return "-", "svg"
    suffix = Path(output).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        got = f"`.{suffix}`" if suffix else "no extension"
        raise UserError(
            f"`-o {output}`: cnn-arch draws .svg, .png, .pdf or .html files, got {got}",
            hint=f"for example `-o {Path(output).stem or 'model'}.svg`",
        )
    if suffix != "svg":
        from archspec.extras import require

        require("draw", f"{suffix.upper()} output")
    return output, suffix
