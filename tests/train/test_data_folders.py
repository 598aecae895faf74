"""Tests for folders of class folders (archspec.train.data.folders, .listing): layouts, the cache,
bad-data reports.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from data_helpers import (
    SHAPE_GRAY,
    SHAPE_RGB,
    load_error,
    make_classes,
    noise_rgb,
    private_cache,  # noqa: F401  (autouse: keeps the cache out of the home folder)
    report_lines,
    save,
    solid,
)

from archspec.train.data import images, load_dataset


def test_folder_without_splits_holds_out_stratified_val(tmp_path):
    make_classes(tmp_path / "d", {"cats": 10, "dogs": 10})
    dataset = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0.2, seed=3)
    assert dataset.class_names == ("cats", "dogs")
    assert np.bincount(dataset.y_train).tolist() == [8, 8]
    assert np.bincount(dataset.y_val).tolist() == [2, 2]
    assert dataset.x_test is None and dataset.y_test is None
    other = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0.2, seed=4)
    assert sorted(map(bytes, other.x_val)) != sorted(map(bytes, dataset.x_val))


def test_split_folders_are_used_as_given(tmp_path):
    for split, count in (("train", 4), ("val", 2), ("test", 3)):
        make_classes(tmp_path / "d" / split, {"cats": count, "dogs": count})
    # Loose files next to the splits are ignored, even images.
    save(tmp_path / "d" / "README.png", solid(0))
    dataset = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0.5)
    assert dataset.class_names == ("cats", "dogs")
    assert (len(dataset.x_train), len(dataset.x_val), len(dataset.x_test)) == (8, 4, 6)
    assert dataset.y_test.tolist() == [0, 0, 0, 1, 1, 1]


def test_split_folders_with_different_classes_are_refused(tmp_path):
    make_classes(tmp_path / "d" / "train", {"cats": 1, "dogs": 1, "fish": 1})
    make_classes(tmp_path / "d" / "val", {"cats": 1, "dogs": 1})
    make_classes(tmp_path / "d" / "test", {"bird": 1, "cats": 1, "dogs": 1, "fish": 1})
    error = load_error(tmp_path / "d")
    assert error.message == (
        "the splits hold different class folders: val/ lacks fish; test/ has bird, which train/ lacks"
    )
    assert "same class sub-folders" in error.hint


def test_unexpected_folder_next_to_train_is_refused(tmp_path):
    make_classes(tmp_path / "d" / "train", {"cats": 1, "dogs": 1})
    make_classes(tmp_path / "d" / "validation", {"cats": 1, "dogs": 1})
    assert load_error(tmp_path / "d").message == "unexpected folder `validation` next to `train/`"


def test_hidden_and_system_files_are_ignored(tmp_path):
    make_classes(tmp_path / "d", {"cats": 2, "dogs": 2})
    for junk in ("cats/.DS_Store", "cats/Thumbs.db", "dogs/._000.png", "dogs/desktop.ini"):
        (tmp_path / "d" / junk).write_bytes(b"\0junk")
    (tmp_path / "d" / ".hidden_class").mkdir()
    (tmp_path / "d" / "__MACOSX").mkdir()
    dataset = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0)
    assert dataset.class_names == ("cats", "dogs") and len(dataset.x_train) == 4


def test_nested_folders_inside_a_class_are_searched(tmp_path):
    make_classes(tmp_path / "d", {"cats": 1, "dogs": 1})
    save(tmp_path / "d" / "cats" / "2024" / "june" / "x.png", solid(9))
    dataset = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0)
    assert dataset.y_train.tolist() == [0, 0, 1]


# --- the cache ----------------------------------------------------------------------------------


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    real_decode = images.decode_image

    def counting(payload, input_shape):
        calls.append(1)
        return real_decode(payload, input_shape)

    monkeypatch.setattr(images, "decode_image", counting)
    return calls


def test_second_load_decodes_nothing(tmp_path, count_decodes):
    make_classes(tmp_path / "d", {"cats": 3, "dogs": 3})
    first = load_dataset(str(tmp_path / "d"), SHAPE_RGB, cache_dir=tmp_path / "cache")
    assert len(count_decodes) == 6
    second = load_dataset(str(tmp_path / "d"), SHAPE_RGB, cache_dir=tmp_path / "cache")
    assert len(count_decodes) == 6
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert first.fingerprint == second.fingerprint
    cache_files = sorted(path.name for path in (tmp_path / "cache").iterdir())
    assert len(cache_files) == 1 and cache_files[0].endswith(".npz")  # no temporary files left


def test_changed_file_invalidates_the_cache(tmp_path, count_decodes):
    make_classes(tmp_path / "d", {"cats": 3, "dogs": 3})
    first = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0, cache_dir=tmp_path / "c")
    save(tmp_path / "d" / "cats" / "001.png", solid(222))
    changed = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0, cache_dir=tmp_path / "c")
    assert len(count_decodes) == 12
    assert changed.x_train[1, 0, 0, 0] == 222 and first.x_train[1, 0, 0, 0] == 1
    assert changed.fingerprint != first.fingerprint


def test_other_input_shape_does_not_reuse_the_cache(tmp_path, count_decodes):
    make_classes(tmp_path / "d", {"cats": 2, "dogs": 2})
    load_dataset(str(tmp_path / "d"), SHAPE_GRAY, cache_dir=tmp_path / "c")
    small = load_dataset(str(tmp_path / "d"), (4, 4, 1), cache_dir=tmp_path / "c")
    assert len(count_decodes) == 8 and small.x_train.shape[1:] == (4, 4, 1)


def test_damaged_cache_is_rebuilt(tmp_path, count_decodes):
    make_classes(tmp_path / "d", {"cats": 2, "dogs": 2})
    load_dataset(str(tmp_path / "d"), SHAPE_GRAY, cache_dir=tmp_path / "c")
    (cache_file,) = (tmp_path / "c").iterdir()
    cache_file.write_bytes(b"not a zip")
    dataset = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0, cache_dir=tmp_path / "c")
    assert len(count_decodes) == 8 and len(dataset.x_train) == 4


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    make_classes(tmp_path / "d", {"cats": 1, "dogs": 1})
    load_dataset(str(tmp_path / "d"), SHAPE_GRAY)
    assert len(list((tmp_path / "env-cache" / "datasets").glob("*.npz"))) == 1
    monkeypatch.delenv("CNN_ARCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    load_dataset(str(tmp_path / "d"), SHAPE_GRAY)
    assert len(list((tmp_path / "xdg" / "cnn-arch" / "datasets").glob("*.npz"))) == 1


# --- folders: bad data ----------------------------------------------------------------------------


def write_bad_files(root: Path) -> dict[str, str]:
    """Good images plus one file of each kind of damage; returns relative path -> reason's start."""
    make_classes(root, {"cats": 3, "dogs": 3})
    (root / "cats" / "empty.png").write_bytes(b"")
    png = io.BytesIO()
    noise_rgb(1).save(png, format="PNG")
    (root / "cats" / "cut.png").write_bytes(png.getvalue()[:-200])
    jpeg = io.BytesIO()
    noise_rgb(2).save(jpeg, format="JPEG")
    (root / "dogs" / "cut.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (root / "dogs" / "text.png").write_text("<html>not found</html>\n")
    (root / "dogs" / "notes.txt").write_text("labelled by Ann\n")
    (root / "dogs" / "garbage.bmp").write_bytes(bytes(range(256)) * 4)
    return {
        "cats/cut.png": "corrupt or truncated image (image file is truncated)",
        "cats/empty.png": "empty file (0 bytes)",
        # Pillow's byte count after this depends on the JPEG encoder.
        "dogs/cut.jpg": "corrupt or truncated image (image file is truncated (",
        "dogs/garbage.bmp": "not an image format Pillow can read",
        "dogs/notes.txt": "holds text, not image data",
        "dogs/text.png": "holds text, not image data",
    }


def test_all_bad_files_are_reported_in_one_error(tmp_path):
    expected = write_bad_files(tmp_path / "d")
    error = load_error(tmp_path / "d")
    assert error.path == str(tmp_path / "d")
    assert error.message.splitlines()[0] == "6 files cannot be used:"
    reasons = report_lines(error)
    assert list(reasons) == list(expected)
    for path, reason in reasons.items():
        assert reason.startswith(expected[path]), path
    assert "--skip-bad-files" in error.hint


def test_skip_bad_files_trains_without_them_and_lists_them(tmp_path):
    expected = write_bad_files(tmp_path / "d")
    dataset = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0, skip_bad_files=True)
    assert len(dataset.x_train) == 6
    skipped = dict(entry.split(": ", 1) for entry in dataset.skipped)
    assert list(skipped) == list(expected)
    for path, reason in skipped.items():
        assert reason.startswith(expected[path]), path


