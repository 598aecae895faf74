"""Tests for archspec.train.data: the three data sources, the cache, bad-data reports, check_fits.

All image data is generated here with Pillow and numpy; nothing is downloaded.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archspec.errors import DataError, UserError
from archspec.train.data import folders, images
from archspec.train.data import Dataset, check_fits, load_dataset

SHAPE_GRAY = (16, 16, 1)
SHAPE_RGB = (16, 16, 3)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Keep every test's cache out of the real home folder."""
    monkeypatch.setenv("CNN_ARCH_CACHE_DIR", str(tmp_path / "env-cache"))


@pytest.fixture(scope="module")
def digits_gray():
    return load_dataset("digits", (8, 8, 1), val_split=0.1, seed=0)


def save(path: Path, image: Image.Image, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def solid(value: int | tuple[int, ...], mode: str = "L", size=(12, 10)) -> Image.Image:
    return Image.new(mode, size, value)


def noise_rgb(seed: int, size=64) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def make_classes(root: Path, counts: dict[str, int]) -> None:
    """One folder per class; image i of class k is a solid gray of 10 * k + i."""
    for k, (name, count) in enumerate(counts.items()):
        for i in range(count):
            save(root / name / f"{i:03d}.png", solid(10 * k + i))


def load_error(source, shape=SHAPE_GRAY, **options) -> DataError:
    with pytest.raises(DataError) as caught:
        load_dataset(str(source), shape, **options)
    return caught.value


def png_of_size(width: int, height: int) -> bytes:
    """A valid 1-bit black PNG: tiny on disk whatever its dimensions."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\0" * (1 + (width + 7) // 8)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 1))
        + chunk(b"IEND", b"")
    )


def report_lines(error: DataError) -> dict[str, str]:
    """The bad-file report as {relative path: reason}."""
    lines = error.message.splitlines()[1:]
    return dict(line.strip().split(": ", 1) for line in lines if not line.strip().startswith("..."))


# --- digits -------------------------------------------------------------------------------------


def test_digits_splits_have_fixed_sizes_dtypes_and_class_names(digits_gray):
    assert digits_gray.x_train.shape == (1294, 8, 8, 1)
    assert digits_gray.x_val.shape == (144, 8, 8, 1)
    assert digits_gray.x_test.shape == (359, 8, 8, 1)
    assert digits_gray.x_train.dtype == np.uint8 and digits_gray.y_train.dtype == np.int32
    assert digits_gray.class_names == tuple("0123456789")
    assert digits_gray.num_classes == 10
    assert digits_gray.source == "digits" and digits_gray.skipped == ()
    assert digits_gray.x_train.max() == 255 and digits_gray.x_train.min() == 0


def test_digits_values_are_the_sklearn_images_scaled_to_0_255(digits_gray):
    from sklearn.datasets import load_digits

    original = load_digits()
    splits = (digits_gray.x_train, digits_gray.x_val, digits_gray.x_test)
    all_images = np.concatenate(splits)[..., 0]
    expected = np.rint(original.images * 255 / 16).astype(np.uint8)
    # The splits reorder the images; as a multiset they are exactly the scaled originals.
    assert sorted(map(bytes, all_images)) == sorted(map(bytes, expected))


def test_digits_test_split_is_stratified_and_independent_of_seed(digits_gray):
    other_seed = load_dataset("digits", (8, 8, 1), seed=7)
    np.testing.assert_array_equal(other_seed.x_test, digits_gray.x_test)
    assert not np.array_equal(other_seed.y_val, digits_gray.y_val)
    assert other_seed.fingerprint != digits_gray.fingerprint
    totals = np.bincount(np.concatenate([digits_gray.y_train, digits_gray.y_val, digits_gray.y_test]), minlength=10)
    assert np.all(np.abs(np.bincount(digits_gray.y_test, minlength=10) - 0.2 * totals) <= 1)
    remaining = totals - np.bincount(digits_gray.y_test, minlength=10)
    assert np.all(np.abs(np.bincount(digits_gray.y_val, minlength=10) - 0.1 * remaining) <= 1)


def test_digits_same_seed_gives_same_data_and_fingerprint(digits_gray):
    again = load_dataset("digits", (8, 8, 1), seed=0)
    np.testing.assert_array_equal(again.x_val, digits_gray.x_val)
    assert again.fingerprint == digits_gray.fingerprint


def test_digits_resized_and_replicated_to_rgb_and_rgba():
    rgb = load_dataset("digits", (20, 24, 3), val_split=0)
    assert rgb.x_train.shape == (1438, 20, 24, 3) and rgb.x_val is None
    assert np.array_equal(rgb.x_train[..., 0], rgb.x_train[..., 2])
    rgba = load_dataset("digits", (8, 8, 4), val_split=0)
    assert np.all(rgba.x_train[..., 3] == 255)
    assert np.array_equal(rgba.x_train[..., 0], rgba.x_train[..., 1])


# --- folders: happy paths -------------------------------------------------------------------------


def write_mixed_modes(root: Path) -> dict[str, tuple[int, tuple[int, int, int]]]:
    """Class `a` holds one image per Pillow mode; returns name -> (expected gray, expected RGB)."""
    sixteen_bit = Image.fromarray(np.full((10, 12), 32896, dtype=np.uint16))
    assert sixteen_bit.mode == "I;16"
    images = {
        "1_gray.png": (solid(100), 100, (100, 100, 100)),
        "2_rgb.png": (solid((255, 0, 0), "RGB"), 76, (255, 0, 0)),
        "3_rgba.png": (solid((0, 255, 0, 128), "RGBA"), 150, (0, 255, 0)),
        "4_palette.gif": (solid((0, 0, 255), "RGB").convert("P"), 29, (0, 0, 255)),
        "5_sixteen_bit.png": (sixteen_bit, 128, (128, 128, 128)),
        "6_gray_alpha.png": (solid((200, 9), "LA"), 200, (200, 200, 200)),
        "7_cmyk.tif": (solid((0, 255, 255, 0), "CMYK"), 76, (255, 0, 0)),
        "8_bilevel.bmp": (solid(1, "1"), 255, (255, 255, 255)),
    }
    for name, (image, _, _) in images.items():
        save(root / "a" / name, image)
    # Misnamed but decodable files are used: a JPEG called .png, a PNG called .txt.
    save(root / "a" / "9_jpeg.png", solid(60), format="JPEG", quality=100)
    save(root / "a" / "9_png.txt", solid(70), format="PNG")
    save(root / "b" / "1.png", solid(5))
    expected = {name: (gray, rgb) for name, (_, gray, rgb) in images.items()}
    expected |= {"9_jpeg.png": (60, (60,) * 3), "9_png.txt": (70, (70,) * 3)}
    expected["1.png"] = (5, (5,) * 3)
    return expected


def test_folder_converts_every_mode_to_gray_and_rgb(tmp_path):
    expected = write_mixed_modes(tmp_path / "pets")
    gray = load_dataset(str(tmp_path / "pets"), SHAPE_GRAY, val_split=0, cache_dir=tmp_path / "c")
    rgb = load_dataset(str(tmp_path / "pets"), SHAPE_RGB, val_split=0, cache_dir=tmp_path / "c")
    assert gray.class_names == ("a", "b")
    assert gray.x_train.shape == (11, 16, 16, 1) and rgb.x_train.shape == (11, 16, 16, 3)
    # Files load in sorted order: a/1_gray.png ... a/9_png.txt, then b/1.png.
    for index, (gray_value, rgb_value) in enumerate(expected.values()):
        assert np.all(np.abs(gray.x_train[index].astype(int) - gray_value) <= 1), index
        assert np.all(np.abs(rgb.x_train[index].astype(int) - rgb_value) <= 1), index
    assert gray.y_train.tolist() == [0] * 10 + [1]
    assert gray.x_test is None and gray.x_val is None


def test_folder_keeps_alpha_for_four_channels(tmp_path):
    save(tmp_path / "d" / "a" / "x.png", solid((0, 255, 0, 128), "RGBA"))
    save(tmp_path / "d" / "b" / "x.png", solid(7))
    dataset = load_dataset(str(tmp_path / "d"), (4, 4, 4), val_split=0)
    assert dataset.x_train[0, 0, 0].tolist() == [0, 255, 0, 128]
    assert dataset.x_train[1, 0, 0].tolist() == [7, 7, 7, 255]


def test_folder_resize_is_bilinear_and_deterministic(tmp_path):
    gradient = Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (25, 1)))
    save(tmp_path / "d" / "a" / "g.png", gradient)
    save(tmp_path / "d" / "b" / "g.png", gradient)
    first = load_dataset(str(tmp_path / "d"), (10, 10, 1), val_split=0, cache_dir=tmp_path / "c1")
    second = load_dataset(str(tmp_path / "d"), (10, 10, 1), val_split=0, cache_dir=tmp_path / "c2")
    expected = np.asarray(gradient.resize((10, 10), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(first.x_train[0, ..., 0], expected)
    assert first.fingerprint == second.fingerprint


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
    real_decode = folders.decode_image

    def counting(payload, input_shape):
        calls.append(1)
        return real_decode(payload, input_shape)

    monkeypatch.setattr(folders, "decode_image", counting)
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


def test_decompression_bomb_is_a_bad_file(tmp_path):
    make_classes(tmp_path / "d", {"cats": 1, "dogs": 1})
    bomb = png_of_size(10_000, 10_000)
    assert len(bomb) < 100_000
    (tmp_path / "d" / "cats" / "bomb.png").write_bytes(bomb)
    reasons = report_lines(load_error(tmp_path / "d"))
    # 100M pixels is under twice Pillow's limit, where Pillow only warns: the warning must refuse.
    assert list(reasons) == ["cats/bomb.png"]
    assert reasons["cats/bomb.png"].startswith(
        "possible decompression bomb (Image size (100000000 pixels) exceeds limit of 89478485"
    )
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's global is left as it was


def test_pixel_limit_holds_even_when_pillow_is_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100)
    make_classes(tmp_path / "d", {"cats": 1, "dogs": 1})
    save(tmp_path / "d" / "dogs" / "big.png", solid(0, size=(20, 20)))
    reasons = report_lines(load_error(tmp_path / "d", cache_dir=tmp_path / "c"))
    # The 12x10 class images are above the lowered limit too.
    assert reasons["dogs/big.png"] == ("possible decompression bomb (20x20 = 400 pixels, more than the limit of 100)")


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


# --- .npz ---------------------------------------------------------------------------------------


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


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


# --- sources and shapes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((0, 28, 1), "cannot resize images to `input 0x28x1`: height and width must be at least 1"),
        ((28, 0, 3), "cannot resize images to `input 28x0x3`: height and width must be at least 1"),
        ((8, 8, 2), "cannot convert images to `input 8x8x2`: 2 channels is not an image format"),
        ((9, 9, 5), "cannot convert images to `input 9x9x5`: 5 channels is not an image format"),
    ],
)
def test_input_shapes_images_cannot_fit(shape, message):
    error = load_error("digits", shape)
    assert error.message == message


def test_unknown_sources_list_the_accepted_forms(tmp_path):
    (tmp_path / "labels.csv").write_text("a,b\n")
    missing = load_error("mnist")
    assert missing.message == "no such file or folder, and not a built-in dataset"
    assert missing.path == "mnist"
    wrong_kind = load_error(tmp_path / "labels.csv")
    assert wrong_kind.message == "is neither a folder nor a .npz file"
    for error in (missing, wrong_kind):
        assert "`digits`" in error.hint and "folder" in error.hint and ".npz" in error.hint


@pytest.mark.parametrize("val_split", [-0.1, 1.0])
def test_val_split_out_of_range_is_a_user_error(val_split):
    with pytest.raises(UserError, match=r"`--val-split` \(=.*\) must be at least 0 and below 1"):
        load_dataset("digits", (8, 8, 1), val_split=val_split)


# --- check_fits ---------------------------------------------------------------------------------


def dataset_with_classes(count: int) -> Dataset:
    return Dataset(
        x_train=np.zeros((count, 2, 2, 1), np.uint8),
        y_train=np.arange(count, dtype=np.int32),
        x_val=None,
        y_val=None,
        x_test=None,
        y_test=None,
        class_names=tuple(f"c{i}" for i in range(count)),
        fingerprint="0",
        source="pets",
        skipped=(),
    )


@pytest.mark.parametrize(
    ("classes", "outputs", "activation"),
    [
        (10, 10, "softmax"),
        (10, 10, None),
        (10, 10, "linear"),
        (10, 10, "sigmoid"),
        (2, 1, "sigmoid"),
        (2, 2, "softmax"),
        (3, 3, "Softmax"),
    ],
)
def test_check_fits_accepts_heads_that_represent_the_classes(classes, outputs, activation):
    check_fits(dataset_with_classes(classes), num_outputs=outputs, head_activation=activation)


@pytest.mark.parametrize(
    ("classes", "outputs", "activation", "message", "hint"),
    [
        (
            10,
            2,
            "softmax",
            "the spec ends with `dense 2 softmax` but pets has 10 classes (c0, c1, c2, c3, c4, ...)",
            "change the last layer to `dense 10 softmax`",
        ),
        (
            10,
            1,
            "sigmoid",
            "`dense 1 sigmoid` can tell only 2 classes apart, but pets has 10 classes (c0, c1, c2, c3, c4, ...)",
            "change the last layer to `dense 10 softmax`",
        ),
        (
            3,
            2,
            "sigmoid",
            "the spec ends with `dense 2 sigmoid` but pets has 3 classes (c0, c1, c2)",
            "change the last layer to `dense 3 softmax`",
        ),
        (
            3,
            2,
            None,
            "the spec ends with `dense 2` (no activation: one logit per class) but pets has 3 classes (c0, c1, c2)",
            "change the last layer to `dense 3` or `dense 3 softmax`",
        ),
        (
            2,
            1,
            None,
            "the spec ends with `dense 1` (no activation: one logit per class) but pets has 2 classes (c0, c1)",
            "change the last layer to `dense 2` or `dense 2 softmax`",
        ),
        (
            3,
            3,
            "relu",
            "the spec ends with `dense 3 relu`, which cannot output class scores: "
            "a classifier's last layer has softmax, sigmoid or no activation",
            "change the last layer to `dense 3 softmax`",
        ),
    ],
)
def test_check_fits_says_what_to_change(classes, outputs, activation, message, hint):
    with pytest.raises(UserError) as caught:
        check_fits(dataset_with_classes(classes), num_outputs=outputs, head_activation=activation)
    assert (caught.value.message, caught.value.hint) == (message, hint)


def test_check_fits_on_real_digits(digits_gray):
    check_fits(digits_gray, num_outputs=10, head_activation="softmax")
    with pytest.raises(UserError, match=r"but digits has 10 classes \(0, 1, 2, 3, 4, \.\.\.\)"):
        check_fits(digits_gray, num_outputs=2, head_activation="softmax")


def test_read_image_decodes_like_training_and_names_bad_files(tmp_path):
    from archspec.train.data import read_image

    good = tmp_path / "cat.png"
    Image.fromarray(np.full((10, 12, 3), 200, np.uint8)).save(good)
    assert read_image(good, (4, 4, 1)).shape == (4, 4, 1)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(DataError) as caught:
        read_image(text, (4, 4, 1))
    assert caught.value.path == str(text) and "cannot be used" in caught.value.message
    with pytest.raises(DataError, match="no such image file"):
        read_image(tmp_path / "missing.png", (4, 4, 1))
