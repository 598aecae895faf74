"""A process per core (`archspec.train.cores`): `cnn-arch train` of a small model on a CPU host forks
one pinned process per core, which average their gradients in shared memory. Run as a user runs it
(`python -m cnn_arch train` in a subprocess): the results, a killed process, Ctrl-C and resume,
streamed data, and when it is chosen."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PER_CORE
from tests.train.conftest import assert_bitwise_equal, cnn_arch, final_state, subprocess_env

needs_two_cores = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else True,
    reason="a process per core needs two cores (the development machine and CI have 2)",
)


def _train(spec: Path, data: Path, run_dir: Path, *extra: str, env: dict | None = None, timeout: float = 240):
    process = cnn_arch(
        "train", spec, "--data", data, "--output", run_dir, "--summary", "none", *extra,
        env=env or subprocess_env(**PER_CORE),
    )  # fmt: skip
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.slow
@needs_two_cores
def test_ctrl_c_stops_every_process_at_one_step_and_resume_gives_bitwise_the_uninterrupted_run(
    tmp_path, tiny_spec, tiny_data
):
    # The tiny spec has BatchNorm (statistics per process, averaged each step) and dropout.
    options = ("--epochs", "4", "--batch-size", "16", "--checkpoint-every", "2")
    code, _, err = _train(tiny_spec, tiny_data, tmp_path / "whole", *options)
    assert code == 0, err

    run_dir = tmp_path / "stopped"
    process = cnn_arch(
        "train", tiny_spec, "--data", tiny_data, "--output", run_dir, "--summary", "none", *options,
        env=subprocess_env(**PER_CORE), start_new_session=True,
    )  # fmt: skip
    _wait_for(lambda: (run_dir / "metrics.jsonl").is_file() and _rows(run_dir))
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: every process of the group gets it
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "stopped by SIGINT at step" in err and "Traceback" not in err
    assert "--resume" in err
    code, _, err = _train(tiny_spec, tiny_data, run_dir, *options, "--resume")
    assert code == 0, err
    assert_bitwise_equal(final_state(run_dir), final_state(tmp_path / "whole"))


@pytest.mark.slow
@needs_two_cores
def test_a_killed_process_stops_the_run_with_a_message_and_resume_goes_on(tmp_path, tiny_spec, tiny_data):
    run_dir = tmp_path / "run"
    options = ("--epochs", "20", "--batch-size", "16")
    process = cnn_arch(
        "train", tiny_spec, "--data", tiny_data, "--output", run_dir, "--summary", "none", *options,
        env=subprocess_env(**PER_CORE),
    )  # fmt: skip
    _wait_for(lambda: (run_dir / "metrics.jsonl").is_file() and len(_rows(run_dir)) >= 2)
    # While it trains, /dev/shm holds the step's exchange, not the initial weights' (as large).
    assert list(Path("/dev/shm").glob(f"cnn-arch-{process.pid}-step-*"))
    assert not list(Path("/dev/shm").glob(f"cnn-arch-{process.pid}-initial weights-*"))
    (child,) = _children(process.pid)
    os.kill(child, signal.SIGKILL)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert f"(pid {child}, one of 2) was killed by SIGKILL" in err
    assert "continue from the last checkpoint with:" in err and "--resume" in err
    assert "Traceback" not in err
    code, _out, err = _train(tiny_spec, tiny_data, run_dir, *options, "--resume")
    assert code == 0, err
    assert _rows(run_dir)[-1]["epoch"] == 20


@pytest.mark.slow
@needs_two_cores
def test_the_other_processes_end_when_rank_0_is_killed(tmp_path, tiny_spec, tiny_data):
    run_dir = tmp_path / "run"
    process = cnn_arch(
        "train", tiny_spec, "--data", tiny_data, "--output", run_dir, "--summary", "none", "--epochs", "200",
        env=subprocess_env(**PER_CORE),
    )  # fmt: skip
    _wait_for(lambda: (run_dir / "metrics.jsonl").is_file() and _rows(run_dir))
    (child,) = _children(process.pid)
    process.kill()
    process.communicate(timeout=30)
    _wait_for(lambda: not _alive(child), timeout=10)
    # Rank 0 could not remove its shared blocks: the last process of the run did.
    assert not list(Path("/dev/shm").glob(f"cnn-arch-{process.pid}-*"))


@pytest.mark.slow
@needs_two_cores
def test_streamed_data_trains_in_one_process(tmp_path, tiny_spec, tiny_data):
    code, out, err = _train(tiny_spec, tiny_data, tmp_path / "run", "--epochs", "1", "--data-memory", "0")
    assert code == 0, err
    assert "streamed" in out and "one per core" not in out
    assert "Training on 2 CPU devices" in out


@pytest.mark.parametrize(
    ("environ", "trainable", "batch", "platform_ok", "expected"),
    [
        ({}, 1_000, 32, True, (0, 1)),
        ({"CNN_ARCH_PROCESS_PER_CORE": "0"}, 1_000, 32, True, ()),
        ({}, 25_000_000, 32, True, ()),  # ResNet-50: one process threading its convolutions is faster
        ({}, 1_000, 33, True, ()),  # no even split over 2 cores
        ({"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, 1_000, 32, True, ()),
        ({"CUDA_VISIBLE_DEVICES": "0"}, 1_000, 32, True, ()),
        ({}, 1_000, 32, False, ()),
        ({"cores": 16}, 1_000, 32, True, ()),  # more cores than measured: one process, a device per core
    ],
)
def test_when_a_process_per_core_is_chosen(monkeypatch, environ, trainable, batch, platform_ok, expected):
    from archspec import devices
    from archspec.train import cores

    monkeypatch.setattr(cores, "allowed", True)
    cores_count = environ.get("cores", 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores_count)), raising=False)
    monkeypatch.setattr(devices, "CGROUP_CPU_MAX", Path("/nonexistent"))
    monkeypatch.setattr(devices, "NVIDIA_DRIVER", Path("/nonexistent"))
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(cores.platform, "machine", lambda: "x86_64" if platform_ok else "aarch64")
    environ = {"PATH": "/nonexistent", **{name: value for name, value in environ.items() if name != "cores"}}
    assert cores.wanted(trainable, batch, environ) == expected


def test_only_the_program_itself_forks(monkeypatch):
    from archspec.train import cores

    monkeypatch.setattr(cores, "allowed", False)  # a test runner or a notebook calling the command's code
    assert cores.wanted(1_000, 32, {}) == ()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            "",
            "--xla_cpu_multi_thread_eigen=false --xla_backend_extra_options=xla_cpu_disable_loop_unrolling",
        ),
        (  # the user's own backend options and thread setting are kept as given
            "--xla_backend_extra_options=xla_cpu_optimize_for_size --xla_cpu_multi_thread_eigen=true",
            "--xla_backend_extra_options=xla_cpu_optimize_for_size --xla_cpu_multi_thread_eigen=true",
        ),
    ],
    ids=["default", "the user's"],
)
def test_each_process_compiles_for_one_core_without_loop_unrolling(monkeypatch, flags, expected):
    # One thread for XLA's kernels in each process, and its kernels compiled without LLVM's loop
    # unrolling: a cold start waits for the compilations (docs/performance.md, "Time to the first step").
    from archspec.train import cores

    monkeypatch.setenv("XLA_FLAGS", flags)
    monkeypatch.delenv("PJRT_NPROC", raising=False)
    cores._per_core_flags()
    assert os.environ["XLA_FLAGS"] == expected
    assert os.environ["PJRT_NPROC"] == "1"
