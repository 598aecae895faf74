"""Run folders that survive faults: a second training on the same folder, damaged checkpoints, a full
disk, memory that would not suffice, seeds out of range, Ctrl-C during start-up."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import time

import jax
import numpy as np
import pytest
from conftest import TINY_SPEC, assert_bitwise_equal, cnn_arch, final_state

from archspec.errors import PathError, SpecError, UserError
from archspec.train.loop import Interrupted, Reporter, train_and_evaluate


@pytest.fixture
def config(tiny_config):
    """Four epochs, a checkpoint every 2 steps, all kept: several checkpoints to damage or fall back to."""

    def make(**changes):
        return tiny_config(**{"epochs": 4, "checkpoint_every": 2, "keep_checkpoints": 10, **changes})

    return make


class StopAtEpoch(Reporter):
    """Sends this process SIGTERM at the end of epoch `epoch`: the loop stops as a user's Ctrl-C would."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.info = None

    def start(self, info):
        self.info = info

    def epoch_end(self, row):
        if row["epoch"] == self.epoch:
            os.kill(os.getpid(), signal.SIGTERM)


class Remember(Reporter):
    def start(self, info):
        self.info = info


def damage(checkpoint, how: str) -> None:
    """Damage one checkpoint folder the ways a disk or a person does."""
    if how == "truncated array file":
        for data in glob.glob(str(checkpoint / "model" / "d" / "*")):  # the arrays, merged from every process
            os.truncate(data, os.path.getsize(data) // 2)
    elif how == "truncated metadata":
        metadata = checkpoint / "model" / "_METADATA"
        metadata.write_bytes(metadata.read_bytes()[:100])
    elif how == "missing manifest":
        (checkpoint / "model" / "manifest.ocdbt").unlink()
    elif how == "missing item":
        shutil.rmtree(checkpoint / "model")


def newest_checkpoint(run_dir):
    return max((p for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


@pytest.mark.slow
def test_resume_falls_back_past_a_damaged_newest_checkpoint_to_bitwise_the_same_model(tmp_path, config):
    reference = tmp_path / "reference"
    train_and_evaluate(config(), reference)

    run_dir = tmp_path / "run"
    with pytest.raises(Interrupted):
        train_and_evaluate(config(), run_dir, reporter=StopAtEpoch(2))
    newest = newest_checkpoint(run_dir)
    damage(newest, "truncated array file")

    reporter = Remember()
    train_and_evaluate(config(), run_dir, resume=True, reporter=reporter)
    skipped = reporter.info["skipped_checkpoints"]
    assert [folder for folder, _ in skipped] == [str(newest)]
    assert skipped[0][1] == "an array file is damaged or missing"
    assert reporter.info["resumed_at"] < int(newest.name)
    assert_bitwise_equal(final_state(run_dir), final_state(reference))


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory, tiny_data):
    """A finished run of 2 epochs with a checkpoint every 2 steps, trained once for the damage tests:
    each damages a copy of its own."""
    from archspec.train.config import TrainConfig

    run_dir = tmp_path_factory.mktemp("two-epochs") / "run"
    settings = {"spec": "tiny", "spec_text": TINY_SPEC, "input_shape": (8, 8, 1), "data": str(tiny_data)}
    settings |= {"epochs": 2, "batch_size": 16, "lr": 0.01, "checkpoint_every": 2, "keep_checkpoints": 10}
    train_and_evaluate(TrainConfig(**settings), run_dir)  # the `config` fixture's, at 2 epochs
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncated array file", "truncated metadata", "missing manifest", "missing item"])
def test_evaluate_uses_the_newest_intact_checkpoint_and_names_the_damaged_one(cli, tmp_path, two_epoch_run, how):
    run_dir = tmp_path / "run"
    shutil.copytree(two_epoch_run, run_dir)
    newest = newest_checkpoint(run_dir)
    damage(newest, how)
    result = cli("evaluate", str(run_dir), "--checkpoint", "last")
    assert result.code == 0, result.err
    assert f"warning: skipped the damaged checkpoint {newest} (" in result.err
    assert "Traceback" not in result.err
    assert f"step {int(newest.name) - 2}" in result.out  # checkpoints every 2 steps: the one before


@pytest.mark.slow
def test_no_intact_checkpoint_is_a_message_not_a_traceback(cli, tmp_path, two_epoch_run):
    run_dir = tmp_path / "run"
    shutil.copytree(two_epoch_run, run_dir)
    for folder in (*(run_dir / "checkpoints").iterdir(), *(run_dir / "best").iterdir()):
        if folder.name.isdigit():
            damage(folder, "missing item")
    result = cli("evaluate", str(run_dir))
    assert result.code == 2
    assert "has no intact checkpoint" in result.err and "its `model` item is missing" in result.err
    assert "Traceback" not in result.err


@pytest.mark.slow
def test_init_from_starts_a_new_run_from_a_trained_model_with_other_options(tmp_path, config):
    from conftest import plain

    from archspec.train.inference import load_run

    source = tmp_path / "source"
    learned = train_and_evaluate(config(epochs=6, lr=0.05), source).results
    assert learned["val"]["accuracy"] >= 0.9
    trained = plain(load_run(source).model)
    # A learning rate too small to move the weights: the new run's model is the source's.
    tuned = tmp_path / "tuned"
    outcome = train_and_evaluate(config(epochs=1, lr=1e-12, optimizer="sgd", init_from=str(source)), tuned)
    assert outcome.results["val"]["accuracy"] == learned["val"]["accuracy"]
    for now, before in zip(jax.tree.leaves(plain(load_run(tuned).model.params)), jax.tree.leaves(trained.params)):
        np.testing.assert_allclose(now, before, atol=1e-6)
    fresh = train_and_evaluate(config(epochs=1, lr=1e-12, optimizer="sgd"), tmp_path / "fresh")
    assert fresh.results["val"]["accuracy"] < 0.9  # from scratch the same run learns nothing

    with pytest.raises(SpecError, match=r"line 2 `conv 6 3x3` has kernel 3x3x1x6, but its layer line 2 `conv 4"):
        train_and_evaluate(
            config(spec_text=TINY_SPEC.replace("conv 4", "conv 6"), init_from=str(source)), tmp_path / "other"
        )
    assert not (tmp_path / "other").exists()  # refused before anything was written
    with pytest.raises(PathError, match="has no checkpoint of step 999"):
        train_and_evaluate(config(init_from=str(source / "checkpoints" / "999")), tmp_path / "missing")


def test_training_memory_beyond_the_device_is_refused_with_the_numbers(tmp_path, config, monkeypatch):
    from archspec.train import memory

    monkeypatch.setattr(memory, "device_memory", lambda: (10 * 2**20, "the host's available"))
    with pytest.raises(UserError) as refused:
        train_and_evaluate(config(batch_size=16, spec_text=TINY_SPEC.replace("conv 4", "conv 4096")), tmp_path / "r")
    message = str(refused.value)
    assert "training needs at least" in message and "at batch 16" in message
    assert "more than the host's available 10.00 MiB" in message
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("seed", ["-1", str(10**20)])
def test_a_seed_outside_32_bits_is_a_usage_error(cli, tmp_path, tiny_spec, tiny_data, seed):
    result = cli("train", str(tiny_spec), "--data", str(tiny_data), "--seed", seed, "--out", str(tmp_path / "r"))
    assert result.code == 2
    assert "`--seed`" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "r").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs: a disk that fills up for real."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


class FillDiskAtEpoch(Reporter):
    """Fills the disk once epoch `epoch` has ended, as another program would."""

    def __init__(self, disk, epoch: int) -> None:
        self.disk, self.epoch = disk, epoch

    def epoch_end(self, row):
        if row["epoch"] == self.epoch:
            with open(self.disk / "filler", "wb") as filler:
                try:
                    while True:
                        filler.write(b"\0" * 65536)
                except OSError:
                    pass


@pytest.mark.slow
def test_a_full_disk_ends_with_a_message_and_resume_works_once_space_is_freed(cli, tmp_path, config, small_disk):
    run_dir = small_disk / "run"
    with pytest.raises(PathError) as refused:
        train_and_evaluate(config(epochs=4), run_dir, reporter=FillDiskAtEpoch(small_disk, 1))
    message = refused.value.render()
    assert "No space left on device" in message and "free on its disk" in message
    assert str(run_dir) in message and "--resume" in message
    assert not isinstance(refused.value, Interrupted)

    (small_disk / "filler").unlink()
    outcome = train_and_evaluate(config(epochs=4), run_dir, resume=True)
    assert outcome.results["val"]["accuracy"] >= 0.5
    reference = tmp_path / "reference"
    train_and_evaluate(config(epochs=4), reference)
    assert_bitwise_equal(final_state(run_dir), final_state(reference))


@pytest.mark.slow
def test_a_full_disk_through_the_cli_exits_2_without_a_traceback(cli, small_disk, tiny_spec, tiny_data):
    (small_disk / "filler").write_bytes(b"\0" * (4 * 2**20 - 8192))  # room for config.json, not a checkpoint
    result = cli("train", str(tiny_spec), "--data", str(tiny_data), "--epochs", "2", "--out", str(small_disk / "r"))
    assert result.code == 2, result.err
    assert "No space left on device" in result.err and "Traceback" not in result.err


@pytest.mark.slow
def test_a_second_training_on_the_same_folder_is_refused_while_the_first_finishes(tmp_path, tiny_spec, tiny_data):
    out = tmp_path / "run"
    args = ("train", tiny_spec, "--data", tiny_data, "--epochs", 6, "--batch-size", 8, "--out", out)
    first = cnn_arch(*args)
    deadline = time.monotonic() + 120
    while not (out / "config.json").exists():
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = cnn_arch(*args)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2, err
    assert f"{out}: error: is in use by another `cnn-arch train`" in err and "Traceback" not in err
    _, err = first.communicate(timeout=240)
    assert first.returncode == 0, err
    assert (out / "results.json").is_file()


@pytest.mark.slow
def test_ctrl_c_during_start_up_exits_130(tmp_path, tiny_spec, tiny_data):
    for attempt in range(3):
        out = tmp_path / f"run{attempt}"
        process = cnn_arch("train", tiny_spec, "--data", tiny_data, "--out", out)
        deadline = time.monotonic() + 120
        while not (out / "config.json").exists():
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 130, err
        assert "stopped by SIGINT" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5])
