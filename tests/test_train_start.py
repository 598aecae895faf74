"""`cnn-arch train` starts with what matters: the head-vs-data check before any output, and a short
(top-level) layer table by default, `--summary full|short|none` to choose."""

from __future__ import annotations

import numpy as np
import pytest

SPEC = """\
def block(filters):
    conv filters 3 padding=same relu
    bn
input 8x8x1
block 4
block 4
gap
dense {classes} softmax
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """48 training and 12 test images of 3 classes: stripes one way, the other way, or a checkerboard."""
    rng = np.random.default_rng(0)
    rows, columns = np.indices((8, 8))
    patterns = [rows % 2, columns % 2, (rows + columns) % 2]

    def images(count):
        labels = np.arange(count) % 3
        x = np.stack([patterns[label] * 200 + rng.integers(0, 50, (8, 8)) for label in labels]).astype(np.uint8)
        return x, labels

    path = tmp_path_factory.mktemp("data") / "bands.npz"
    (x_train, y_train), (x_test, y_test) = images(48), images(12)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def _spec(tmp_path, classes: int):
    path = tmp_path / "net.arch"
    path.write_text(SPEC.format(classes=classes))
    return path


def test_a_head_that_does_not_fit_the_data_stops_before_any_output(cli, tmp_path, data):
    result = cli("train", str(_spec(tmp_path, 5)), "--data", str(data), "--epochs", "1", "-o", str(tmp_path / "run"))
    assert result.code == 2
    assert result.out == ""  # no layer table, no lint findings first
    assert "the spec ends with `dense 5 softmax` but" in result.err and "3 classes" in result.err


@pytest.mark.slow
def test_summary_is_short_by_default_full_or_none_when_asked(cli, tmp_path, data):
    spec = _spec(tmp_path, 3)

    def train(*args):
        folder = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        result = cli(
            "train", str(spec), "--data", str(data), "--epochs", "1", "--batch-size", "16", "-o", str(folder), *args
        )
        assert result.code == 0, result.err
        return result.out

    short = train()
    assert "block 4" in short and "conv 4 3x3 same" not in short  # macro calls folded, as --depth 1
    assert short.index("Total params") < short.index("Training on")
    full = train("--summary", "full")
    assert "conv 4 3x3 same" in full
    none = train("--summary", "none")
    assert "Total params" not in none and "Training on" in none
