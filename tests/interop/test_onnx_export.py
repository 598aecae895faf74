"""`cnn-arch export RUN_DIR -o model.onnx`: a run folder's model runs in onnxruntime on the uint8
images `predict` takes, with any batch size, and gives predict's probabilities. The run folders here
hold initial weights with random BatchNorm statistics (tests/run_folders.py): export reads a run,
whatever trained it; tests/train/test_train_cli.py exports the small run `cnn-arch train` made for
the training tests, with the same `round_trip`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.run_folders import untrained_run

TOLERANCE = 1e-4  # max abs difference of the probabilities, fp32


def template_run(tmp_path, template: str, input_shape: tuple[int, int, int]):
    """An untrained run of `template` at `input_shape`, its classifier cut to 3 classes."""
    from archspec import templates

    text = templates.path(template).read_text(encoding="utf-8")
    text = text.replace("dense 1000 softmax", "dense 3 softmax")
    return untrained_run(tmp_path / template, text, template, input_shape, ("top", "middle", "bottom"))


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


@pytest.mark.slow  # converts ResNet-50 with jax2onnx
def test_resnet50_built_small_round_trip(cli, tmp_path):
    # 32x32, the smallest input its five halvings leave a 1x1 map of: every layer kind and stride of the
    # 224x224 network (bottlenecks, projections, BatchNorm, max and global pooling)
    run_dir = template_run(tmp_path, "resnet50", (32, 32, 3))
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    round_trip(cli, run_dir, tmp_path, images)


def test_export_needs_a_run_and_a_file(cli, tmp_path):
    missing = cli("export", str(tmp_path), "--to", "onnx", "-o", str(tmp_path / "m.onnx"))
    assert missing.code == 2 and "not a run folder" in missing.err
    spec = cli("export", "gap-head", "--to", "onnx", "-o", str(tmp_path / "m.onnx"))
    assert spec.code == 2 and "ONNX export needs a trained model" in spec.err
