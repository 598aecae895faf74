"""Typing a spec line by line: at every half-typed line the server's features answer (no exception
reaches the editor), an error is always located on a line of the text, and completion still knows
the macros defined so far."""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from archspec import templates
from archspec.lint import Settings
from cnn_arch.server import diagnostics, features
from cnn_arch.server.analysis import Analysis

CODEC = PositionCodec()


def test_every_half_typed_line_of_resnet50_gets_answers():
    lines = templates.path("resnet50").read_text(encoding="utf-8").split("\n")
    previous = None
    for number, line in enumerate(lines):
        half = line[: (len(line) + 1) // 2]
        text = "\n".join([*lines[:number], half, *lines[number + 1 :]])
        analysis = Analysis(text, "resnet50.arch", Settings.default(), previous)
        found = diagnostics.diagnostics(analysis, "file:///resnet50.arch", CODEC)
        if analysis.error is not None:
            assert 0 <= found[0].range.start.line < len(lines)
        where = types.Position(number, len(half))
        whole = types.Range(types.Position(0, 0), types.Position(len(lines), 0))
        features.hover(analysis, CODEC, where)
        features.inlay_hints(analysis, CODEC, whole)
        features.definition(analysis, CODEC, "file:///resnet50.arch", where)
        diagnostics.code_actions(analysis, "file:///resnet50.arch", CODEC, whole)
        items = {item.label for item in features.completion(analysis, CODEC, types.Position(number, 0))}
        if number > lines.index("input 224x224x3"):  # every def is above: they stay offered
            assert {"bottleneck", "bottleneck_path", "bottleneck_projection"} <= items, (number, half)
        previous = analysis


def test_an_empty_document_says_what_to_write():
    (error,) = diagnostics.diagnostics(Analysis("", "new.arch", Settings.default()), "file:///new.arch", CODEC)
    assert error.message.startswith("the spec has no layers") and error.range.start == types.Position(0, 0)
