"""`cnn-arch server` driven over stdio by a real LSP client (pytest-lsp), as an editor would drive it:
open and change documents, receive diagnostics, hover, inlay hints, completion, definition, code actions.

Reference numbers are Keras': ResNet-50's conv1 (Conv2D 9,472 + BatchNorm 256) and conv2_block1
(1x1/3x3/1x1 convs and the projection shortcut with their BatchNorms: 76,928 parameters, 56x56x256 out).
"""

from __future__ import annotations

import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from archspec import templates
from tests.server.support import Editor, at, doc

pytestmark = pytest.mark.asyncio(loop_scope="module")

RESNET = templates.path("resnet50").read_text(encoding="utf-8")
FLATTEN_HEAD = templates.path("flatten-head").read_text(encoding="utf-8")
RESNET_LINES = RESNET.split("\n")


def line_of(text: str, start: str) -> int:
    """The 1-based number of the first line starting with `start`."""
    return next(i for i, line in enumerate(text.split("\n"), 1) if line.startswith(start))


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-m", "cnn_arch", "server", "--stdio"]),
)
async def client(lsp_client: LanguageClient, tmp_path_factory):
    root = tmp_path_factory.mktemp("workspace")
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=root.as_uri(),
            initialization_options={"inlayHints": {"shapes": True}},
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def editor(client: LanguageClient):
    return Editor(client)


@pytest.fixture
def plain(tmp_path):
    """A folder without a pyproject.toml above it: the default rules apply."""
    return tmp_path


def codes(diagnostics) -> list[str]:
    return sorted(d.code for d in diagnostics if d.code)


async def test_diagnostics_follow_every_change(editor: Editor, plain):
    uri, found = await editor.open(plain / "head.arch", FLATTEN_HEAD)
    assert codes(found) == ["CA101", "CA501"]
    ca101 = next(d for d in found if d.code == "CA101")
    assert ca101.range == types.Range(at(12, 0), at(12, 7))  # the word `flatten` on line 12
    assert ca101.severity == types.DiagnosticSeverity.Warning
    assert "99.4% of the parameters" in ca101.message and ca101.source == "cnn-arch"

    found = await editor.replace(uri, FLATTEN_HEAD.replace("flatten\n", "gap\n"))
    assert "CA101" not in codes(found)

    broken = FLATTEN_HEAD.replace("maxpool 2\nbn\nflatten", "maxpool 200\nbn\nflatten")
    (error,) = await editor.replace(uri, broken)
    assert error.severity == types.DiagnosticSeverity.Error
    assert error.range.start == at(10, 0) and "maxpool 200 needs at least 200x200 input, got 106x106" in error.message
    editor.close(uri)


async def test_spec_error_inside_a_macro_names_the_call_site(editor: Editor, plain):
    text = "def down(k):\n    maxpool k\n\ninput 8x8x3\ndown 2\ndown 9\n"
    uri, (error,) = await editor.open(plain / "macro.arch", text)
    assert error.range == types.Range(at(2, 4), at(2, 11))  # `maxpool` inside the def
    assert "needs at least 9x9 input, got 4x4" in error.message
    (note,) = error.related_information
    assert note.location.uri == uri and note.location.range.start == at(6, 0)  # the call `down 9`
    assert "in expansion of `down 9`" in note.message
    editor.close(uri)


async def test_pyproject_settings_and_noqa_are_honoured(editor: Editor, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.cnn-arch.lint]\nignore = ["CA501"]\n', encoding="utf-8")
    (tmp_path / "specs").mkdir()
    uri, found = await editor.open(tmp_path / "specs" / "head.arch", FLATTEN_HEAD)
    assert codes(found) == ["CA101"]  # CA501 ignored by the nearest pyproject.toml
    found = await editor.replace(uri, FLATTEN_HEAD.replace("flatten\n", "flatten  # noqa: CA101\n"))
    assert codes(found) == []
    editor.close(uri)

    (tmp_path / "pyproject.toml").write_text('[tool.cnn-arch.lint]\nignor = ["CA501"]\n', encoding="utf-8")
    uri, found = await editor.open(tmp_path / "specs" / "again.arch", FLATTEN_HEAD)
    config_error = next(d for d in found if d.severity == types.DiagnosticSeverity.Error)
    assert "unknown setting `ignor`" in config_error.message and "did you mean `ignore`?" in config_error.message
    assert codes(found) == ["CA101", "CA501"]  # linted with the default rules meanwhile
    editor.close(uri)


