"""The VS Code extension's files: valid JSON, a grammar whose patterns compile and colour a spec's words
as a TextMate engine would, and whose word lists are the language's own (so a new layer kind is
highlighted, or this fails)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from archspec.layers import REGISTRY
from archspec.layers import TRAILING_WORDS as SUFFIX_WORDS
from archspec.words import BLOCKS, MERGES

VSCODE = Path(__file__).parents[2] / "editors" / "vscode"
GRAMMAR = json.loads((VSCODE / "syntaxes" / "cnn-arch.tmLanguage.json").read_text(encoding="utf-8"))


def test_the_extension_manifest_wires_the_language_grammar_and_server():
    manifest = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    (language,) = manifest["contributes"]["languages"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert language["extensions"] == [".arch"] and grammar["language"] == language["id"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"]
    assert (VSCODE / grammar["path"]).is_file() and (VSCODE / language["configuration"]).is_file()
    json.loads((VSCODE / language["configuration"]).read_text(encoding="utf-8"))
    assert "cnn-arch.inlayHints.shapes" in manifest["contributes"]["configuration"]["properties"]
    # `main` is the bundle that `vsce package` builds (its prepublish step) from extension.js
    assert manifest["main"] == "./dist/extension.js" and "esbuild ./extension.js" in manifest["scripts"]["bundle"]
    assert "--outfile=dist/extension.js" in manifest["scripts"]["bundle"]
    extension = (VSCODE / "extension.js").read_text(encoding="utf-8")
    assert 'args: ["server"]' in extension and 'configurationSection: "cnn-arch"' in extension


def test_the_extension_packages_what_vsce_asks_for():
    manifest = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    assert manifest["license"] == "Apache-2.0" and manifest["repository"]["directory"] == "editors/vscode"
    assert (VSCODE / "LICENSE").read_text() == (VSCODE.parents[1] / "LICENSE").read_text()
    assert "cnn-arch.path" in (VSCODE / "README.md").read_text(encoding="utf-8")
    kept = (VSCODE / ".vscodeignore").read_text(encoding="utf-8").split("\n")
    assert "**" in kept and "!dist/extension.js" in kept  # the bundle, not node_modules


def _rules(patterns: list[dict]) -> list[dict]:
    """The grammar's rules in order, with `include`s and nested pattern lists expanded."""
    found = []
    for rule in patterns:
        if "include" in rule:
            found += _rules([GRAMMAR["repository"][rule["include"].removeprefix("#")]])
        elif "patterns" in rule and "begin" not in rule:
            found += _rules(rule["patterns"])
        else:
            found.append(rule)
    return found


def _scopes(rule: dict, match: re.Match) -> list[tuple[str, str]]:
    if "captures" in rule:
        return [(match.group(int(g)), c["name"]) for g, c in rule["captures"].items() if match.group(int(g))]
    return [(match.group(), rule["name"])]


def tokenize(line: str, patterns=None) -> list[tuple[str, str]]:
    """A TextMate engine's scan of one line: at each point the earliest match wins, the first rule on
    a tie; a `begin`/`end` rule (comments) runs its own patterns to the end of the line."""
    rules = _rules(patterns if patterns is not None else GRAMMAR["patterns"])
    tokens, position = [], 0
    while position < len(line):
        best = None
        for rule in rules:
            match = re.compile(rule.get("match") or rule["begin"]).search(line, position)
            if match and match.end() > match.start() and (best is None or match.start() < best[1].start()):
                best = rule, match
        if best is None:
            break
        rule, match = best
        if "begin" in rule:
            tokens.append((line[match.start() :], rule["name"]))
            tokens += tokenize(line[match.end() :], rule["patterns"])
            break
        tokens += _scopes(rule, match)
        position = match.end()
    return tokens


