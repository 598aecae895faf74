"""The CI snippets of docs/lint.md, run as a user would copy them: the GitHub Actions steps in a fresh
venv (`pip install "cnn-arch @ git+REPO_URL@COMMIT"`, then the lint step), and the pre-commit config
in a fresh git repository with pre-commit from PyPI. REPO_URL is this checkout, COMMIT its HEAD.

Both install the core from the repository and the index, as a user's CI does (tens of seconds each),
and the core venv is also where a core-only install is checked for real: no JAX, the static commands
work, and `train` names its extra."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
PAGE = ROOT / "docs" / "lint.md"
# this checkout as a URL pip takes in `NAME @ git+URL@REV` (packaging wants a host in a git+file URL)
REPO_URL = f"file://localhost{ROOT.as_posix()}"
FLATTEN_HEAD = (ROOT / "src/archspec/templates/flatten-head.arch").read_text(encoding="utf-8")

pytestmark = pytest.mark.slow


def _head() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"the CI snippets are tested from a git checkout of cnn-arch: {done.stderr}"
    return done.stdout.strip()


def _snippets() -> list[str]:
    """The YAML blocks of the page's "Lint in CI" section, placeholders filled in."""
    section = PAGE.read_text(encoding="utf-8").split("## Lint in CI", 1)[1]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return [b.replace("REPO_URL", REPO_URL).replace("COMMIT", _head()) for b in blocks]


def _snippet(containing: str):
    return yaml.safe_load(next(b for b in _snippets() if containing in b))


def _project(folder: Path) -> Path:
    """A user's project with one spec that lint has findings for."""
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "net.arch").write_text(FLATTEN_HEAD, encoding="utf-8")
    return folder


def _bash(command: str, folder: Path, venv: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)  # the venv's own cnn-arch, not this checkout's sources
    return subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, **kwargs)


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def test_the_github_actions_steps_install_the_core_and_annotate_findings(tmp_path):
    steps = [step["run"] for step in _snippet("actions/setup-python") if "run" in step]
    project = _project(tmp_path / "project")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = _bash(steps[0], project, venv)
    assert install.returncode == 0, install.stderr[-3000:]
    lint = _bash(steps[1], project, venv)
    assert lint.returncode == 1, lint.stderr  # findings fail the job
    assert "::warning file=models/net.arch,line=12,col=1," in lint.stdout and "title=CA101::" in lint.stdout
    sarif_step = next(step["run"] for step in _snippet("upload-sarif") if "run" in step)
    assert _bash(sarif_step, project, venv).returncode == 0  # `|| true`: the job goes on to the upload
    log = json.loads((project / "cnn-arch.sarif").read_text(encoding="utf-8"))
    assert {r["ruleId"] for r in log["runs"][0]["results"]} == {"CA101", "CA501"}

    # the core install, for real: no module of the train extra, the static commands work
    python = venv / "bin" / "python"
    missing = _bash(f"{python} -c 'import jax'; {python} -c 'import numpy'", project, venv)
    assert missing.stderr.count("ModuleNotFoundError") == 2
    for command in ("cnn-arch summarize models/net.arch", "cnn-arch draw models/net.arch -o net.svg"):
        done = _bash(command, project, venv)
        assert done.returncode == 0, done.stderr
    assert "<svg " in (project / "net.svg").read_text(encoding="utf-8")
    train = _bash("cnn-arch train models/net.arch --data digits", project, venv)
    assert train.returncode == 2 and "needs the `train` extra of cnn-arch" in train.stderr
    assert f"pip install 'cnn-arch[train] @ git+{REPO_URL}@{_head()}'" in train.stderr
    assert _initializes(venv / "bin" / "cnn-arch")


def _initializes(server: Path) -> bool:
    """`cnn-arch server` answers an LSP `initialize` with its capabilities."""

    def message(body: dict) -> bytes:
        data = json.dumps(body).encode()
        return b"Content-Length: %d\r\n\r\n%s" % (len(data), data)

    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "capabilities": {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "shutdown"},
        {"jsonrpc": "2.0", "method": "exit"},
    ]
    done = subprocess.run(
        [str(server), "server"], input=b"".join(map(message, requests)), capture_output=True, timeout=60
    )
    return b'"capabilities"' in done.stdout and done.returncode == 0


def test_the_pre_commit_hook_runs_from_a_fresh_repository(tmp_path):
    config = next(b for b in _snippets() if "repos:" in b)
    project = _project(tmp_path / "project")
    (project / ".pre-commit-config.yaml").write_text(config, encoding="utf-8")
    for command in (["init", "-q"], ["add", "."]):
        subprocess.run(["git", *command], cwd=project, check=True)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)
    hook = [sys.executable, "-m", "pre_commit", "run", "--all-files"]

    started = time.perf_counter()
    first = subprocess.run(hook, cwd=project, env=env, capture_output=True, text=True)
    first_run = time.perf_counter() - started
    assert first.returncode == 1, first.stdout + first.stderr
    assert "cnn-arch lint" in first.stdout and "CA101" in first.stdout

    environment = next((tmp_path / "cache").glob("repo*/py_env-*"))
    assert not list(environment.glob("lib/python*/site-packages/jax")), "the hook installs the core only"
    size = _size_mb(environment)
    assert size < 100, f"the hook's environment takes {size:.0f} MB"

    shutil.copy(ROOT / "src/archspec/templates/gap-head.arch", project / "models" / "net.arch")
    started = time.perf_counter()
    again = subprocess.run(hook, cwd=project, env=env, capture_output=True, text=True)
    later_run = time.perf_counter() - started
    assert "Passed" in again.stdout or "CA" in again.stdout, again.stdout
    print(f"pre-commit: first run {first_run:.0f} s, environment {size:.0f} MB, later run {later_run:.1f} s")
