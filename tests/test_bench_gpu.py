"""benchmarks/bench_gpu_resnet50.py: its PyTorch model is the spec's model (the summary's parameter
counts, every layer's output shape), the peak table matches device kinds as JAX and PyTorch name
them, and the whole benchmark runs on CPU in smoke mode, JAX and PyTorch side by side."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from archspec.templates import catalog
from cnn_arch.cli.common import compile_target

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


torch_spec = _load("torch_spec")
bench = _load("bench_gpu_resnet50")


@pytest.mark.parametrize("name", [entry.name for entry in catalog()])
def test_torch_model_has_the_summary_parameter_counts(name):
    typed = compile_target(name, None)
    with torch.device("meta"):  # shapes only: no memory for VGG's 138 M weights
        model = torch_spec.TorchSpecModel(typed)
    assert torch_spec.count_values(model) == (typed.trainable, typed.params - typed.trainable)


@pytest.mark.parametrize(
    ("name", "shape"),
    [("resnet50", "64x64x3"), ("efficientnet-b0", "64x64x3"), ("googlenet", "64x64x3"), ("lenet5", None)],
)
def test_torch_model_has_every_layer_shape_of_the_spec(name, shape):
    """Strided `same` convolutions and pools (padded at the bottom/right, as XLA does), zero padding,
    squeeze-excite products and concatenations give the inferred shape at every node."""
    typed = compile_target(name, shape)
    model = torch_spec.TorchSpecModel(typed).eval()
    h, w, c = typed.input_shape
    with torch.no_grad():
        values = model.trace(torch.zeros(1, c, h, w), logits=False)
    found = [(*v.shape[2:], v.shape[1]) if v.ndim == 4 else tuple(v.shape[1:]) for v in values]
    assert found == [info.shape for info in typed.infos]


def test_peak_table_matches_device_kinds():
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert bench.peak_tflops("NVIDIA H100 PCIe", "bf16") == 756.0
    assert bench.peak_tflops("NVIDIA L40S", "fp32") == 183.0  # not the L4's
    assert bench.peak_tflops("NVIDIA A100-SXM4-80GB", "fp32") == 156.0
    assert bench.peak_tflops("TPU v5 lite", "bf16") == 197.0
    assert bench.peak_tflops("cpu", "bf16") is None


@pytest.mark.slow  # two worker processes compiling two models each (about 30 s)
def test_smoke_run_times_jax_and_pytorch_at_both_precisions():
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_gpu_resnet50.py"),
            "--smoke",
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
    assert lines[0] == "16x16x3 on cpu; PyTorch on cpu"
    assert [line.split()[:2] for line in lines[2:4]] == [["fp32", "2"], ["bf16", "2"]]
    rows = json.loads(lines[-1])
    assert [(r["framework"], r["precision"]) for r in rows["jax"] + rows["torch"]] == [
        ("jax", "fp32"),
        ("jax", "bf16"),
        ("pytorch", "fp32"),
        ("pytorch-amp", "bf16"),
    ]
    typed = compile_target("gap-head", "16x16x3")
    for row in rows["jax"] + rows["torch"]:
        assert row["finite"] and row["images_per_second"] > 0
        # 3 x 2 x MACs per image: forward and backward
        expected = 6 * typed.macs * row["images_per_second"] / 1e12
        assert row["tflops"] == pytest.approx(expected, abs=0.006)
