"""`cnn-arch summarize` output formats, rendered exactly (goldens) and parsed back."""

from __future__ import annotations

import csv
import io
import json


def test_table_golden(cli, golden):
    result = cli("summarize", "lenet5")
    assert result.code == 0
    golden("summarize-lenet5.txt", result.out)


def test_markdown_golden(cli, golden):
    result = cli("summarize", "flatten-head", "--format", "markdown")
    assert result.code == 0
    golden("summarize-flatten-head.md", result.out)


def test_csv_rows_match_json(cli):
    rows = list(csv.DictReader(io.StringIO(cli("summarize", "gap-head", "--format", "csv").out)))
    layers = json.loads(cli("summarize", "gap-head", "--format", "json").out)["layers"]
    assert [int(r["params"]) for r in rows] == [layer["params"] for layer in layers]
    assert [r["output_shape"] for r in rows] == ["x".join(map(str, layer["shape"])) for layer in layers]
    assert sum(int(r["params"]) for r in rows) == 66_602


def test_table_shows_spec_lines_and_receptive_fields(cli):
    out = cli("summarize", "gap-head").out
    conv_line = next(line for line in out.splitlines() if "conv 64 3x3" in line)
    assert conv_line.split()[0] == "8"  # its line in the template
    assert conv_line.rstrip().endswith("10")  # receptive field after 3 convs and a pool


def test_footer_reports_macs_flops_memory_and_dense_share(cli):
    out = cli("summarize", "gap-head", "--batch", "8").out
    assert "MACs: 1,117,831,168 (1.12 G); FLOPs (2 x MACs): 2.24 G" in out
    assert "Memory as torchinfo estimates it (batch 8, float32):" in out
    assert "Dense head: none" in out


def test_batch_scales_activation_memory(cli):
    one = json.loads(cli("summarize", "lenet5", "--format", "json", "--batch", "1").out)["totals"]
    many = json.loads(cli("summarize", "lenet5", "--format", "json", "--batch", "64").out)["totals"]
    assert many["activation_bytes"] == 64 * one["activation_bytes"]
    assert one["flops"] == 2 * one["macs"]
    assert one["param_bytes"] == 4 * one["params"]


def test_input_option_resizes_the_model(cli):
    data = json.loads(cli("summarize", "gap-head", "--input", "32x32x1", "--format", "json").out)
    assert data["input_shape"] == [32, 32, 1]
    assert data["totals"]["params"] == 66_602 - 2 * 3 * 3 * 32  # the first conv sees 1 channel, not 3


def test_summarize_allocates_nothing_and_never_imports_jax(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from cnn_arch.cli.app import main; sys.argv=['cnn-arch','summarize','flatten-head'];\n"
        "try: main()\nexcept SystemExit: pass\nprint('JAX' if 'jax' in sys.modules else 'NOJAX')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("NOJAX")
