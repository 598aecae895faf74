"""Which model a run keeps (`--monitor`), the small-validation warning, and the held-out test split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_SPEC, make_images

from archspec.train.config import TrainConfig
from archspec.train.data import load_dataset


@pytest.fixture(scope="module")
def no_test_data(tmp_path_factory):
    """120 images of 3 classes in a .npz with no test split."""
    path = tmp_path_factory.mktemp("data") / "no-test.npz"
    x, y = make_images(120, seed=5)
    np.savez(path, x_train=x, y_train=y, class_names=np.array(["a", "b", "c"]))
    return path


@pytest.mark.slow
def test_monitor_val_accuracy_keeps_the_most_accurate_epoch_ties_going_to_the_lower_loss(tmp_path, tiny_data):
    from archspec.train.loop import train_and_evaluate

    config = TrainConfig(
        spec="tiny",
        spec_text=TINY_SPEC,
        input_shape=(8, 8, 1),
        data=str(tiny_data),
        epochs=8,
        batch_size=16,
        lr=0.05,
        monitor="val_accuracy",
    )
    results = train_and_evaluate(config, tmp_path / "run").results
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    most = max(row["val_accuracy"] for row in rows)
    tied = [row for row in rows if row["val_accuracy"] == most]
    kept = min(tied, key=lambda row: row["val_loss"])
    assert results["epoch"] == kept["epoch"] and results["monitor"] == "val_accuracy"
    # The kept weights are that epoch's: scored again, they give its validation numbers.
    assert results["val"]["accuracy"] == kept["val_accuracy"]
    assert results["val"]["loss"] == pytest.approx(kept["val_loss"], rel=1e-6)
    assert results["kept_because"].startswith(f"the highest validation accuracy ({kept['val_accuracy']:.2%}, loss")


def test_a_test_split_is_held_out_stratified_and_seeded(no_test_data):
    data = load_dataset(str(no_test_data), (8, 8, 1), val_split=0.1, test_split=0.2, seed=3)
    assert data.held_out == ("val", "test")
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (86, 10, 24)
    assert np.bincount(data.y_test).tolist() == [8, 8, 8]  # stratified: 20% of each class's 40
    again = load_dataset(str(no_test_data), (8, 8, 1), val_split=0.1, test_split=0.2, seed=3)
    assert np.array_equal(again.x_test, data.x_test) and again.fingerprint == data.fingerprint
    other = load_dataset(str(no_test_data), (8, 8, 1), val_split=0.1, test_split=0.2, seed=4)
    assert not np.array_equal(other.x_test, data.x_test) and other.fingerprint != data.fingerprint
    # The validation images of a seed do not depend on whether a test split is held out.
    without = load_dataset(str(no_test_data), (8, 8, 1), val_split=0.1, test_split=0, seed=3)
    assert without.y_test is None and without.held_out == ("val",)


def test_data_with_a_test_split_keeps_it(tiny_data):
    data = load_dataset(str(tiny_data), (8, 8, 1), val_split=0.1, test_split=0.1, seed=0)
    assert len(data.y_test) == 30 and data.held_out == ("val",)


def test_a_config_written_before_monitor_and_test_split_reads_as_it_ran():
    saved = TrainConfig(spec="tiny", spec_text=TINY_SPEC, input_shape=(8, 8, 1)).to_json()
    del saved["monitor"], saved["test_split"]
    old = TrainConfig.from_json(saved)
    assert (old.monitor, old.test_split) == ("val_accuracy", 0.0)


@pytest.mark.slow
def test_the_run_holds_out_test_images_and_warns_about_a_small_validation_set(cli, tmp_path, tiny_spec, no_test_data):
    out = tmp_path / "run"
    result = cli(*_args(tiny_spec, no_test_data, out))
    assert result.code == 0, result.err
    assert "97 train / 11 val / 12 test images" in result.out
    assert (
        "Held out of the training images, stratified and seeded: validation (--val-split 0.1) and test " in result.out
    )
    # Said at the start and again before the final line.
    warning = "warning: validation has only 11 images: one image moves its accuracy by 9.1 points"
    assert result.out.count(warning) == 2
    last = result.out.splitlines()[-1]
    assert last.startswith("Model: epoch 1, the lowest validation loss")
    assert "test accuracy" in last and "on 12 images (held out of the training data)" in last
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["test_split"] == 0.1 and saved["data"]["images"] == {"train": 97, "val": 11, "test": 12}
    assert json.loads((out / "results.json").read_text())["test_held_out"] is True


@pytest.mark.slow
def test_test_split_0_opts_out_and_the_run_says_so(cli, tmp_path, tiny_spec, no_test_data):
    result = cli(*_args(tiny_spec, no_test_data, tmp_path / "run"), "--test-split", "0")
    assert result.code == 0, result.err
    assert "No test images: the data has no test split and --test-split 0 holds none out" in result.out
    assert result.out.splitlines()[-1].endswith(
        "no test accuracy: the data has no test split and --test-split 0 held none out"
    )


def _args(spec, data, out) -> list[str]:
    return [
        "train",
        str(spec),
        "--data",
        str(data),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--summary",
        "none",
        "-o",
        str(out),
    ]
