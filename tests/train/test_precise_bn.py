"""BatchNorm evaluated right: with precise BN, validation follows training from the first epochs on
small data (before, BatchNorm's moving averages kept validation at chance while training reached 99%)."""

from __future__ import annotations

import numpy as np
import pytest

from archspec.templates import path as template_path
from archspec.train.config import TrainConfig
from archspec.train.loop import Reporter, train_and_evaluate

# The network: a three-block `conv ... bn relu` trunk, `gap`, a 2-way softmax.
FACES_BN = """\
input 25x25x1
conv 16 3 padding=same bn relu
maxpool 2
conv 32 3 padding=same bn relu
maxpool 2
conv 64 3 padding=same bn relu
gap
dense 2 softmax
"""


class Rows(Reporter):
    def __init__(self) -> None:
        self.rows = []

    def epoch_end(self, row):
        self.rows.append(row)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """scikit-image's LFW subset: 100 real face and 100 non-face crops, 25x25 grayscale."""
    from skimage.data import lfw_subset

    images = (lfw_subset() * 255).round().astype(np.uint8)
    labels = np.array([0] * 100 + [1] * 100)
    order = np.random.default_rng(0).permutation(200)
    path = tmp_path_factory.mktemp("faces") / "faces.npz"
    np.savez(path, x_train=images[order], y_train=labels[order], class_names=np.array(["face", "non-face"]))
    return path


def train(tmp_path, name: str, **settings) -> list[dict]:
    reporter = Rows()
    train_and_evaluate(TrainConfig(spec=name, **settings), tmp_path / name, reporter=reporter)
    return reporter.rows


@pytest.mark.slow
def test_a_bn_trunk_on_real_faces_validates_like_it_trains(tmp_path, faces):
    rows = train(tmp_path, "faces", spec_text=FACES_BN, input_shape=(25, 25, 1), data=str(faces), val_split=0.2)
    assert max(row["val_accuracy"] for row in rows) >= 0.9
    third = rows[2]
    assert third["train_accuracy"] - third["val_accuracy"] <= 0.15, third


@pytest.mark.slow
def test_the_moving_averages_alone_sit_at_chance_on_the_same_run(tmp_path, faces):
    """The failure precise BN removes, kept visible: `--no-precise-bn` evaluates with the moving averages."""
    rows = train(
        tmp_path,
        "faces",
        spec_text=FACES_BN,
        input_shape=(25, 25, 1),
        data=str(faces),
        val_split=0.2,
        epochs=3,
        precise_bn=False,
    )
    assert rows[2]["train_accuracy"] - rows[2]["val_accuracy"] > 0.15, rows[2]


@pytest.mark.slow
def test_gap_head_on_digits_validates_above_90_percent_from_epoch_3(tmp_path):
    text = template_path("gap-head").read_text()
    rows = train(tmp_path, "gap-head", spec_text=text, input_shape=(32, 32, 1), data="digits", epochs=5)
    assert all(row["val_accuracy"] >= 0.9 for row in rows[2:]), [row["val_accuracy"] for row in rows]
