"""Kill a training process mid-run, resume it, and get bitwise the same model as an uninterrupted run."""

from __future__ import annotations

import json
import signal
import time

import pytest
from conftest import assert_bitwise_equal, cnn_arch, final_state

pytestmark = pytest.mark.slow  # trains in subprocesses and kills them

EPOCHS = 5  # 86 images // 8 = 10 steps per epoch: 50 steps, a checkpoint every 4 (mid-epoch too)
TIMING = ("seconds", "images_per_second")


def train_args(spec, data, out):
    return ("train", spec, "--data", data, "--epochs", EPOCHS, "--batch-size", 8, "--checkpoint-every", 4, "--out", out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_spec, tiny_data):
    """An uninterrupted run, started at once and awaited by `finished` (it runs beside the first test)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    process = cnn_arch(*train_args(tiny_spec, tiny_data, out))

    def finished():
        _, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
        return out

    yield finished
    process.kill()
    process.communicate()


def stop_after_checkpoints(process, run_dir, count: int, how: signal.Signals) -> int:
    """Send `how` once `count` checkpoints are complete; return the newest checkpoint step then."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        folder = run_dir / "checkpoints"
        steps = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
        if len(steps) >= count:
            process.send_signal(how)
            return steps[-1]
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def metrics_rows(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{key: value for key, value in row.items() if key not in TIMING} for row in rows]


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_run_resumes_to_bitwise_the_same_parameters(tmp_path, tiny_spec, tiny_data, reference, how):
    out = tmp_path / "run"
    process = cnn_arch(*train_args(tiny_spec, tiny_data, out))
    seen = stop_after_checkpoints(process, out, 2, how)
    _, err = process.communicate(timeout=60)
    if how == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:  # a clean stop: a checkpoint at the current step, the conventional exit code, how to go on
        assert process.returncode == 128 + signal.SIGTERM, err
        assert "stopped by SIGTERM at step" in err and "--resume" in err
    assert seen < EPOCHS * 10, "the run finished before it was stopped"

    resumed = cnn_arch(*train_args(tiny_spec, tiny_data, out), "--resume")
    output, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err
    assert "Resumed at step" in output
    assert_bitwise_equal(final_state(out), final_state(reference()))
    assert metrics_rows(out) == metrics_rows(reference())
