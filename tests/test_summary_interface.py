"""The summary as an interface and on a narrow terminal: the JSON validates against the schema shipped
in the package for every template; torchinfo's size figures; Keras' "connected to"; 80 columns."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from archspec import templates


def schema() -> dict:
    return json.loads(files("archspec").joinpath("schemas/summary.schema.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", templates.names())
def test_every_template_json_validates_against_the_shipped_schema(cli, name):
    data = json.loads(cli("summarize", name, "--format", "json").out)
    validator = jsonschema.Draft202012Validator(schema())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors, errors
    assert data["format"] == 1


def test_schema_rejects_what_it_should(cli):
    validator = jsonschema.Draft202012Validator(schema())
    data = json.loads(cli("summarize", "lenet5", "--format", "json").out)
    assert not validator.is_valid({**data, "format": 2})  # another version
    del data["layers"][0]["connected_to"]
    assert not validator.is_valid(data)  # a documented field missing
    data["layers"][0]["connected_to"] = []
    data["layers"][0]["added_later"] = 1
    assert validator.is_valid(data)  # new fields may appear within a version (docs/summary-json.md)


def test_torchinfo_size_figures(cli):
    # torchinfo's ResNet-50 at batch 1 reports "Input size (MB): 0.60" (3x224x224 float32)
    data = json.loads(cli("summarize", "resnet50", "--batch-size", "1", "--format", "json").out)["totals"]
    assert round(data["input_bytes"] / 1e6, 2) == 0.60
    assert data["forward_backward_bytes"] == 2 * data["activation_bytes"]
    assert data["estimated_total_bytes"] == data["input_bytes"] + data["forward_backward_bytes"] + data["param_bytes"]
    footer = cli("summarize", "lenet5").out
    assert f"Input size (MB): {32 * math.prod((32, 32, 1)) * 4 / 1e6:.2f}" in footer
    for label in ("Forward/backward pass size (MB):", "Params size (MB): 0.25", "Estimated total size (MB):"):
        assert label in footer


def test_merge_rows_name_what_feeds_them_identity_shortcuts_included(cli):
    rows = json.loads(cli("summarize", "resnet50", "--format", "json").out)["layers"]
    merges = [r for r in rows if r["type"] == "Add"]
    assert len(merges) == 16  # one add per bottleneck block
    assert merges[0]["connected_to"] == ["bn @16", "bn @11"]  # the projection block: both branches
    assert merges[1]["connected_to"][0].startswith("identity (relu @")  # the plain block's shortcut
    assert all(len(r["connected_to"]) == 2 for r in merges)
    assert not any(r["connected_to"] for r in rows if r["type"] != "Add")
    table = cli("summarize", "resnet50", "--columns", "line,layer,connected").out
    assert "identity (relu @18), bn @11" in table


def _summarize_at_80(name: str) -> list[str]:
    script = Path(sys.executable).parent / "cnn-arch"
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    done = subprocess.run([str(script), "summarize", name], capture_output=True, text=True, env=env, check=True)
    return done.stdout.splitlines()


def test_columns_80_summary_of_resnet50_fits():
    lines = _summarize_at_80("resnet50")
    assert max(len(line) for line in lines) <= 80
    assert any("…" in line for line in lines)  # long block labels are cut, not wrapped
    assert lines[1].split("┃")[-1].strip() == "RF"  # receptive fields kept; Type dropped first


@pytest.mark.parametrize("name", ["flatten-head", "lenet5", "gap-head"])
def test_columns_80_fits_with_the_suggestion_wrapped(name):
    assert max(len(line) for line in _summarize_at_80(name)) <= 80


def test_columns_option_chooses_and_checks_names(cli):
    out = cli("summarize", "lenet5", "--columns", "layer,params").out
    assert out.splitlines()[1].split() == ["Layer", "┃", "Params"]
    bad = cli("summarize", "lenet5", "--columns", "parms")
    assert bad.code == 2 and "did you mean `params`" in bad.err
