"""The TensorBoard event files of `cnn-arch train`, read back with TensorBoard's own reader and
compared with the history the run printed (metrics.jsonl)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from collections import Counter

import numpy as np
import pytest
from conftest import TINY_SPEC, cnn_arch, subprocess_env
from PIL import Image

from archspec.train.loop import Reporter, train_and_evaluate

TRAIN_TAGS = {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "epoch_images_per_second"}


def history(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def accumulator(run_dir, sub: str):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard" / sub), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    return events


def scalars(run_dir, sub: str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of a sub-run as TensorBoard shows it: (step, value) in step order."""
    events = accumulator(run_dir, sub)
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def expected(rows: list[dict]) -> tuple[dict, dict]:
    """The train and validation scalars `rows` (metrics.jsonl) should give, as float32 (TensorBoard's)."""

    def series(key):
        return [(row["epoch"], float(np.float32(row[key]))) for row in rows]

    train = {
        "epoch_loss": series("train_loss"),
        "epoch_accuracy": series("train_accuracy"),
        "epoch_learning_rate": series("lr"),
        "epoch_images_per_second": series("images_per_second"),
    }
    return train, {"epoch_loss": series("val_loss"), "epoch_accuracy": series("val_accuracy")}


def steps_per_file(run_dir, sub: str) -> Counter:
    """How often each (tag, step) occurs over all of a sub-run's files, each read on its own."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    counts = Counter()
    for path in (run_dir / "tensorboard" / sub).iterdir():
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                counts[(value.tag, event.step)] += 1
    return counts


@pytest.mark.slow
def test_events_hold_the_printed_history_the_layer_table_and_the_first_batch(cli, tmp_path, tiny_config, tiny_spec):
    run_dir = tmp_path / "run"
    config = tiny_config(epochs=3, tensorboard_images=True)
    train_and_evaluate(config, run_dir)
    rows = history(run_dir)
    train, val = expected(rows)
    # Train and validation are two sub-runs with the same tags, so TensorBoard overlays them (as Keras').
    assert scalars(run_dir, "train") == train
    assert scalars(run_dir, "validation") == val
    assert [step for step, _ in train["epoch_loss"]] == [1, 2, 3]

    texts = accumulator(run_dir, "train")
    table = texts.Tensors("layers/text_summary")[0]
    summarized = cli("summarize", str(tiny_spec), "--format", "markdown")
    assert table.step == 0
    assert table.tensor_proto.string_val[0].decode() == summarized.out.replace(str(tiny_spec), "tiny")
    spec = texts.Tensors("spec/text_summary")[0].tensor_proto.string_val[0].decode()
    assert [line.strip() for line in spec.splitlines()] == TINY_SPEC.splitlines()

    # The first batch: one grid of 16 8x8 tiles, each a training image of the class its label names.
    from archspec.train.data import load_dataset

    dataset = load_dataset(config.data, config.input_shape, val_split=config.val_split, seed=0, skip_bad_files=False)
    grid = np.asarray(Image.open(io.BytesIO(texts.Images("first_batch")[0].encoded_image_string)).convert("L"))
    labels = texts.Tensors("first_batch_labels/text_summary")[0].tensor_proto.string_val[0].decode().split(", ")
    assert grid.shape == (16, 64) and len(labels) == config.batch_size
    tiles = [grid[8 * (k // 8) : 8 * (k // 8) + 8, 8 * (k % 8) : 8 * (k % 8) + 8] for k in range(16)]
    for tile, label in zip(tiles, labels):
        matches = [i for i, image in enumerate(dataset.x_train[..., 0]) if np.array_equal(image, tile)]
        assert matches and dataset.class_names[dataset.y_train[matches[0]]] == label


class CrashAtEpoch(Reporter):
    """Fails once epoch `epoch` is logged and before its checkpoint, as a crash there would."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_end(self, row):
        if row["epoch"] == self.epoch:
            raise RuntimeError("crash")


class Remember(Reporter):
    def start(self, info):
        self.info = info


