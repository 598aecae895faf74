"""Shared test helpers: compile spec text, run the CLI in-process like the console script."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass

import pytest

from archspec.devices import HOST_DEVICES_FLAG

# In-process tests see one JAX CPU device whatever order they run in: `cnn-arch`'s `main` asks for
# one per core before JAX starts, which would otherwise depend on whether an earlier test started
# JAX. Subprocesses get the default (`subprocess_env` drops XLA_FLAGS); a device count set by the
# caller is kept.
if HOST_DEVICES_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {HOST_DEVICES_FLAG}=1".strip()
# Trainings in subprocesses run in one process: the suite's workers already fill the cores, and a
# process per core (`archspec.train.cores`) would double every training's processes (the suite took
# 10:42 instead of 8:34). The tests of the process per core ask for it (`PER_CORE`).
os.environ.setdefault("CNN_ARCH_PROCESS_PER_CORE", "0")
PER_CORE = {"CNN_ARCH_PROCESS_PER_CORE": "1"}  # `subprocess_env(**PER_CORE)`: the default of a user's run


def one_cpu_device() -> str:
    """How a run's header names one CPU device: with the cores XLA threads its convolutions over."""
    from archspec.devices import usable_cores

    cores = usable_cores()
    return "Training on 1 CPU device" + (f" using {cores} cores" if cores > 1 else "")


def spec(text: str) -> str:
    """Dedent a spec written inline in a test."""
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture
def compile_text():
    from archspec.compile import compile_spec

    def run(text: str, input_shape=None):
        return compile_spec(spec(text), "test.arch", input_shape)

    return run


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `cnn-arch ARGS...` through `main()` (error printing and exit codes included)."""
    from cnn_arch.cli.app import main

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Result:
        capsys.readouterr()
        monkeypatch.setattr("sys.argv", ["cnn-arch", *args])
        code = 0
        try:
            main()
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", help="rewrite tests/goldens/* from current output")


@pytest.fixture
def golden(request):
    """Compare text with tests/goldens/NAME, or rewrite it with --update-goldens."""
    from pathlib import Path

    folder = Path(__file__).parent / "goldens"

    def check(name: str, text: str) -> None:
        path = folder / name
        if request.config.getoption("--update-goldens"):
            folder.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"missing golden {path}; run pytest --update-goldens"
        assert text == path.read_text(encoding="utf-8")

    return check


@pytest.fixture(autouse=True, scope="session")
def _own_cache_dir(tmp_path_factory):
    """The caches `cnn-arch train` fills (decoded folders, compiled steps) in a folder of the test
    session, not the user's ~/.cache (subprocesses inherit it). Under pytest-xdist each worker has
    a base temporary folder of its own (`popen-gw0`, ...), so each worker has its own cache too."""
    import os

    before = os.environ.get("CNN_ARCH_CACHE_DIR")
    os.environ["CNN_ARCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        del os.environ["CNN_ARCH_CACHE_DIR"]
    else:
        os.environ["CNN_ARCH_CACHE_DIR"] = before
