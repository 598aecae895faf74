"""`cnn-arch draw`: a picture of the network as SVG, PNG or PDF (graph of boxes, or textbook volumes)."""

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
        metavar="FILE.svg|.png|.pdf",
        help="Where to write the picture; the extension picks the format; `-` writes SVG to stdout."
        "  [default: SPEC_NAME.svg in the current folder]",
    ),
    depth: int = typer.Option(
        None, "--depth", min=1, help="Fold blocks nested deeper than this, as `summarize --depth` (1 = top level)."
    ),
    input: str = typer.Option(None, "--input", metavar="HxWxC", help="Override the spec's input shape."),
    style: Style = typer.Option(
        Style.graph, "--style", help="graph: a box per layer or block; volumes: feature maps as 3-D blocks."
    ),
) -> None:
    """Draw a spec: one box per row of `summarize --depth N`, data flowing down, branches side by side."""
    from archspec.draw import draw, write
    from archspec.errors import PathError
    from cnn_arch.cli.common import compile_target

    target, format = output_target(spec, output)
    typed = compile_target(spec, input)
    scene = draw(typed, spec, style=style.value, depth=depth)
    if target == "-":
        from archspec.draw.scene import to_svg

        sys.stdout.write(to_svg(scene))
        return
    try:
        write(scene, target, format)
    except OSError as error:
        if not Path(target).parent.is_dir():
            raise PathError(target, "cannot write the picture: its folder does not exist") from None
        raise PathError(target, f"cannot write the picture: {error.strerror or error}") from None
    typer.echo(f"Wrote {target} ({format.upper()}, {scene.width:.0f}x{scene.height:.0f}).", err=True)


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
            f"`-o {output}`: cnn-arch draws .svg, .png or .pdf files, got {got}",
            hint=f"for example `-o {Path(output).stem or 'model'}.svg`",
        )
    if suffix != "svg":
        from archspec.extras import require

        require("draw", f"{suffix.upper()} output")
    return output, suffix