def test_every_pattern_compiles():
    def regexes(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("match", "begin", "end"):
                    yield value
                else:
                    yield from regexes(value)
        elif isinstance(node, list):
            for item in node:
                yield from regexes(item)

    found = list(regexes(GRAMMAR))
    assert len(found) > 10
    for pattern in found:
        re.compile(pattern)


def test_the_grammar_colours_a_specs_words():
    tokens = tokenize("    conv 64 3x3 stride=2 padding=same bn relu x2  # noqa: CA101")
    assert tokens == [
        ("conv", "support.function.layer.cnn-arch"),
        ("64", "constant.numeric.cnn-arch"),
        ("3x3", "constant.numeric.dims.cnn-arch"),
        ("stride", "variable.parameter.cnn-arch"),
        ("=", "keyword.operator.assignment.cnn-arch"),
        ("2", "constant.numeric.cnn-arch"),
        ("padding", "variable.parameter.cnn-arch"),
        ("=", "keyword.operator.assignment.cnn-arch"),
        ("same", "constant.language.cnn-arch"),
        ("bn", "support.function.layer.cnn-arch"),
        ("relu", "support.function.layer.cnn-arch"),
        ("x2", "keyword.operator.repeat.cnn-arch"),
        ("# noqa: CA101", "comment.line.number-sign.cnn-arch"),
        ("noqa", "keyword.other.noqa.cnn-arch"),
        ("CA101", "constant.other.rule-code.cnn-arch"),
    ]
    assert tokenize("def bottleneck(f, stride=1):")[:2] == [
        ("def", "keyword.control.def.cnn-arch"),
        ("bottleneck", "entity.name.function.cnn-arch"),
    ]
    assert tokenize("  bottleneck 4*f stride=2")[:3] == [
        ("bottleneck", "entity.name.function.call.cnn-arch"),
        ("4", "constant.numeric.cnn-arch"),
        ("*", "keyword.operator.arithmetic.cnn-arch"),
    ]
    assert tokenize("    repeat 3:")[0] == ("repeat", "keyword.control.block.cnn-arch")
    # named tensors: `-> e1` and `@e1` (not a subtraction), an `xN` before the arrow still a repeat
    assert tokenize("    conv 64 1 x2 -> e1")[-3:] == [
        ("x2", "keyword.operator.repeat.cnn-arch"),
        ("->", "keyword.operator.name-output.cnn-arch"),
        ("e1", "variable.other.tensor.cnn-arch"),
    ]
    assert tokenize("        @e1")[0] == ("@e1", "variable.other.tensor.cnn-arch")
    assert tokenize("  cell 44 prev=@c1")[-1] == ("@c1", "variable.other.tensor.cnn-arch")


def test_the_grammars_words_are_the_languages():
    layer = GRAMMAR["repository"]["layer"]["match"]
    listed = set(re.search(r"\(([^()]*)\)", layer).group(1).split("|"))
    assert listed == {*REGISTRY, "identity"} - set(MERGES)
    trailing = GRAMMAR["repository"]["trailing-layer"]["match"]
    assert set(re.search(r"\(([^()]*)\)", trailing).group(1).split("|")) == set(SUFFIX_WORDS)
    block = GRAMMAR["repository"]["block"]["match"]
    assert set(re.search(r"\(([^()]*)\)", block).group(1).split("|")) == set(BLOCKS)


@pytest.mark.slow  # npm ci (the npm registry; once per lockfile) and a bundle
def test_vsce_packages_the_extension_without_a_warning(tmp_path, request):
    """`npx @vscode/vsce package`, as docs/editors.md says, on a copy of the extension: one bundled file
    with the grammar, README and LICENSE, and no warning. The packages the lockfile pins are installed by
    `npm ci` once per lockfile and kept in pytest's cache (13,000 files: most of this test's time when it
    installed them at every run); an edit to package.json or package-lock.json installs them again."""
    import shutil
    import subprocess
    import zipfile

    if shutil.which("npm") is None:
        pytest.fail("npm (Node.js) is needed to package the VS Code extension")
    folder = tmp_path / "vscode"
    shutil.copytree(VSCODE, folder, ignore=shutil.ignore_patterns("node_modules", "dist", "*.vsix"))
    cache = getattr(request.config, "cache", None)  # None under `-p no:cacheprovider`: install afresh
    packages = _installed_packages(cache, tmp_path / "npm")
    (folder / "node_modules").symlink_to(packages, target_is_directory=True)
    done = subprocess.run(
        ["npx", "@vscode/vsce", "package"], cwd=folder, capture_output=True, text=True, timeout=600, check=True
    )
    assert "WARNING" not in done.stdout + done.stderr
    (package,) = folder.glob("cnn-arch-*.vsix")
    names = set(zipfile.ZipFile(package).namelist())
    assert {"extension/dist/extension.js", "extension/syntaxes/cnn-arch.tmLanguage.json"} <= names
    assert {"extension/readme.md", "extension/LICENSE.txt"} <= {n for n in names if not n.endswith("/")}
    assert not any("node_modules" in name for name in names)


def _installed_packages(cache, scratch: Path) -> Path:
    """The extension's node_modules as `npm ci` installs them from its lockfile, kept per lockfile in
    pytest's cache (in `scratch` when the cache plugin is off)."""
    import hashlib
    import shutil
    import subprocess

    manifests = [VSCODE / "package.json", VSCODE / "package-lock.json"]
    key = hashlib.sha256(b"".join(path.read_bytes() for path in manifests)).hexdigest()[:16]
    root = Path(cache.mkdir(f"vscode-node-modules-{key}")) if cache is not None else scratch
    installed = root / "node_modules"
    if not installed.is_dir():  # renamed into place only once complete: an interrupted install is redone
        staging = root / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for path in manifests:
            shutil.copy(path, staging / path.name)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=staging, check=True, capture_output=True, timeout=600
        )
        (staging / "node_modules").rename(installed)
    return installed
