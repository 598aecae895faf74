"""Tests for .npz datasets (archspec.train.data.npz): layouts, values, labels and class names."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from data_helpers import (
    SHAPE_RGB,
    load_error,
    write_npz,
)

from archspec.train.data import load_dataset

# --- .npz ---------------------------------------------------------------------------------------


def test_npz_gray_images_with_column_labels(tmp_path):
    x = np.repeat(np.arange(6, dtype=np.uint8)[:, None, None] * 40, 28 * 28).reshape(6, 28, 28)
    y = np.array([[0], [1], [2], [0], [1], [2]])
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:3], y_test=y[:3, 0])
    dataset = load_dataset(str(path), SHAPE_RGB, val_split=0)
    assert dataset.x_train.shape == (6, 16, 16, 3) and dataset.x_test.shape == (3, 16, 16, 3)
    assert dataset.x_train[:, 5, 5, 1].tolist() == [0, 40, 80, 120, 160, 200]
    assert dataset.y_train.tolist() == [0, 1, 2, 0, 1, 2] and dataset.y_train.dtype == np.int32
    assert dataset.class_names == ("0", "1", "2")
    assert dataset.source == str(path)


def test_npz_with_channels_at_the_right_size_is_kept_exactly(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    y = np.arange(10) % 2
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y, class_names=np.array(["cat", "dog"]))
    dataset = load_dataset(str(path), SHAPE_RGB, val_split=0.2)
    loaded = np.concatenate([dataset.x_train, dataset.x_val])
    assert sorted(map(bytes, loaded)) == sorted(map(bytes, x))
    assert dataset.class_names == ("cat", "dog")
    assert np.bincount(dataset.y_val).tolist() == [1, 1]


def test_npz_val_arrays_are_the_validation_set(tmp_path):
    x = np.zeros((6, 4, 4, 1), dtype=np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2])
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_val=x[:2] + 9, y_val=y[:2])
    dataset = load_dataset(str(path), (4, 4, 1), val_split=0.5)
    assert len(dataset.x_train) == 6 and dataset.y_val.tolist() == [0, 1]
    assert np.all(dataset.x_val == 9) and dataset.x_test is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [(np.array([0.0, 0.5, 1.0]), [0, 128, 255]), (np.array([0.0, 100.4, 300.0]), [0, 100, 255])],
    ids=["0..1 scaled", "0..255 clipped"],
)
def test_npz_float_images(tmp_path, values, expected):
    x = np.broadcast_to(values[:, None, None, None], (3, 4, 4, 1)).astype(np.float32)
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1, 1]))
    dataset = load_dataset(str(path), (4, 4, 1), val_split=0)
    assert dataset.x_train[:, 0, 0, 0].tolist() == expected


GOOD_X = np.zeros((4, 8, 8), dtype=np.uint8)
GOOD_Y = np.array([0, 1, 0, 1])


class PickleTrap:
    """Unpickling this creates `marker`: proof that a loader ran pickle on user data."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def npz_case(case_id: str, message: str, **arrays):
    return pytest.param(arrays, message, id=case_id)


