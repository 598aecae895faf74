"""The optional parts of cnn-arch and the command that installs each one.

`pip install cnn-arch` is the static tool (summarize, lint, draw as SVG, server, import, code export)
and installs like a linter: no JAX, no numpy. Each extra of pyproject.toml adds one capability; a
command that needs a missing one stops with `MissingExtra` (exit 2), whose hint is the exact pip
command for the way this copy was installed (from an index, a git URL, a folder or a wheel).
Code that needs an extra calls `require("onnx", "reading ONNX models")` before importing from it.
"""

from __future__ import annotations

from archspec.errors import UserError

# The modules that show an extra is installed (probed without importing them), by extra name; the
# extras themselves, with versions, are in pyproject.toml (tests/test_extras.py checks the two agree).
EXTRAS = {
    "train": (
        *("jax", "ml_dtypes", "flax", "optax", "orbax.checkpoint", "grain", "numpy", "PIL", "sklearn"),
        *("matplotlib", "filelock", "safetensors", "jax2onnx", "onnx"),
    ),
    "draw": ("PIL", "matplotlib"),
    "onnx": ("onnx", "ml_dtypes"),
    "h5": ("h5py",),
}


class MissingExtra(UserError):
    """A command needs an extra that is not installed."""

    def __init__(self, extra: str, purpose: str, module: str) -> None:
        super().__init__(
            f"{purpose} needs the `{extra}` extra of cnn-arch, which is not installed (no module `{module}`)",
            hint=f"install it: {install_command(extra)}",
        )
        self.extra = extra


def require(extra: str, purpose: str) -> None:
    """Raise `MissingExtra` unless every module of `extra` can be imported; `purpose` names what
    needs it (`cnn-arch train`, `PNG output`). Imports nothing."""
    import importlib.util

    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a dotted name whose parent is missing, or a broken stub
            found = False
        if not found:
            raise MissingExtra(extra, purpose, module)


def install_command(extra: str | None = None) -> str:
    """`pip install ...` that adds `extra` to this installation (without one: installs it again):
    from the git URL and commit, the folder (editable or not) or the wheel it came from (PEP 610
    `direct_url.json`), else the index."""
    import json
    import shlex
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    try:
        origin = json.loads(metadata.distribution("cnn-arch").read_text("direct_url.json") or "null")
    except (metadata.PackageNotFoundError, ValueError):
        origin = None
    name = f"cnn-arch[{extra}]" if extra else "cnn-arch"
    if not isinstance(origin, dict) or "url" not in origin:
        return "pip install " + shlex.quote(name)
    url = origin["url"]
    vcs = origin.get("vcs_info")
    if vcs:
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        scheme = vcs.get("vcs", "git")
        return "pip install " + shlex.quote(f"{name} @ {scheme}+{url}" + (f"@{commit}" if commit else ""))
    if url.startswith("file://"):
        path = unquote(urlparse(url).path)
        editable = origin.get("dir_info", {}).get("editable", False)
        return "pip install " + ("-e " if editable else "") + shlex.quote(path + (f"[{extra}]" if extra else ""))
    return "pip install " + shlex.quote(f"{name} @ {url}")