@pytest.mark.slow
def test_a_resumed_run_continues_its_events_without_writing_a_step_twice(tmp_path, tiny_config):
    run_dir = tmp_path / "run"
    config = tiny_config(epochs=6)
    with pytest.raises(RuntimeError):
        train_and_evaluate(config, run_dir, reporter=CrashAtEpoch(4))
    assert [step for step, _ in scalars(run_dir, "train")["epoch_loss"]] == [1, 2, 3, 4]
    remember = Remember()
    train_and_evaluate(config, run_dir, resume=True, reporter=remember)
    steps_per_epoch = 86 // 16
    assert remember.info["resumed_at"] < 4 * steps_per_epoch, "epoch 4 was checkpointed: nothing to take back"

    rows = history(run_dir)
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4, 5, 6]
    train, val = expected(rows)
    assert scalars(run_dir, "train") == train
    assert scalars(run_dir, "validation") == val
    for sub, tags in (("train", TRAIN_TAGS), ("validation", {"epoch_loss", "epoch_accuracy"})):
        counts = steps_per_file(run_dir, sub)
        assert {tag for tag, _ in counts} >= tags
        assert set(counts.values()) == {1}, f"a step written twice in {sub}: {counts}"
    assert len(list((run_dir / "tensorboard" / "train").iterdir())) == 2  # one file per session


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs: a disk that fills up for real."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["full disk", "not a folder"])
def test_events_that_cannot_be_written_are_one_warning_and_training_goes_on(
    request, tmp_path, tiny_config, capfd, fault
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if fault == "full disk":  # the events' folder alone is on a full disk: the rest of the run folder has room
        disk = request.getfixturevalue("small_disk")
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
        (run_dir / "tensorboard").symlink_to(disk, target_is_directory=True)
        reason = "No space left on device"
    else:
        (run_dir / "tensorboard").write_text("in the way")
        reason = "Not a directory"
    outcome = train_and_evaluate(tiny_config(epochs=3), run_dir)
    err = capfd.readouterr().err
    assert err.count("warning: cannot write the TensorBoard events") == 1, err
    assert reason in err and "training goes on" in err and "Traceback" not in err
    assert [row["epoch"] for row in history(run_dir)] == [1, 2, 3] and "test" in outcome.results


@pytest.mark.slow
def test_the_cli_writes_events_that_tensorboard_lists_as_two_runs(tmp_path, tiny_spec, tiny_data):
    out = tmp_path / "runs" / "tiny"
    # A `torch` first on the path that records being imported: training must never import PyTorch
    # (tensorboardX did, for its event files: +1 GB of memory and 2.4 s per run where torch is installed).
    (tmp_path / "stub/torch").mkdir(parents=True)
    marker = tmp_path / "torch-imported"
    (tmp_path / "stub/torch/__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise ImportError\n")
    path = os.pathsep.join([str(tmp_path / "stub"), os.environ.get("PYTHONPATH", "")])
    env = subprocess_env(CNN_ARCH_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=path)
    args = ("train", tiny_spec, "--data", tiny_data, "--epochs", 2, "--batch-size", 16, "--out", out)
    process = cnn_arch(*args, "--tensorboard-images", env=env)
    output, err = process.communicate(timeout=240)
    assert process.returncode == 0, err
    assert "Compiled the train step in" in output
    assert not marker.exists(), "training imported torch"

    # What `tensorboard --logdir runs/` finds: one train and one validation run per run folder.
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    multiplexer = EventMultiplexer().AddRunsFromDirectory(str(tmp_path / "runs"))
    multiplexer.Reload()
    runs = multiplexer.Runs()
    assert set(runs) == {"tiny/tensorboard/train", "tiny/tensorboard/validation"}
    assert set(runs["tiny/tensorboard/train"]["scalars"]) == TRAIN_TAGS
    assert runs["tiny/tensorboard/train"]["images"] == ["first_batch"]
    assert set(runs["tiny/tensorboard/validation"]["scalars"]) == {"epoch_loss", "epoch_accuracy"}


def test_an_event_file_cut_short_by_a_kill_keeps_its_complete_records_before_the_resumed_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    from archspec.train.events import keep_steps_before

    # A file written by TensorBoard's own writer.
    writer = EventFileWriter(str(tmp_path))
    for epoch in (1, 2, 3, 4):
        writer.add_event(Event(step=epoch, summary=Summary(value=[Summary.Value(tag="l", simple_value=1.0 / epoch)])))
    writer.close()
    (path,) = tmp_path.iterdir()
    path.write_bytes(path.read_bytes()[:-7])  # the kill came while epoch 4 was written
    keep_steps_before(path, 3)  # resumed at epoch 3: epochs 3 and 4 are written again
    events = list(EventFileLoader(str(path)).Load())
    assert events[0].file_version.startswith("brain.Event")
    values = [(e.step, tensor_util.make_ndarray(e.summary.value[0].tensor).item()) for e in events[1:]]
    assert values == [(1, 1.0), (2, 0.5)]

    keep_steps_before(path, 0)  # a fresh start in the same folder: nothing of the old run stays
    assert not path.exists()