def test_skip_bad_files_works_from_the_cache(tmp_path, count_decodes):
    write_bad_files(tmp_path / "d")
    load_error(tmp_path / "d", cache_dir=tmp_path / "c")
    dataset = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, skip_bad_files=True, cache_dir=tmp_path / "c")
    assert len(count_decodes) == 12 and len(dataset.skipped) == 6


def test_long_report_is_capped(tmp_path):
    make_classes(tmp_path / "d", {"cats": 1, "dogs": 1})
    for index in range(25):
        (tmp_path / "d" / "cats" / f"bad{index:02d}.png").write_bytes(b"")
    error = load_error(tmp_path / "d")
    lines = error.message.splitlines()
    assert lines[0] == "25 files cannot be used:"
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "  ... and 5 more"


def test_symlinks_outside_the_root_and_loops_are_reported(tmp_path):
    make_classes(tmp_path / "d", {"cats": 2, "dogs": 2})
    outside = save(tmp_path / "secret.png", solid(1))
    cats = tmp_path / "d" / "cats"
    (cats / "out.png").symlink_to(outside)
    (cats / "back_up").symlink_to(cats, target_is_directory=True)
    (cats / "ping").symlink_to(cats / "pong")
    (cats / "pong").symlink_to(cats / "ping")
    (cats / "gone.png").symlink_to(tmp_path / "d" / "missing.png")
    (cats / "alias.png").symlink_to(tmp_path / "d" / "dogs" / "000.png")  # inside: used
    (tmp_path / "d" / "dogs" / "more").symlink_to(tmp_path / "d" / "cats", target_is_directory=True)
    error = load_error(tmp_path / "d")
    assert report_lines(error) == {
        "cats/back_up": "symlink loop",
        "cats/gone.png": "broken symlink",
        "cats/out.png": "symlink leads outside the dataset folder",
        "cats/ping": "symlink loop",
        "cats/pong": "symlink loop",
        "dogs/more/back_up": "symlink loop",
        "dogs/more/gone.png": "broken symlink",
        "dogs/more/out.png": "symlink leads outside the dataset folder",
        "dogs/more/ping": "symlink loop",
        "dogs/more/pong": "symlink loop",
    }
    dataset = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0, skip_bad_files=True)
    # cats: 000, 001, alias; dogs: 000, 001 and the three cats images seen through `more`.
    assert dataset.y_train.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]


