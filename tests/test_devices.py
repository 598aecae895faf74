"""`cnn-arch devices` on this CPU-only machine, the "GPU visible but JAX on CPU" warning driven by the
environment (CUDA_VISIBLE_DEVICES, a fake nvidia-smi on PATH), `train`'s copy of it, and the
accelerator extras in the package's metadata against JAX's own."""

from __future__ import annotations

import json
import re
from importlib import metadata

import jax
import pytest

from archspec import devices

WARNING = "but JAX runs on CPU"


@pytest.fixture
def no_gpu(monkeypatch, tmp_path):
    """An environment with no sign of a GPU: PATH without nvidia-smi, no CUDA_VISIBLE_DEVICES, no driver."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    monkeypatch.setattr(devices, "NVIDIA_DRIVER", tmp_path / "no-driver")
    return empty


def test_devices_lists_every_jax_device_on_cpu(cli, no_gpu):
    result = cli("devices")
    assert result.code == 0, result.err
    assert f"JAX {jax.__version__}" in result.out
    assert "backend: cpu" in result.out
    assert "processes: 1 (this is process 0)" in result.out
    rows = [line for line in result.out.splitlines() if re.match(r"\s+\d+ │ cpu", line)]
    assert len(rows) == len(jax.devices())
    assert "available" in rows[0]  # a CPU device uses the host's memory
    assert WARNING not in result.err


def test_devices_json(cli, no_gpu):
    result = cli("devices", "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["backend"] == "cpu"
    assert [d["id"] for d in report["devices"]] == [d.id for d in jax.devices()]
    assert {d["kind"] for d in report["devices"]} == {d.device_kind for d in jax.devices()}
    assert report["host_memory_available"] > 0
    assert report["warning"] is None


@pytest.mark.parametrize("value", ["0", "0,1", "GPU-5c3e1d2a"])
def test_cuda_visible_devices_warns_with_the_install_command(cli, no_gpu, monkeypatch, value):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    result = cli("devices")
    assert result.code == 0
    assert f"CUDA_VISIBLE_DEVICES={value} is set" in result.err
    assert WARNING in result.err
    assert "pip install '.[cuda]'" in result.err
    assert f"jax[cuda12]=={jax.__version__}" in result.err


@pytest.mark.parametrize("value", ["", "-1"])
def test_hidden_gpus_do_not_warn(cli, no_gpu, monkeypatch, value):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert WARNING not in cli("devices").err


def test_nvidia_smi_on_path_warns(cli, no_gpu):
    fake = no_gpu / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI 570.00'\n")
    fake.chmod(0o755)
    result = cli("devices")
    assert f"{fake} is on PATH" in result.err
    assert WARNING in result.err


def test_nvidia_driver_warns(cli, no_gpu, monkeypatch, tmp_path):
    driver = tmp_path / "driver" / "nvidia"
    driver.mkdir(parents=True)
    monkeypatch.setattr(devices, "NVIDIA_DRIVER", driver)
    assert WARNING in cli("devices").err


def test_chosen_cpu_does_not_warn(no_gpu, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert devices.unused_gpu_warning("cpu") is not None
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert devices.unused_gpu_warning("cpu") is None
    monkeypatch.setenv("JAX_PLATFORMS", "cuda,cpu")
    assert devices.unused_gpu_warning("cpu") is not None
    assert devices.unused_gpu_warning("gpu") is None


def test_installed_plugin_that_failed_says_so(no_gpu, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    real = devices._version
    monkeypatch.setattr(devices, "_version", lambda name: "0.0.1" if name == "jax-cuda12-plugin" else real(name))
    warning = devices.unused_gpu_warning("cpu")
    assert "jax-cuda12-plugin is installed" in warning
    assert "nvidia-smi" in warning


@pytest.mark.slow  # trains (about 15 s with start-up)
def test_train_warns_once_before_training(cli, no_gpu, monkeypatch, tmp_path):
    spec = tmp_path / "small.arch"
    spec.write_text("input 8x8x1\nconv 4 3 relu\ngap\ndense 10 softmax\n")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    result = cli(
        "train", str(spec), "--data", "digits", "--epochs", "1", "--batch-size", "128", "--out", str(tmp_path / "run")
    )
    assert result.code == 0, result.err
    assert result.err.count(WARNING) == 1
    assert "pip install '.[cuda]'" in result.err


def test_accelerator_extras_are_jax_extras():
    """`cuda`, `cuda13` and `tpu` each require JAX with an extra that the installed JAX provides."""
    requires = metadata.requires("cnn-arch") or []
    provided = set(metadata.metadata("cnn-arch").get_all("Provides-Extra"))
    jax_extras = set(metadata.metadata("jax").get_all("Provides-Extra"))
    for ours, theirs in (("cuda", "cuda12"), ("cuda13", "cuda13"), ("tpu", "tpu")):
        assert ours in provided
        assert any(re.match(rf"jax\[{theirs}\].*extra == \"{ours}\"", r) for r in requires), requires
        assert theirs in jax_extras
