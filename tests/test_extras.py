"""`pip install cnn-arch` is the static tool: summarize, lint, draw (SVG), server, import and code export
run with the core dependencies alone, and what runs a model stops with the command that installs its
extra. Here a subprocess hides every installed package outside the core's dependency closure (as a
fresh core-only venv would lack them); tests/test_ci_snippets.py installs such a venv for real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from archspec.extras import EXTRAS, install_command

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# Runs cnn-arch commands in-process with the given top-level modules unimportable, and reports each
# command's exit code and output, and which hidden modules something tried to load.
DRIVER = r"""
import contextlib, importlib.abc, io, json, sys
hidden = set(json.loads(sys.argv[1]))
tried = set()

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            tried.add(name.partition(".")[0])
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hide())
from cnn_arch.cli.app import main
results = []
for args in json.loads(sys.argv[2]):
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    sys.argv = ["cnn-arch", *args]
    tried.clear()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        except BaseException as error:
            code = f"raised {error!r}"
    text = lambda stream: stream.buffer.getvalue().decode("utf-8", "replace")
    results.append({"args": args, "code": code, "out": text(out)[-3000:], "err": text(err)[-3000:], "tried": sorted(tried)})
import cnn_arch.server.server  # the language server's own imports (pygls, lsprotocol) are core
print(json.dumps(results))
"""


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def _closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, with their own dependencies (no extras)."""
    seen: set[str] = set()
    todo = [_name(r) for r in requirements]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += [_name(r) for r in metadata.requires(name) or () if "extra ==" not in r]
        except metadata.PackageNotFoundError:
            continue
    return seen


def _hidden_modules() -> list[str]:
    """Top-level modules of installed distributions a core-only install would not have."""
    core = _closure(PROJECT["dependencies"])
    return sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if not any(_name(d) in core for d in dists) and module not in ("archspec", "cnn_arch")
    )


@pytest.fixture(scope="module")
def core_only(tmp_path_factory):
    """Run commands as a core-only install would: each command's exit code, output, and the hidden
    modules it tried to import."""
    folder = tmp_path_factory.mktemp("core")
    run = folder / "run"
    run.mkdir()
    (run / "config.json").write_text("{}", encoding="utf-8")  # what makes a folder a run folder
    static = [
        *(["summarize", "resnet50", "--output-format", f] for f in ("table", "json", "csv", "markdown", "dot")),
        ["summarize", str(ROOT / "tests/interop/keras/residual.py")],
        ["lint", "flatten-head", "resnet50"],
        ["lint", "flatten-head", "--output-format", "sarif"],
        ["draw", "googlenet", "--depth", "2", "-o", str(folder / "g.svg")],
        ["draw", "lenet5", "--style", "volumes", "-o", str(folder / "v.svg")],
        ["templates"],
        ["new", "lenet5", str(folder / "mine.arch")],
        ["rule", "--all"],
        ["rule", "CA101"],
        ["import", str(ROOT / "tests/interop/keras/residual.py")],
        *(["export", "resnet50", "--to", target] for target in ("keras", "flax", "pytorch")),
        ["compare", "flatten-head", "gap-head"],
        ["server", "-h"],
    ]
    needs_train = [
        ["train", "gap-head", "--data", "digits"],
        ["evaluate", str(run)],
        ["predict", str(run), str(folder / "cat.png")],
        ["devices"],
        ["compare", "flatten-head", "gap-head", "--data", "digits"],
        ["export", str(run), "-o", str(folder / "model.onnx")],
    ]
    needs_draw = [["draw", "lenet5", "-o", str(folder / "l.png")], ["draw", "lenet5", "-o", str(folder / "l.pdf")]]
    hidden = _hidden_modules()
    process = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(hidden), json.dumps(static + needs_train + needs_draw)],
        capture_output=True,
        text=True,
        cwd=folder,
    )
    assert process.returncode == 0, process.stderr
    results = {tuple(r["args"]): r for r in json.loads(process.stdout.splitlines()[-1])}
    return {"static": static, "train": needs_train, "draw": needs_draw, "results": results, "hidden": hidden}


def test_the_hidden_set_is_what_a_core_install_lacks(core_only):
    assert {"jax", "flax", "optax", "orbax", "grain", "numpy", "PIL", "matplotlib", "keras"} <= set(core_only["hidden"])
    assert not {"typer", "rich", "pygls", "lsprotocol"} & set(core_only["hidden"])


def test_static_commands_work_with_the_core_alone(core_only):
    for args in core_only["static"]:
        result = core_only["results"][tuple(args)]
        assert result["code"] == 0 or (args[0] == "lint" and result["code"] == 1), result
        assert "Traceback" not in result["err"], result
        # nothing but code export's optional formatter (ruff, used when installed) is even tried
        assert result["tried"] == (["ruff"] if args[0] == "export" else []), result


@pytest.mark.parametrize("extra", ["train", "draw"])
def test_a_command_that_needs_an_extra_exits_2_with_the_install_command(core_only, extra):
    for args in core_only[extra]:
        result = core_only["results"][tuple(args)]
        assert result["code"] == 2, result
        assert f"needs the `{extra}` extra of cnn-arch, which is not installed" in result["err"], result
        assert f"hint: install it: {install_command(extra)}" in result["err"]
        assert "Traceback" not in result["err"] and result["out"] == ""


def test_each_probed_module_belongs_to_its_extra_and_each_dependency_is_probed():
    extras = PROJECT["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        declared = {_name(r) for r in extras[extra]}
        providers = metadata.packages_distributions()  # a namespace (orbax) has several
        probed = [{_name(d) for d in providers[m.partition(".")[0]]} for m in modules]
        assert all(dists & declared for dists in probed), extra
        assert declared <= set().union(*probed), extra


def test_the_gpu_extras_include_train_and_the_test_extra_everything():
    extras = PROJECT["optional-dependencies"]
    for gpu in ("cuda", "cuda13", "tpu"):
        assert "cnn-arch[train]" in extras[gpu]
    assert re.search(r"cnn-arch\[train,draw,onnx,h5,keras,hf\]", " ".join(extras["test"]))
    assert "torch==2.13.0" in extras["test"]


@pytest.mark.parametrize(
    "origin, expected",
    [
        (None, "pip install 'cnn-arch[train]'"),
        ({"url": "file:///home/me/cnn-arch", "dir_info": {}}, "pip install '/home/me/cnn-arch[train]'"),
        (
            {"url": "file:///home/me/cnn%20arch", "dir_info": {"editable": True}},
            "pip install -e '/home/me/cnn arch[train]'",
        ),
        (
            {"url": "https://github.com/o/cnn-arch", "vcs_info": {"vcs": "git", "commit_id": "ab12"}},
            "pip install 'cnn-arch[train] @ git+https://github.com/o/cnn-arch@ab12'",
        ),
        (
            {"url": "file:///tmp/cnn_arch-0.1.0-py3-none-any.whl", "archive_info": {}},
            "pip install '/tmp/cnn_arch-0.1.0-py3-none-any.whl[train]'",
        ),
    ],
)
def test_the_install_command_follows_how_cnn_arch_was_installed(monkeypatch, origin, expected):
    # PEP 610: pip records where a distribution came from in direct_url.json
    class Installed:
        def read_text(self, name):
            return json.dumps(origin) if origin is not None and name == "direct_url.json" else None

    monkeypatch.setattr(metadata, "distribution", lambda name: Installed())
    assert install_command("train") == expected
    again = expected.replace("[train]", "").replace("'", "")  # the same source, to install it again
    assert install_command().replace("'", "") == again