async def test_hover_shows_a_lines_shape_params_macs_and_receptive_field(editor: Editor, client, plain):
    uri, _ = await editor.open(plain / "resnet50.arch", RESNET)
    conv1 = line_of(RESNET, "conv 64 7 stride=2")
    hover = await editor.request(client.text_document_hover_async(types.HoverParams(doc(uri), at(conv1, 1))))
    text = hover.contents.value
    assert "**112x112x64**" in text
    assert "params: 9,728 (9,600 trainable, 128 non-trainable)" in text  # Keras: conv1_conv 9,472 + conv1_bn 256
    assert "MACs: 118,013,952" in text and "receptive field: 7 pixels, stride 2" in text
    assert "`conv`: 2D convolution" in text  # the layer word's own docs

    call = line_of(RESNET, "bottleneck_projection 64")
    hover = await editor.request(client.text_document_hover_async(types.HoverParams(doc(uri), at(call, 3))))
    text = hover.contents.value
    assert "**56x56x256**" in text and "params: 76,928" in text  # Keras conv2_block1
    assert "expansion of `bottleneck_projection 64 stride=1`: totals of its 11 layers" in text

    inside = line_of(RESNET, "    conv 4*f 1 bn")  # in bottleneck_path, called by all 16 blocks
    hover = await editor.request(client.text_document_hover_async(types.HoverParams(doc(uri), at(inside, 6))))
    text = hover.contents.value
    assert "in 16 expansions" in text
    assert "- `bottleneck_path 64 1` (line 17) and 2 more → **56x56x256**, 17,664 params" in text  # conv + bn
    assert "- `bottleneck_path 512 2` (line 17) and 2 more → **7x7x2048**" in text

    definition = line_of(RESNET, "def bottleneck_path")
    hover = await editor.request(client.text_document_hover_async(types.HoverParams(doc(uri), at(definition, 6))))
    text = hover.contents.value
    assert "def bottleneck_path(f, stride=1)" in text and "The residual path" in text
    assert "called 16 times" in text
    editor.close(uri)


async def test_hover_on_a_rule_code_shows_the_rules_docs(editor: Editor, client, plain):
    text = FLATTEN_HEAD.replace("flatten\n", "flatten  # noqa: CA101\n")
    uri, _ = await editor.open(plain / "noqa.arch", text)
    column = text.split("\n")[11].index("CA101") + 2
    hover = await editor.request(client.text_document_hover_async(types.HoverParams(doc(uri), at(12, column))))
    assert hover.contents.value.startswith("# flatten-dense-head (CA101)")
    assert "## Why is this bad?" in hover.contents.value
    editor.close(uri)


async def test_inlay_hints_show_output_shapes_and_follow_the_setting(editor: Editor, client, plain):
    uri, _ = await editor.open(plain / "hints.arch", RESNET)
    whole = types.Range(at(1, 0), at(len(RESNET_LINES), 0))
    params = types.InlayHintParams(doc(uri), whole)
    hints = await editor.request(client.text_document_inlay_hint_async(params))
    by_line = {h.position.line + 1: h.label for h in hints}
    call = line_of(RESNET, "bottleneck_projection 64")
    assert by_line[call] == "→ 56x56x256"
    assert hints[[h.position.line + 1 for h in hints].index(call)].position.character == len(RESNET_LINES[call - 1])
    assert by_line[line_of(RESNET, "gap")] == "→ 2048"
    assert by_line[line_of(RESNET, "dense 1000")] == "→ 1000"
    assert line_of(RESNET, "def bottleneck") not in by_line and 1 not in by_line  # no layers there

    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams({"cnn-arch": {"inlayHints": {"shapes": False}}})
    )
    assert not await editor.request(client.text_document_inlay_hint_async(params))
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams({"cnn-arch": {"inlayHints": {"shapes": True}}})
    )
    assert len(await editor.request(client.text_document_inlay_hint_async(params))) == len(hints)
    editor.close(uri)