def test_ctrl_c_in_the_first_second_stops_the_run(tmp_path, tiny_spec, tiny_data, delay):
    # Before the handler of `archspec.train.stopping`, a SIGINT that landed in one of JAX's garbage-
    # collection callbacks was swallowed there and the run trained to the end with exit 0.
    out = tmp_path / "run"
    process = cnn_arch("train", tiny_spec, "--data", tiny_data, "--out", out)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err
    if "stopped by SIGINT before the first step" in err:
        # Nothing to save: no folder is left behind, even once the set-up has written its config.
        assert not out.exists()
    else:  # a fast machine reached the first steps within `delay`: they are kept, and resumable
        assert "--resume" in err and any((out / "checkpoints").iterdir())


@pytest.mark.slow
def test_a_disk_filling_up_during_a_save_is_one_message_without_background_tracebacks(small_disk, tiny_spec, tiny_data):
    # Orbax's background save threads logged each fault with its traceback (17 of them) before the message.
    out = small_disk / "run"
    args = ("train", tiny_spec, "--data", tiny_data, "--epochs", 30, "--batch-size", 8, "--checkpoint-every", 2)
    process = cnn_arch(*args, "--out", out)
    deadline = time.monotonic() + 120
    while not (out / "checkpoints").is_dir() or not any((out / "checkpoints").iterdir()):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    with open(small_disk / "filler", "wb") as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 65536)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert err.startswith(f"{out}") and ": error: cannot be written: No space left on device" in err
    assert "Traceback" not in err and "ERROR:absl" not in err and len(err.splitlines()) == 2