NPZ_LAYOUT_ERRORS = [
    npz_case("no labels", "missing array `y_train` (found `x_train`)", x_train=GOOD_X),
    npz_case(
        "other names",
        "missing array `x_train` and `y_train` (found `images`, `labels`)",
        images=GOOD_X,
        labels=GOOD_Y,
    ),
    npz_case(
        "length mismatch",
        "`x_train` holds 4 images but `y_train` holds 3 labels",
        x_train=GOOD_X,
        y_train=GOOD_Y[:3],
    ),
    npz_case(
        "rank 2 images",
        "array `x_train` has shape (8, 8); images must be (N, H, W) or (N, H, W, C)",
        x_train=GOOD_X[0],
        y_train=GOOD_Y,
    ),
    npz_case(
        "channels first",
        "array `x_train` has shape (4, 3, 8, 8): 8 channels in the last axis",
        x_train=np.zeros((4, 3, 8, 8)),
        y_train=GOOD_Y,
    ),
    npz_case(
        "bool images",
        "array `x_train` has dtype bool; images must be integers 0..255 or floats",
        x_train=GOOD_X.astype(bool),
        y_train=GOOD_Y,
    ),
    npz_case(
        "float labels",
        "array `y_train` has dtype float64; labels must be integer class indices",
        x_train=GOOD_X,
        y_train=GOOD_Y.astype(float),
    ),
    npz_case(
        "one-hot labels",
        "array `y_train` has shape (4, 4); labels must be (N,) or (N, 1) class indices",
        x_train=GOOD_X,
        y_train=np.eye(4, dtype=int),
    ),
    npz_case(
        "negative label",
        "array `y_train` holds negative labels (min -1)",
        x_train=GOOD_X,
        y_train=GOOD_Y - 1,
    ),
    npz_case(
        "huge label",
        "array `y_train` holds label 5000000000, more than the 100,000 classes this tool trains",
        x_train=GOOD_X,
        y_train=GOOD_Y * 5_000_000_000,
    ),
    npz_case(
        "test without labels",
        "array `x_test` comes without `y_test`",
        x_train=GOOD_X,
        y_train=GOOD_Y,
        x_test=GOOD_X,
    ),
    npz_case(
        "integers above 255",
        "array `x_train` holds values from 300 to 300; integer images must lie in 0..255",
        x_train=GOOD_X.astype(np.int16) + 300,
        y_train=GOOD_Y,
    ),
    npz_case(
        "NaN",
        "array `x_train` holds NaN or infinite values",
        x_train=np.full((4, 8, 8), np.nan),
        y_train=GOOD_Y,
    ),
    npz_case(
        "normalized floats",
        "array `x_train` holds negative values (min -1)",
        x_train=GOOD_X - 1.0,
        y_train=GOOD_Y,
    ),
    npz_case(
        "too few names",
        "label 2 has no name: `class_names` holds 2 names",
        x_train=GOOD_X,
        y_train=GOOD_Y + 1,
        class_names=np.array(["a", "b"]),
    ),
    npz_case(
        "numeric names",
        "array `class_names` must be 1-D strings, got shape (2,) of int64",
        x_train=GOOD_X,
        y_train=GOOD_Y,
        class_names=np.array([1, 2]),
    ),
]


@pytest.mark.parametrize(("arrays", "message"), NPZ_LAYOUT_ERRORS)
def test_npz_layout_errors_name_the_array(tmp_path, arrays, message):
    path = write_npz(tmp_path / "d.npz", **arrays)
    assert load_error(path).message == message


X6 = np.zeros((6, 8, 8), dtype=np.uint8)
RENUMBER_HINT = "labels must be class indices 0..K-1; renumber them alike in every split, e.g. with np.unique"
NAMES_HINT = "add training images of every class, or drop the unused names and renumber the labels to match"
UNSEEN_HINT = "a model cannot learn a class it never trains on: add training images of it, or leave it out of `y_test`"


def class_case(case_id: str, message: str, hint: str, **arrays):
    return pytest.param(arrays, message, hint, id=case_id)


NPZ_CLASS_ERRORS = [
    class_case(
        "labels 0 and 5",
        "classes 1, 2, 3, 4 hold no images in `y_train`: the labels run from 0 to 5, so there are 6 classes",
        RENUMBER_HINT,
        x_train=GOOD_X,
        y_train=GOOD_Y * 5,
    ),
    class_case(
        "labels from 1",
        "class 0 holds no images in `y_train`: the labels run from 0 to 2, so there are 3 classes",
        "labels must be class indices from 0: subtract 1 from the labels of every split",
        x_train=GOOD_X,
        y_train=GOOD_Y + 1,
    ),
    class_case(
        "a name without images",
        "class `fish` (label 2) holds no images in `y_train`: `class_names` names 3 classes",
        NAMES_HINT,
        x_train=GOOD_X,
        y_train=GOOD_Y,
        class_names=np.array(["cat", "dog", "fish"]),
    ),
    class_case(
        "many missing",
        "classes 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ... (19 in all) hold no images in `y_train`: "
        "the labels run from 0 to 20, so there are 21 classes",
        RENUMBER_HINT,
        x_train=GOOD_X,
        y_train=GOOD_Y * 20,
    ),
    class_case(
        "test label unseen",
        "`y_test` holds class 2, which never occurs in `y_train`",
        UNSEEN_HINT,
        x_train=GOOD_X,
        y_train=GOOD_Y,
        x_test=GOOD_X[:2],
        y_test=np.array([0, 2]),
    ),
    class_case(
        "val labels unseen, named",
        "`y_val` holds classes `fish` (label 2), `owl` (label 3), which never occur in `y_train`",
        "a model cannot learn a class it never trains on: add training images of them, or leave them out of `y_val`",
        x_train=GOOD_X,
        y_train=GOOD_Y,
        x_val=GOOD_X,
        y_val=np.array([0, 1, 2, 3]),
        class_names=np.array(["cat", "dog", "fish", "owl"]),
    ),
    class_case(
        "a repeated name",
        "array `class_names` repeats a name: `cat` at 0 and 2",
        "give each class a name of its own: predictions of two classes with one name cannot be told apart",
        x_train=X6,
        y_train=np.arange(6) % 3,
        class_names=np.array(["cat", "dog", "cat"]),
    ),
    class_case(
        "repeated names",
        "array `class_names` repeats names: `cat` at 0, 2 and 5, `dog` at 1 and 3",
        "give each class a name of its own: predictions of two classes with one name cannot be told apart",
        x_train=X6,
        y_train=np.arange(6),
        class_names=np.array(["cat", "dog", "cat", "dog", "owl", "cat"]),
    ),
]


