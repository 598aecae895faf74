"""The server stays a static tool: it never imports JAX, and the other commands never import it."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_after(code: str) -> list[str]:
    probe = (
        code
        + "\nimport json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'flax', 'optax', 'pygls', 'lsprotocol'})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(result.stdout.splitlines()[-1])


def test_the_server_never_imports_jax():
    code = (
        "import sys\n"
        "from archspec import templates\n"
        "from archspec.lint import Settings\n"
        "from lsprotocol import types\n"
        "from pygls.workspace.position_codec import PositionCodec\n"
        "import cnn_arch.server.server\n"
        "from cnn_arch.server import features\n"
        "from cnn_arch.server.analysis import Analysis\n"
        "a = Analysis(templates.path('resnet50').read_text(), 'resnet50.arch', Settings.default())\n"
        "assert features.hover(a, PositionCodec(), types.Position(28, 1)) is not None\n"
        "assert features.inlay_hints(a, PositionCodec(), types.Range(types.Position(0, 0), types.Position(60, 0)))\n"
    )
    assert loaded_after(code) == ["lsprotocol", "pygls"]


def test_other_commands_do_not_import_the_server():
    code = (
        "import sys\n"
        "from cnn_arch.cli.app import main\n"
        "sys.argv = ['cnn-arch', 'summarize', 'lenet5']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    assert loaded_after(code) == []
