"""Every core by default: `cnn-arch` asks JAX for one CPU device per usable core (unless the user chose a
count, or the model is large: then one device, which XLA threads over the cores), a batch that does
not split evenly trains on fewer of them, and a run on every core gives
the metrics of a run on one device."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import cnn_arch, subprocess_env

from archspec import devices
from archspec.devices import HOST_DEVICES_FLAG
from tests.conftest import PER_CORE, one_cpu_device

# No BatchNorm or dropout: the loss of every step is a plain function of the batch. Max pooling and a
# depthwise convolution, whose CPU gradients are written by hand (archspec.gradients), are split too.
PLAIN_SPEC = """\
input 8x8x1
conv 4 3 padding=same relu
maxpool 2
dwconv 3 padding=same relu
gap
dense 3 softmax
"""


def test_one_device_per_core_unless_the_user_chose(monkeypatch):
    monkeypatch.setattr(devices, "usable_cores", lambda: 6)
    environ = {"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}
    assert devices.spread_over_cores(environ) == 6
    # XLA's thread pools keep their own size (one thread per core): PJRT_NPROC is not set
    assert environ == {"XLA_FLAGS": f"--xla_cpu_enable_fast_math=false {HOST_DEVICES_FLAG}=6"}
    for chosen in (
        {"XLA_FLAGS": f"{HOST_DEVICES_FLAG}=2"},
        {"JAX_NUM_CPU_DEVICES": "3"},
        {"XLA_FLAGS": f"{HOST_DEVICES_FLAG}=1"},
    ):  # the user's count wins
        before = dict(chosen)
        assert devices.spread_over_cores(chosen) is None
        assert chosen == before
    # A large model trains on one device, whose convolutions XLA threads over the cores
    environ = {}
    assert devices.spread_over_cores(environ, trainable=devices.ONE_DEVICE_FROM) is None
    assert environ == {}
    assert devices.spread_over_cores(environ, trainable=devices.ONE_DEVICE_FROM - 1) == 6
    monkeypatch.setattr(devices, "usable_cores", lambda: 1)
    environ = {}
    assert devices.spread_over_cores(environ) is None
    assert environ == {}


def test_jax_commands_restart_with_huge_pages_on_glibc(monkeypatch):
    monkeypatch.setattr("os.confstr", lambda name: "glibc 2.36")
    restart = devices.restart_environment({"GLIBC_TUNABLES": "glibc.pthread.rseq=0", "HOME": "/h"})
    assert restart == {"GLIBC_TUNABLES": "glibc.pthread.rseq=0:glibc.malloc.hugetlb=1", "HOME": "/h"}
    assert devices.restart_environment({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) is None  # the user's choice
    monkeypatch.setattr("os.confstr", lambda name: None)  # musl, macOS: nothing to set
    assert devices.restart_environment({}) is None


def test_the_program_restarts_itself_for_jax_commands_only(monkeypatch):
    from cnn_arch.cli import app, start

    started = []
    monkeypatch.setattr("os.confstr", lambda name: "glibc 2.36")
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.setattr("os.execve", lambda path, argv, env: started.append((argv, env["GLIBC_TUNABLES"])))
    monkeypatch.setattr(app, "main", lambda: started.append("main"))
    for command in ("train", "lint"):
        monkeypatch.setattr("sys.argv", ["cnn-arch", command, "spec.arch"])
        start.run()
    # (os.execve replaces the process; here the stand-in returns, and main runs after it)
    assert started == [
        ([sys.executable, "-m", "cnn_arch", "train", "spec.arch"], "glibc.malloc.hugetlb=1"),
        "main",
        "main",
    ]
    # code export and a comparison of specs are static: no restart (ONNX export of a run, compare --data are not)
    started.clear()
    for argv in (["export", "resnet50", "--to", "pytorch"], ["compare", "a.arch", "b.arch"]):
        monkeypatch.setattr("sys.argv", ["cnn-arch", *argv])
        start.run()
    assert started == ["main", "main"]
    assert start.runs_jax(["compare", "a.arch", "--data", "digits"])


def test_usable_cores_follow_a_container_quota(monkeypatch, tmp_path):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)), raising=False)
    quota = tmp_path / "cpu.max"
    monkeypatch.setattr(devices, "CGROUP_CPU_MAX", quota)
    assert devices.usable_cores() == 8  # no cgroup file
    quota.write_text("max 100000\n")
    assert devices.usable_cores() == 8
    quota.write_text("250000 100000\n")
    assert devices.usable_cores() == 2  # 2.5 CPUs of quota: 2 devices, never more threads than cores
    quota.write_text("50000 100000\n")
    assert devices.usable_cores() == 1


@pytest.mark.slow  # JAX in a process of its own, with several devices
def test_a_batch_that_does_not_split_trains_on_fewer_cpu_devices():
    code = (
        "from archspec.train.distributed import mesh_for_batch as m; print([m(b).devices.size for b in (32, 6, 7, 1)])"
    )
    env = subprocess_env(XLA_FLAGS=f"{HOST_DEVICES_FLAG}=4")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "[4, 3, 1, 1]"


@pytest.mark.slow  # two trainings through the CLI, each in a process of its own
def test_every_core_by_default_gives_the_metrics_of_one_device(tmp_path, tiny_data):
    spec = tmp_path / "plain.arch"
    spec.write_text(PLAIN_SPEC)
    # SGD: its steps scale with the gradient (Adam's would not show a sum taken for a mean)
    options = ["--data", tiny_data, "--epochs", "2", "--batch-size", "16", "--lr", "0.05", "--summary", "none"]
    options += ["--optimizer", "sgd", "--momentum", "0.9"]
    runs = {}
    for name, env in (
        ("default", subprocess_env(**PER_CORE)),
        ("one", subprocess_env(XLA_FLAGS=f"{HOST_DEVICES_FLAG}=1")),
    ):
        process = cnn_arch("train", spec, *options, "--out", tmp_path / name, env=env)
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
        runs[name] = (out, tmp_path / name)
    cores = devices.usable_cores()
    # A small model on a multi-core CPU: a process per core (archspec.train.cores), a device each.
    every = f"{cores} CPU processes, one per core" if cores > 1 else "1 CPU device"
    assert f"Training on {every}:" in runs["default"][0]
    assert f"{one_cpu_device()}:" in runs["one"][0]
    described = json.loads((tmp_path / "default" / "config.json").read_text())["devices"]
    assert described["count"] == described["processes"] == cores
    assert described["process_per_core"] == (cores > 1)

    def metrics(folder):
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        results = json.loads((folder / "results.json").read_text())
        return rows, results

    (rows, results), (rows_one, results_one) = metrics(tmp_path / "default"), metrics(tmp_path / "one")
    for row, row_one in zip(rows, rows_one, strict=True):
        assert row["train_loss"] == pytest.approx(row_one["train_loss"], rel=1e-5)
        assert row["train_accuracy"] == row_one["train_accuracy"]
        assert row["val_loss"] == pytest.approx(row_one["val_loss"], rel=1e-5)
    assert results["test"]["accuracy"] == results_one["test"]["accuracy"]
    assert results["test"]["loss"] == pytest.approx(results_one["test"]["loss"], rel=1e-5)


@pytest.mark.slow  # a training through the CLI in a process of its own
def test_a_large_model_trains_on_one_device_threaded_over_the_cores(tmp_path, tiny_data):
    # 10,880,003 trainable parameters, most in one dense layer: above a process per core's limit
    # (archspec.train.cores.UP_TO), where exchanging the gradients costs more than it gains.
    spec = tmp_path / "wide.arch"
    spec.write_text("input 8x8x1\nflatten\ndense 160000 relu\ndense 3 softmax\n")
    options = ["--data", tiny_data, "--epochs", "1", "--batch-size", "16", "--summary", "none"]
    process = cnn_arch("train", spec, *options, "--out", tmp_path / "run", env=subprocess_env(**PER_CORE))
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err
    assert f"{one_cpu_device()}:" in out
    assert json.loads((tmp_path / "run" / "config.json").read_text())["devices"]["count"] == 1
