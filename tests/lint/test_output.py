"""The output formats, rendered by the CLI for one spec and compared with golden files; SARIF is
also checked against the parts of the SARIF 2.1.0 schema that code scanning needs.

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


# The parts of the SARIF 2.1.0 schema (docs.oasis-open.org/sarif) a code-scanning upload relies on.
SARIF_SCHEMA = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "rules"],
                                "properties": {
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id", "shortDescription"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "shortDescription": {"type": "object", "required": ["text"]},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {
                                                        "level": {"enum": ["none", "note", "warning", "error"]}
                                                    },
                                                },
                                            },
                                        },
                                    }
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ruleId", "level", "message", "locations"],
                            "properties": {
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": {"type": "object", "required": ["text"]},
                                "locations": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["physicalLocation"],
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation", "region"],
                                                "properties": {
                                                    "artifactLocation": {"type": "object", "required": ["uri"]},
                                                    "region": {
                                                        "type": "object",
                                                        "required": ["startLine", "startColumn"],
                                                        "properties": {
                                                            "startLine": {"type": "integer", "minimum": 1},
                                                            "startColumn": {"type": "integer", "minimum": 1},
                                                            "endColumn": {"type": "integer", "minimum": 1},
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_sarif_is_valid_for_code_scanning(lint_snapshot):
    log = json.loads(lint_snapshot("--output-format", "sarif").out)
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    if jsonschema is not None:
        jsonschema.validate(log, SARIF_SCHEMA)
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
