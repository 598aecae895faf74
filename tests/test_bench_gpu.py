"""benchmarks/bench_gpu_resnet50.py: the peak table matches device kinds as JAX and PyTorch name
them, and the benchmark runs on CPU in smoke mode (JAX only: torch is the `bench` extra, too large
for the tests; the benchmark itself refuses a PyTorch model whose counts differ from the spec's)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_arch.cli.common import compile_target

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench = _load("bench_gpu_resnet50")


def test_peak_table_matches_device_kinds():
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert bench.peak_tflops("NVIDIA H100 PCIe", "bf16") == 756.0
    assert bench.peak_tflops("NVIDIA L40S", "fp32") == 183.0  # not the L4's
    assert bench.peak_tflops("NVIDIA A100-SXM4-80GB", "fp32") == 156.0
    assert bench.peak_tflops("TPU v5 lite", "bf16") == 197.0
    assert bench.peak_tflops("cpu", "bf16") is None


@pytest.mark.slow  # two worker processes compiling two models each (about 30 s)
def test_smoke_run_times_jax_at_both_precisions():
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_gpu_resnet50.py"),
            "--smoke",
            "--no-torch",
            "--spec",
            "gap-head",
            "--input",
            "16x16x3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("16x16x3 on cpu")
    assert [line.split()[:2] for line in lines[2:4]] == [["fp32", "2"], ["bf16", "2"]]
    rows = json.loads(lines[-1])
    assert [(r["framework"], r["precision"]) for r in rows["jax"]] == [("jax", "fp32"), ("jax", "bf16")]
    assert rows["torch"] == []
    typed = compile_target("gap-head", "16x16x3")
    for row in rows["jax"]:
        assert row["finite"] and row["images_per_second"] > 0
        # 3 x 2 x MACs per image: forward and backward
        expected = 6 * typed.macs * row["images_per_second"] / 1e12
        assert row["tflops"] == pytest.approx(expected, abs=0.006)
