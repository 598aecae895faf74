"""`cnn-arch server` on model files that are not specs: Keras code is checked at its Python lines
(diagnostics, hover), a saved Keras model from its file, its findings naming the Keras layer."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.server.support import Editor, at, doc

pytestmark = pytest.mark.asyncio(loop_scope="module")

KERAS = Path(__file__).parents[1] / "interop" / "keras"
APPLICATIONS = Path(__file__).parents[1] / "interop" / "keras_applications"


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-m", "cnn_arch", "server", "--stdio"]),
)
async def client(lsp_client: LanguageClient, tmp_path_factory):
    root = tmp_path_factory.mktemp("workspace")
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code"), root_uri=root.as_uri())
    )
    yield
    await lsp_client.shutdown_session()


async def test_keras_code_is_checked_at_its_python_lines(client: LanguageClient, tmp_path):
    editor = Editor(client)
    text = (KERAS / "flatten_head.py").read_text(encoding="utf-8")
    uri, found = await editor.open(tmp_path / "head.py", text)
    ca101 = next(d for d in found if d.code == "CA101")
    assert ca101.range.start == at(16, 8)  # layers.Flatten() on line 16
    hover = await editor.request(client.text_document_hover_async(types.HoverParams(doc(uri), at(16, 10))))
    assert "**179776**" in hover.contents.value  # Flatten's output: 53x53x64, as Keras' summary says

    (error,) = await editor.replace(uri, text.replace("layers.Flatten()", "layers.LSTM(4)"))
    assert error.severity == types.DiagnosticSeverity.Error and "`LSTM` is not a Keras layer" in error.message
    assert error.range.start == at(16, 8)
    editor.close(uri)


async def test_a_saved_model_is_read_from_its_file(client: LanguageClient, tmp_path):
    editor = Editor(client)
    path = tmp_path / "vgg.keras"
    shutil.copy(APPLICATIONS / "VGG16_224.keras", path)
    uri, found = await editor.open(path, "")  # an editor holds no text of a zip file
    ca101 = next(d for d in found if d.code == "CA101")
    assert ca101.message.startswith("Keras layer `flatten` (Flatten): Dense head after `flatten`")
    assert ca101.range.start == at(1, 0)  # the file has no lines: its start
    editor.close(uri)


async def test_an_error_in_a_module_the_script_imports_names_that_module(client: LanguageClient, tmp_path):
    editor = Editor(client)
    (tmp_path / "blocks.py").write_text("import keras\n\n\ndef head(x):\n    return keras.layers.LSTM(4)(x)\n")
    text = "import keras\nfrom blocks import head\n\nx = keras.Input((8, 8, 3))\nm = keras.Model(x, head(x))\n"
    uri, (error,) = await editor.open(tmp_path / "model.py", text)
    assert error.message.startswith(f"{tmp_path / 'blocks.py'}:5: `LSTM` is not a Keras layer")
    assert "reached from line 5" in error.message and error.range.start == at(1, 0)
    editor.close(uri)
