"""The training loop in-process: a short run and its folder, divergence, refused resumes, user errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import TINY_SPEC, make_images

from archspec.errors import PathError, UserError
from archspec.train.loop import Diverged, train_and_evaluate

pytestmark = pytest.mark.slow  # every test here trains models in-process


@pytest.fixture
def config(tiny_config):
    return tiny_config


def test_training_learns_the_tiny_dataset(finished_run):
    _, outcome = finished_run
    assert outcome.results["val"]["accuracy"] >= 0.9
    assert outcome.results["test"]["accuracy"] >= 0.9


def test_run_folder_holds_config_metrics_curves_results_and_checkpoints(finished_run, tiny_data):
    run_dir, outcome = finished_run
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["config"]["spec_text"] == TINY_SPEC
    assert saved["config"]["input_shape"] == [8, 8, 1] and saved["config"]["epochs"] == 10
    assert saved["data"]["class_names"] == ["top", "middle", "bottom"]
    assert saved["data"]["images"] == {"train": 86, "val": 10, "test": 30}
    assert len(saved["data"]["fingerprint"]) == 64
    assert {"jax", "flax", "optax", "orbax-checkpoint"} <= set(saved["versions"])

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, 11))
    assert [row["step"] for row in rows] == list(range(5, 51, 5))  # 86 images // 16 per step
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "images_per_second"} <= set(rows[0])
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]

    assert (run_dir / "curves.png").read_bytes().startswith(b"\x89PNG")
    results = json.loads((run_dir / "results.json").read_text())
    assert results == outcome.results
    # Keras ModelCheckpoint's default: the epoch of the lowest validation loss (the first, on a tie).
    best = min(rows, key=lambda row: row["val_loss"])
    assert results["checkpoint"] == "best" and results["epoch"] == best["epoch"] and results["monitor"] == "val_loss"
    assert results["val"]["loss"] == pytest.approx(best["val_loss"], rel=1e-6)  # the kept weights are that epoch's
    assert results["kept_because"] == f"the lowest validation loss ({best['val_loss']:.4f}) of 10 epochs"
    steps = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir())
    assert steps[-1] == 50 and len(steps) <= 3  # the last 3 at most
    assert [p.name for p in (run_dir / "best").iterdir()] == [str(results["step"])]


def test_one_epoch_on_a_handful_of_images(tmp_path, config):
    path = tmp_path / "few.npz"
    x, y = make_images(6, seed=3)
    np.savez(path, x_train=x, y_train=y)
    outcome = train_and_evaluate(
        config(data=str(path), epochs=1, batch_size=3, val_split=0, test_split=0), tmp_path / "run"
    )
    assert outcome.results["checkpoint"] == "last" and "val" not in outcome.results and "test" not in outcome.results
    assert outcome.results["kept_because"] == "the last epoch: no validation images to choose by"
    assert int(outcome.state.step) == 2


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, config):
    # Warm-up makes the first step's learning rate 0, then 1e30 blows the weights up.
    run_dir = tmp_path / "run"
    bad = config(optimizer="sgd", lr=1e30, schedule="constant", warmup_epochs=1, checkpoint_every=1)
    with pytest.raises(Diverged, match=r"NaN or infinite in epoch 1.*last good checkpoint \(step \d\)"):
        train_and_evaluate(bad, run_dir)
    from conftest import final_state

    state = final_state(run_dir)
    assert all(np.isfinite(leaf).all() for leaf in __import__("jax").tree.leaves(state))  # params and statistics
    assert (run_dir / "metrics.jsonl").read_text() == ""


def test_resume_is_refused_for_another_spec_data_or_setting(tmp_path, config):
    run_dir = tmp_path / "run"
    train_and_evaluate(config(epochs=1), run_dir)
    with pytest.raises(UserError, match="the spec's text differs"):
        train_and_evaluate(config(epochs=1, spec_text=TINY_SPEC.replace("conv 4", "conv 5")), run_dir, resume=True)
    with pytest.raises(UserError, match=r"--lr: 0\.01 → 0\.02"):
        train_and_evaluate(config(epochs=1, lr=0.02), run_dir, resume=True)
    other = tmp_path / "other.npz"
    x, y = make_images(96, seed=9)
    np.savez(other, x_train=x, y_train=y)
    with pytest.raises(UserError, match="the data differs"):
        train_and_evaluate(config(epochs=1, data=str(other)), run_dir, resume=True)


def test_a_run_with_checkpoints_is_never_overwritten(tmp_path, config):
    train_and_evaluate(config(epochs=1), tmp_path / "run")
    with pytest.raises(PathError, match="already holds a training run"):
        train_and_evaluate(config(epochs=1), tmp_path / "run")
    # Stopped before its first checkpoint: nothing to resume, nothing to keep.
    for folder in ("checkpoints", "best"):
        shutil.rmtree(tmp_path / "run" / folder)
    with pytest.raises(PathError, match="has no checkpoint to resume from"):
        train_and_evaluate(config(epochs=1), tmp_path / "run", resume=True)
    assert train_and_evaluate(config(epochs=1), tmp_path / "run").results["checkpoint"] == "best"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 500}, r"`--batch-size` \(=500\) is larger than the 86 training images"),
        ({"spec_text": TINY_SPEC.replace("dense 3", "dense 2")}, "the spec ends with `dense 2 softmax`"),
        ({"spec_text": "input 8x8x1\nconv 3 3\n"}, "outputs 6x6x3 per image"),
        ({"spec_text": TINY_SPEC.replace("softmax", "relu")}, "cannot output class scores"),
    ],
)
def test_data_or_options_that_do_not_fit_are_user_errors(tmp_path, config, changes, message):
    with pytest.raises(UserError, match=message):
        train_and_evaluate(config(**changes), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "`--epochs`"),
        ({"lr": -1.0}, "`--lr`"),
        ({"augment": ("blur",)}, "`--augment` must be one of flip, crop"),
        ({"label_smoothing": 1.0}, "`--label-smoothing`"),
        ({"input_shape": (64,)}, "training needs an image input"),
    ],
)
def test_invalid_settings_are_refused_when_the_config_is_built(config, changes, message):
    with pytest.raises(UserError, match=message):
        config(**changes)


def test_augmentations_shift_and_mirror_images_on_the_device():
    import jax
    import jax.numpy as jnp

    from archspec.train.augment import augment

    images = jnp.tile(jnp.arange(8.0)[None, None, :, None], (64, 8, 1, 1))  # each row counts 0..7
    key = jax.random.key(0)
    flipped = augment(key, images, ("flip",))
    mirrored = jnp.all(flipped == images[:, :, ::-1], axis=(1, 2, 3))
    assert jnp.all(mirrored | jnp.all(flipped == images, axis=(1, 2, 3)))
    assert 10 < int(mirrored.sum()) < 54  # about half
    cropped = augment(key, images, ("crop",))
    assert cropped.shape == images.shape
    assert len({float(image[4, 4, 0]) for image in cropped}) == 3  # shifted by -1, 0 or +1 pixel