@pytest.mark.parametrize(("arrays", "message", "hint"), NPZ_CLASS_ERRORS)
def test_npz_classes_must_each_have_training_images_and_a_name_of_their_own(tmp_path, arrays, message, hint):
    error = load_error(write_npz(tmp_path / "d.npz", **arrays))
    assert (error.message, error.hint) == (message, hint)


def test_npz_classes_all_trained_load_with_or_without_evaluation_splits(tmp_path):
    path = write_npz(
        tmp_path / "d.npz",
        x_train=X6,
        y_train=np.arange(6) % 3,
        x_test=GOOD_X,
        y_test=np.array([2, 2, 0, 1]),
        class_names=np.array(["cat", "dog", "owl"]),
    )
    dataset = load_dataset(str(path), (8, 8, 1), val_split=0)
    assert dataset.class_names == ("cat", "dog", "owl") and dataset.y_test.tolist() == [2, 2, 0, 1]


def test_npz_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pickle-ran"
    trap = np.array([PickleTrap(marker)] * 4, dtype=object)
    path = write_npz(tmp_path / "d.npz", x_train=GOOD_X, y_train=trap)
    error = load_error(path)
    assert error.message == ("array `y_train` holds Python objects (dtype object), which are never unpickled")
    assert not marker.exists()


def write_raw_npz(path: Path, name: str, shape: tuple[int, ...], payload: bytes) -> Path:
    """An .npz whose `name` header claims `shape` of uint8 but holds only `payload`."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    labels = io.BytesIO()
    np.save(labels, np.zeros(shape[0] if shape[0] < 10**6 else 1, dtype=np.int64))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}.npy", header.getvalue() + payload)
        archive.writestr("y_train.npy", labels.getvalue())
    return path


def test_npz_huge_declared_shape_is_refused_before_reading(tmp_path, monkeypatch):
    path = write_raw_npz(tmp_path / "d.npz", "x_train", (10**6, 10**6, 3), b"")
    monkeypatch.setattr(np, "load", lambda *args, **kwargs: pytest.fail("arrays were read"))
    error = load_error(path)
    assert error.message == (
        "array `x_train` declares shape (1000000, 1000000, 3): 3,000,000,000,000 elements, "
        "more than the 2,147,483,648 this tool loads"
    )


def test_npz_header_larger_than_its_data_is_refused(tmp_path, monkeypatch):
    path = write_raw_npz(tmp_path / "d.npz", "x_train", (1000, 28, 28), b"\0" * 10)
    monkeypatch.setattr(np, "load", lambda *args, **kwargs: pytest.fail("arrays were read"))
    assert load_error(path).message == (
        "array `x_train` is truncated: its header declares shape (1000, 28, 28) of uint8, "
        "but the file holds only 10 bytes of data"
    )


def test_npz_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    path.write_text("x,y\n1,2\n")
    error = load_error(path)
    assert error.message == "cannot read it as a .npz archive (File is not a zip file)"
    assert "np.savez" in error.hint
