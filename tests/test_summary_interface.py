"""The summary as an interface and on a narrow terminal: the JSON validates against the schema shipped
in the package for every template; torchinfo's size figures; Keras' "connected to"; 80 columns."""

from __future__ import annotations

import json
import os
import re
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
    assert data["format"] == 2


def test_schema_rejects_what_it_should(cli):
    validator = jsonschema.Draft202012Validator(schema())
    data = json.loads(cli("summarize", "lenet5", "--format", "json").out)
    assert not validator.is_valid({**data, "format": 1})  # another version
    del data["layers"][0]["connected_to"]
    assert not validator.is_valid(data)  # a documented field missing
    data["layers"][0]["connected_to"] = []
    data["layers"][0]["added_later"] = 1
    assert validator.is_valid(data)  # new fields may appear within a version (docs/summary-json.md)


# torchinfo's own published summaries of torchvision models (TylerYep/torchinfo, tests/test_output/*.out
# at commit 5c4164f1e2e185ce33c597dbe00535bf8ed2b930): batch, input, and its footer. Input sizes
# printed in kB there include ~60 bytes of Python object overhead, which the spec cannot know.
TORCHINFO = {
    # resnet50.out: summary(torchvision.models.resnet50(), input_size=(2, 3, 224, 224))
    "resnet50": (2, None, 25_557_032, "Total mult-adds (G): 8.18", "1.20 MB", 355.66, 102.23, 459.10),
    # resnet152.out: summary(torchvision.models.resnet152(), (1, 3, 224, 224), depth=3)
    "resnet152": (1, None, 60_192_808, "Total mult-adds (G): 11.51", "602.17 kB", 360.87, 240.77, 602.25),
    # resnet18_depth_consistency.out: summary(torchvision.models.resnet18(), (1, 3, 64, 64), ...)
    "resnet18": (1, "64x64x3", 11_689_512, "Total mult-adds (M): 148.57", "49.21 kB", 3.25, 46.76, 50.06),
}

RESNET18 = """
def basic(f, stride=1):
    add:
        branch:
            conv f 3 stride=stride padding=1 bias=false bn relu
            conv f 3 padding=1 bias=false bn
        if stride != 1 or channels != f:
            conv f 1 stride=stride bias=false bn
        else:
            identity
    relu

input 224x224x3
conv 64 7 stride=2 padding=3 bias=false bn relu
maxpool 3 stride=2 padding=1
basic 64 x2
basic 128 stride=2
basic 128
basic 256 stride=2
basic 256
basic 512 stride=2
basic 512
gap
dense 1000
"""


def _torchvision_spec(name: str) -> str:
    """torchvision's ResNet-18, -50 and -152 as specs: the template is ResNet-50; ResNet-152 repeats its
    blocks [3, 8, 36, 3] times where ResNet-50 has [3, 4, 6, 3]."""
    if name == "resnet18":
        return RESNET18
    text = templates.path("resnet50-torchvision").read_text(encoding="utf-8")
    if name == "resnet152":
        text = text.replace("bottleneck 128 x3", "bottleneck 128 x7").replace("bottleneck 256 x5", "bottleneck 256 x35")
    return text


@pytest.mark.parametrize("name", TORCHINFO)
def test_the_size_figures_equal_torchinfos_published_ones(cli, tmp_path, name):
    batch, input_text, params, mult_adds, input_size, forward_backward, params_size, total = TORCHINFO[name]
    spec = tmp_path / f"{name}.arch"
    spec.write_text(_torchvision_spec(name), encoding="utf-8")
    args = ["summarize", str(spec), "--batch-size", str(batch), *(["--input", input_text] if input_text else [])]
    totals = json.loads(cli(*args, "--output-format", "json").out)["totals"]
    assert totals["trainable"] == params  # the same network: torchinfo's "Total params" (no BN statistics)
    # torchinfo's mult-adds also count each bias and BatchNorm scale and shift once: within 0.1%
    value, unit = mult_adds.rsplit(": ", 1)[1], mult_adds[mult_adds.index("(") + 1]
    assert totals["macs"] * batch / {"G": 1e9, "M": 1e6}[unit] == pytest.approx(float(value), rel=1e-3)
    shown, scale = input_size.split()
    assert abs(totals["input_bytes"] / {"MB": 1e6, "kB": 1e3}[scale] - float(shown)) <= 0.1
    assert round(totals["forward_backward_bytes"] / 1e6, 2) == forward_backward
    assert round(totals["params_size_bytes"] / 1e6, 2) == params_size
    assert round(totals["estimated_total_bytes"] / 1e6, 2) == total
    footer = cli(*args).out
    for line in (f"Forward/backward pass size (MB): {forward_backward:.2f}", f"Params size (MB): {params_size:.2f}"):
        assert line in footer


def test_the_footer_states_each_quantity_once(cli):
    footer = cli("summarize", "resnet50-torchvision").out.split("Total params:")[1]
    assert "MiB" not in footer and "KiB" not in footer  # parameter bytes are torchinfo's Params size alone
    assert len(re.findall(r"\bMB\b", footer)) == 4  # the four torchinfo figures
    assert "Activation memory" not in footer  # torchinfo's forward/backward pass is the activation memory


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