def test_class_folder_linked_from_outside_is_reported(tmp_path):
    make_classes(tmp_path / "d", {"cats": 1, "dogs": 1})
    make_classes(tmp_path / "elsewhere", {"fish": 1})
    (tmp_path / "d" / "fish").symlink_to(tmp_path / "elsewhere" / "fish", target_is_directory=True)
    assert report_lines(load_error(tmp_path / "d")) == {"fish": "symlink leads outside the dataset folder"}


def test_empty_class_folders_are_named(tmp_path):
    make_classes(tmp_path / "d", {"cats": 2, "dogs": 2})
    (tmp_path / "d" / "fish").mkdir()
    (tmp_path / "d" / "owls").mkdir()
    (tmp_path / "d" / "owls" / ".DS_Store").write_bytes(b"x")
    error = load_error(tmp_path / "d")
    assert error.message == "class folders hold no images: fish/, owls/"


def test_empty_class_folder_in_a_split_is_named(tmp_path):
    make_classes(tmp_path / "d" / "train", {"cats": 2, "dogs": 2})
    make_classes(tmp_path / "d" / "test", {"cats": 1})
    (tmp_path / "d" / "test" / "dogs").mkdir()
    assert load_error(tmp_path / "d").message == "class folder holds no images: test/dogs/"


def test_empty_class_folders_and_bad_files_come_in_one_report(tmp_path, count_decodes):
    make_classes(tmp_path / "d", {"cats": 2, "dogs": 2})
    (tmp_path / "d" / "fish").mkdir()
    (tmp_path / "d" / "cats" / "empty.png").write_bytes(b"")
    (tmp_path / "d" / "dogs" / "notes.txt").write_text("labelled by Ann\n")
    error = load_error(tmp_path / "d", cache_dir=tmp_path / "c")
    assert error.message == (
        "class folder holds no images: fish/\n"
        "2 files cannot be used:\n"
        "  cats/empty.png: empty file (0 bytes)\n"
        "  dogs/notes.txt: holds text, not image data"
    )
    assert error.hint == (
        "add images to each class folder or delete the empty ones; "
        "fix or delete the files, or pass --skip-bad-files to train without them"
    )
    # Skipping the bad files leaves the empty class to report; the decoded folder is reused.
    skipping = load_error(tmp_path / "d", cache_dir=tmp_path / "c", skip_bad_files=True)
    assert skipping.message == "class folder holds no images: fish/"
    assert skipping.hint == "add images to each class folder or delete the empty ones"
    assert len(count_decodes) == 6


def test_folder_without_class_folders_is_refused(tmp_path):
    for index in range(3):
        save(tmp_path / "flat" / f"{index}.png", solid(index))
    error = load_error(tmp_path / "flat")
    assert error.message == "found no class sub-folders (it holds 3 images directly)"
    assert "own sub-folder" in error.hint


def test_single_class_is_refused(tmp_path):
    make_classes(tmp_path / "d", {"cats": 3})
    assert "only one class (cats)" in load_error(tmp_path / "d").message


def test_val_folder_with_every_image_skipped_falls_back_to_val_split(tmp_path):
    make_classes(tmp_path / "d" / "train", {"cats": 5, "dogs": 5})
    for name in ("cats", "dogs"):
        (tmp_path / "d" / "val" / name).mkdir(parents=True)
        (tmp_path / "d" / "val" / name / "broken.png").write_bytes(b"")
    dataset = load_dataset(str(tmp_path / "d"), SHAPE_GRAY, val_split=0.2, skip_bad_files=True)
    assert len(dataset.skipped) == 2
    assert np.bincount(dataset.y_val).tolist() == [1, 1] and len(dataset.x_train) == 8


def test_class_with_every_image_skipped_is_refused(tmp_path):
    make_classes(tmp_path / "d", {"cats": 2})
    (tmp_path / "d" / "dogs").mkdir()
    (tmp_path / "d" / "dogs" / "a.png").write_bytes(b"")
    error = load_error(tmp_path / "d", skip_bad_files=True)
    assert error.message == ("no usable training images left in class `dogs` after skipping bad files")
