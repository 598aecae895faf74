"""`cnn-arch export RUN_DIR -o model.onnx`: a model trained by `cnn-arch train` runs in onnxruntime
on the uint8 images `predict` takes, with any batch size, and gives predict's probabilities."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

TOLERANCE = 1e-4  # max abs difference of the probabilities, fp32


def train(cli, tmp_path, template: str, data, input_shape: str):
    """A 1-epoch run of `template` with its classifier cut to the tiny dataset's 3 classes, by `cnn-arch
    train` run in this process (`main()`, as the console script runs it: no second JAX start-up)."""
    from archspec import templates

    spec = tmp_path / f"{template}.arch"
    text = templates.path(template).read_text(encoding="utf-8")
    spec.write_text(re.sub(r"^dense \d+ softmax$", "dense 3 softmax", text, flags=re.M), encoding="utf-8")
    run_dir = tmp_path / template
    arguments = ["train", str(spec), "--data", str(data), "--input", input_shape]
    result = cli(*arguments, "--epochs", "1", "--batch-size", "16", "--out", str(run_dir))
    assert result.code == 0, result.err[-2000:]
    return run_dir


def round_trip(cli, run_dir, tmp_path, images: np.ndarray) -> None:
    import onnx
    import onnxruntime

    from archspec.train.inference import load_run, predict

    path = tmp_path / "model.onnx"
    result = cli("export", str(run_dir), "-o", str(path))
    assert result.code == 0, result.err
    assert "WARNING" not in result.err
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    trained = load_run(run_dir)
    assert json.loads({p.key: p.value for p in model.metadata_props}["class_names"]) == list(trained.class_names)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (feed,) = session.get_inputs()
    assert (feed.name, feed.type, feed.shape[1:]) == ("images", "tensor(uint8)", list(trained.config.input_shape))
    assert isinstance(feed.shape[0], str)  # the batch dimension is free
    classes = len(trained.class_names)
    # predict's own numbers: every class's probability, by name
    expected = np.array(
        [[dict(row)[name] for name in trained.class_names] for row in predict(trained, images, classes)]
    )
    for batch in (1, len(images)):
        (got,) = session.run(None, {"images": images[:batch]})
        assert got.shape == (batch, classes)
        assert np.abs(got - expected[:batch]).max() <= TOLERANCE


@pytest.mark.slow  # trains in a subprocess, then converts with jax2onnx
def test_gap_head_round_trip(cli, tmp_path, tiny_data):
    run_dir = train(cli, tmp_path, "gap-head", tiny_data, "16x16x3")
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    round_trip(cli, run_dir, tmp_path, images)


@pytest.mark.slow  # converts ResNet-50 with jax2onnx
def test_resnet50_built_small_round_trip(cli, tmp_path):
    # 32x32, the smallest input its five halvings leave a 1x1 map of: every layer kind and stride of the
    # 224x224 network (bottlenecks, projections, BatchNorm, max and global pooling). Its run folder
    # holds initial weights with random BatchNorm statistics: what export reads, without a minute of
    # compiling a train step (gap-head above goes through `cnn-arch train`)
    from archspec import templates
    from tests.run_folders import untrained_run

    text = templates.path("resnet50").read_text(encoding="utf-8").replace("dense 1000 softmax", "dense 3 softmax")
    run_dir = untrained_run(tmp_path / "resnet50", text, "resnet50", (32, 32, 3), ("a", "b", "c"))
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    round_trip(cli, run_dir, tmp_path, images)


def test_export_needs_a_run_and_a_file(cli, tmp_path):
    missing = cli("export", str(tmp_path), "--to", "onnx", "-o", str(tmp_path / "m.onnx"))
    assert missing.code == 2 and "not a run folder" in missing.err
    spec = cli("export", "gap-head", "--to", "onnx", "-o", str(tmp_path / "m.onnx"))
    assert spec.code == 2 and "ONNX export needs a trained model" in spec.err