async def test_completion_offers_layers_macros_and_arguments(editor: Editor, client, plain):
    text = RESNET + "con\nconv 64 3 \nbottleneck_projection 64 \n"
    uri, _ = await editor.open(plain / "complete.arch", text)
    end = len(text.split("\n")) - 1

    async def labels(line: int, character: int) -> set[str]:
        params = types.CompletionParams(doc(uri), at(line, character))
        result = await editor.request(client.text_document_completion_async(params))
        return {item.label for item in result.items}

    starts = await labels(end - 2, 3)
    assert {"conv", "dwconv", "maxpool", "gap", "add:", "repeat N:", "bottleneck", "bottleneck_projection"} <= starts
    arguments = await labels(end - 1, len("conv 64 3 "))
    assert {"stride=", "padding=", "dilation=", "bn", "relu"} <= arguments and "conv" not in arguments
    assert await labels(end, len("bottleneck_projection 64 ")) == {"f=", "stride="}
    editor.close(uri)


async def test_go_to_definition_from_a_macro_call(editor: Editor, client, plain):
    uri, _ = await editor.open(plain / "define.arch", RESNET)
    call = line_of(RESNET, "bottleneck 64 x2")
    params = types.DefinitionParams(doc(uri), at(call, 4))
    location = await editor.request(client.text_document_definition_async(params))
    definition = line_of(RESNET, "def bottleneck(f)")
    assert location.uri == uri
    assert location.range == types.Range(at(definition, 4), at(definition, 14))
    editor.close(uri)


async def test_code_actions_fix_a_finding_or_silence_it(editor: Editor, client, plain):
    uri, found = await editor.open(plain / "fix.arch", FLATTEN_HEAD)
    ca101 = next(d for d in found if d.code == "CA101")
    params = types.CodeActionParams(doc(uri), ca101.range, types.CodeActionContext([ca101]))
    actions = await editor.request(client.text_document_code_action_async(params))
    titles = [a.title for a in actions]
    assert "CA101: Replace `flatten` with `gap` (unsafe fix)" in titles
    assert "CA101: add `# noqa: CA101` to line 12" in titles

    fix = next(a for a in actions if a.title.startswith("CA101: Replace"))
    assert fix.kind == types.CodeActionKind.QuickFix and not fix.is_preferred
    found = await editor.edit(uri, fix.edit.changes[uri])
    assert editor.texts[uri].split("\n")[11] == "gap"
    assert "CA101" not in codes(found)

    found = await editor.replace(uri, FLATTEN_HEAD.replace("flatten\n", "flatten  # noqa: CA501\n"))
    assert codes(found) == ["CA101"]
    actions = await editor.request(client.text_document_code_action_async(params))
    noqa = next(a for a in actions if "noqa" in a.title)
    found = await editor.edit(uri, noqa.edit.changes[uri])
    assert editor.texts[uri].split("\n")[11] == "flatten  # noqa: CA101, CA501"
    assert codes(found) == []
    editor.close(uri)


