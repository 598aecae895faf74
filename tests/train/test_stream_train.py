"""Training on a streamed folder: the same model as in memory, bitwise; a killed streamed run resumes
to bitwise the same model; two processes each read their own half of every batch."""

from __future__ import annotations

import dataclasses
import gc
import json
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_SPEC, assert_bitwise_equal, cnn_arch, final_state, make_images, plain, subprocess_env
from PIL import Image
from test_train_resume import metrics_rows, stop_after_checkpoints

from archspec.train import collector

pytestmark = pytest.mark.slow  # trains models

EPOCHS = 5  # 86 training images // 8 = 10 steps per epoch


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The tiny dataset's 96 training images as PNGs in class folders (86 train / 10 val)."""
    root = tmp_path_factory.mktemp("stream") / "bands"
    images, labels = make_images(96, seed=1)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = root / ("top", "middle", "bottom")[label] / f"{index:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    return root


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARCH_CACHE_DIR", str(tmp_path / "cache"))


def test_streamed_training_gives_bitwise_the_in_memory_model(tmp_path, folder, tiny_config, monkeypatch):
    from archspec.train.data import pipeline
    from archspec.train.inference import evaluate_run, load_run
    from archspec.train.loop import train_and_evaluate

    config = tiny_config(data=str(folder), epochs=3, batch_size=8, augment=("flip", "crop"))
    memory = train_and_evaluate(config, tmp_path / "memory")
    streamed = train_and_evaluate(dataclasses.replace(config, data_memory=0), tmp_path / "streamed")
    assert_bitwise_equal(plain(memory.state), plain(streamed.state))
    assert memory.results == streamed.results
    assert metrics_rows(tmp_path / "memory") == metrics_rows(tmp_path / "streamed")
    saved = [json.loads((tmp_path / name / "config.json").read_text()) for name in ("memory", "streamed")]
    assert saved[0]["data"] == saved[1]["data"]  # the fingerprint, and the image counts too

    # `evaluate` streams the data of a run that streamed it (its --data-memory), to the same scores.
    streams = []
    real_batches = pipeline.batches
    monkeypatch.setattr(pipeline, "batches", lambda *args, **kw: streams.append(1) or real_batches(*args, **kw))
    in_memory = evaluate_run(load_run(tmp_path / "memory"))
    assert not streams
    collector.pause()  # as `cnn-arch evaluate` starts: a streamed evaluation collects again from its first batch
    try:
        assert evaluate_run(load_run(tmp_path / "streamed")) == in_memory
        assert gc.isenabled()
    finally:
        collector.resume()
    assert len(streams) == len(in_memory) == 3  # the train, validation and held-out test splits


def train_args(folder, spec, out):
    return (
        "train", spec, "--data", folder, "--epochs", EPOCHS, "--batch-size", 8, "--checkpoint-every", 4,
        "--augment", "flip,crop", "--data-memory", "1KB", "--out", out,
    )  # fmt: skip


def test_a_killed_streamed_run_resumes_to_bitwise_the_same_model(tmp_path, folder, tiny_spec):
    reference = tmp_path / "reference"
    uninterrupted = cnn_arch(*train_args(folder, tiny_spec, reference))
    out = tmp_path / "run"
    process = cnn_arch(*train_args(folder, tiny_spec, out))
    seen = stop_after_checkpoints(process, out, 2, signal.SIGKILL)  # steps 4 and 8: mid-epoch
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert seen < EPOCHS * 10, "the run finished before it was stopped"
    # The checkpoint says where in the epoch the stream stood, with Grain's iterator state.
    saved = json.loads(next((out / "checkpoints" / "8" / "data").iterdir()).read_text())
    assert (saved["epoch"], saved["position"]) == (0, 8) and saved["iterator"] == {"next_index": 8 * 8}
    # Resume from there (mid-epoch: the stream is brought back by its iterator state), as if killed then.
    for later in (out / "checkpoints").iterdir():
        if later.name.isdigit() and int(later.name) > 8:
            shutil.rmtree(later)

    resumed = cnn_arch(*train_args(folder, tiny_spec, out), "--resume")
    output, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err
    assert "Resumed at step 8" in output
    assert "data: streaming 96 images from disk (decoded 6.00 KiB > budget 1000 B, --data-memory)" in output
    _, err = uninterrupted.communicate(timeout=240)
    assert uninterrupted.returncode == 0, err
    assert_bitwise_equal(final_state(out), final_state(reference))
    assert metrics_rows(out) == metrics_rows(reference)


ONE_OF_TWO_PROCESSES = """
import json, sys
import jax, numpy as np
from archspec.train import distributed, feed
from archspec.train.config import TrainConfig
from archspec.train.loop import train_and_evaluate

settings, out, port, process_id = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
distributed.join(distributed.Cluster(f"127.0.0.1:{port}", 2, process_id))
read = []  # the training images this process read, one list per batch
original = feed.pipeline.batches

def recording(source, rows, **options):
    if len(rows) == 10:  # an epoch's batches (validation reads one row; precise BN is off)
        read.extend(rows.tolist())
    return original(source, rows, **options)

feed.pipeline.batches = recording
outcome = train_and_evaluate(TrainConfig.from_json(settings), out + "/run")
leaves = [np.asarray(leaf.addressable_data(0)) for leaf in jax.tree.leaves(outcome.state.params)]
np.savez(f"{out}/params-{process_id}.npz", *leaves)
print(json.dumps({"step": int(outcome.state.step), "read": read}))
"""


def test_two_processes_each_read_their_own_half_of_every_batch(tmp_path, folder):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    settings = {
        "spec": "tiny", "spec_text": TINY_SPEC, "input_shape": [8, 8, 1], "data": str(folder), "epochs": 2,
        "batch_size": 8, "lr": 0.05, "data_memory": 0, "precise_bn": False,
    }  # fmt: skip
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ONE_OF_TWO_PROCESSES, json.dumps(settings), str(tmp_path), port, str(index)],
            env=subprocess_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for index in range(2)
    ]
    outputs = [process.communicate(timeout=240) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    reports = [json.loads(output.splitlines()[-1]) for output, _ in outputs]
    assert reports[0]["step"] == reports[1]["step"] == 20
    first, second = (np.array(report["read"]) for report in reports)
    assert first.shape == second.shape == (20, 4)  # 2 epochs of 10 batches, 4 of the 8 images each
    for mine, theirs in zip(first, second, strict=True):
        assert not set(mine) & set(theirs)
    # Together they read each epoch's permutation of the 80 images it trains on.
    for epoch in range(2):
        together = np.concatenate([first[epoch * 10 : epoch * 10 + 10], second[epoch * 10 : epoch * 10 + 10]], axis=1)
        assert len(set(together.reshape(-1).tolist())) == 80
    # And they trained in lockstep: the same parameters in both processes.
    params = [np.load(tmp_path / f"params-{index}.npz") for index in range(2)]
    for name in params[0].files:
        assert params[0][name].tobytes() == params[1][name].tobytes()