async def test_positions_count_utf16_units_as_editors_do(editor: Editor, client, plain):
    line = "flatten  # 🙂 the head"  # the emoji is one character, two UTF-16 units
    uri, found = await editor.open(plain / "emoji.arch", FLATTEN_HEAD.replace("flatten\n", line + "\n"))
    ca101 = next(d for d in found if d.code == "CA101")
    params = types.CodeActionParams(doc(uri), ca101.range, types.CodeActionContext([ca101]))
    actions = await editor.request(client.text_document_code_action_async(params))
    noqa = next(a for a in actions if "noqa" in a.title).edit.changes[uri][0]
    assert noqa.range.start == at(12, len(line.encode("utf-16-le")) // 2) == at(12, len(line) + 1)
    assert noqa.new_text == "  # noqa: CA101"
    editor.close(uri)


NAMED = """def cell(f, prev):
    conv f 1 -> x
    add:
        @x
        branch:
            @prev
            conv f 1
input 8x8x4 -> img
conv 4 1 -> a
cell 4 prev=@img -> b
add:
    @a
    @b
"""


async def test_go_to_definition_of_a_named_tensor(editor: Editor, client, plain):
    uri, found = await editor.open(plain / "named.arch", NAMED)
    assert [d for d in found if d.severity == types.DiagnosticSeverity.Error] == []

    async def jump(line: int, column: int) -> types.Range:
        params = types.DefinitionParams(doc(uri), at(line, column))
        return (await editor.request(client.text_document_definition_async(params))).range

    assert await jump(12, 5) == types.Range(at(9, 12), at(9, 13))  # `@a` -> `-> a`
    assert await jump(10, 14) == types.Range(at(8, 15), at(8, 18))  # `prev=@img` -> `-> img`
    assert await jump(4, 9) == types.Range(at(2, 16), at(2, 17))  # `@x` inside the def: its own `x`
    assert await jump(6, 14) == types.Range(at(1, 12), at(1, 16))  # `@prev` -> the parameter
    editor.close(uri)


ISSUE_EXAMPLE = "input 8x8x1\nconv 4 3\nmaxpool 2\nconv 4 3\nmaxpool 5\ndense 10 softmax\n"


async def test_shapes_before_an_error_are_kept_and_every_error_is_reported(editor: Editor, client, plain):
    uri, found = await editor.open(plain / "partial.arch", ISSUE_EXAMPLE)
    (error,) = found
    assert error.range.start == at(5, 0) and "maxpool 5 needs at least 5x5 input, got 1x1" in error.message
    hover = await editor.request(client.text_document_hover_async(types.HoverParams(doc(uri), at(2, 1))))
    assert "`conv 4 3` → **6x6x4**" in hover.contents.value and "params: 40" in hover.contents.value
    whole = types.InlayHintParams(doc(uri), types.Range(at(1, 0), at(7, 0)))
    hints = await editor.request(client.text_document_inlay_hint_async(whole))
    assert {h.position.line + 1: h.label for h in hints} == {1: "→ 8x8x1", 2: "→ 6x6x4", 3: "→ 3x3x4", 4: "→ 1x1x4"}

    # three independent errors: a syntax error, a misspelt keyword inside a `def`, a bad argument
    broken = "def f(c):\n    conv c 1 stide=1\ninput 8x8x1\nconv 4 3 bn(\nf 4\nconv 4 3\ndropout 2\nrelu\n"
    found = await editor.replace(uri, broken)
    assert [(d.range.start.line + 1, d.severity) for d in found] == [(2, 1), (4, 1), (7, 1)]
    assert "did you mean `stride=`?" in found[0].message and "`rate` (=2) must be" in found[2].message
    hints = await editor.request(client.text_document_inlay_hint_async(whole))
    assert {h.position.line + 1: h.label for h in hints} == {3: "→ 8x8x1"}  # the rest reads a broken line
    editor.close(uri)


async def test_lint_runs_on_what_compiles(editor: Editor, plain):
    """A layer-level finding stays while another line is broken; a finding about the network as a whole
    (the dense head's share) waits for a spec that compiles, since the broken part's size is unknown."""
    text = FLATTEN_HEAD.replace("conv 64 3 relu\nconv 64 3 relu", "conv 64 3 bn relu\nconv 64 3 relu", 1)
    uri, found = await editor.open(plain / "lint-known.arch", text)
    assert {"CA101", "CA302"} <= set(codes(found))
    broken = text.replace("dense 32 relu", "dense 32 relux")
    found = await editor.replace(uri, broken)
    errors = [d for d in found if d.severity == types.DiagnosticSeverity.Error]
    assert len(errors) == 1 and "relux" in errors[0].message
    assert "CA302" in codes(found) and "CA101" not in codes(found)
    editor.close(uri)
