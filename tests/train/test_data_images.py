"""Tests for image decoding (archspec.train.data.images): colour modes, bit depths, resizing,
decompression bombs and read_image, through the folders that training reads.
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
    png_of_size,
    private_cache,  # noqa: F401  (autouse: keeps the cache out of the home folder)
    report_lines,
    save,
    solid,
    tiff_bytes,
)
from PIL import Image

from archspec.errors import DataError
from archspec.train.data import images, load_dataset, read_image

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


# --- bit depths above 8 -------------------------------------------------------------------------


def load_one_image(tmp_path: Path, name: str, payload: bytes, shape=(2, 3, 1)) -> np.ndarray:
    """Load a two-class folder whose class `a` holds only `payload` as `name`; return that image."""
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "a" / name).write_bytes(payload)
    save(tmp_path / "d" / "b" / "x.png", solid(0))
    return load_dataset(str(tmp_path / "d"), shape, val_split=0).x_train[0, ..., 0]


def encoded(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def test_unsigned_32_bit_tiff_is_scaled_by_its_range_not_saturated(tmp_path):
    top = 2**32 - 1
    pixels = np.array([[0, 2**31, 3 * 2**30], [top, 70_000, 2**24]], dtype=np.uint32)
    loaded = load_one_image(tmp_path, "deep.tif", tiff_bytes(pixels))
    # 0..2**32-1 onto 0..255: half the range is 128, where clipping at 16 bits gave 255.
    assert loaded.tolist() == [[0, 128, 191], [255, 0, 1]]
    assert np.array_equal(read_image(tmp_path / "d" / "a" / "deep.tif", (2, 3, 1))[..., 0], loaded)


def test_signed_32_bit_tiff_from_pillow_is_scaled_by_the_int32_range(tmp_path):
    pixels = np.array([[0, 2**30, 2**31 - 1], [70_000, 2**29, 65_535]], dtype=np.int32)
    loaded = load_one_image(tmp_path, "deep.tif", encoded(Image.fromarray(pixels), "TIFF"))
    assert loaded.tolist() == [[0, 128, 255], [0, 64, 0]]


def test_signed_32_bit_tiff_with_negative_values_is_refused(tmp_path):
    pixels = np.array([[0, -5, 2**31 - 1], [7, 7, 7]], dtype=np.int32)
    with pytest.raises(DataError) as caught:
        load_one_image(tmp_path, "negative.tif", tiff_bytes(pixels, signed=True))
    assert report_lines(caught.value) == {
        "a/negative.tif": "32-bit signed integer image holds negative values (min -5), "
        "which have no place in 0..255; save it unsigned"
    }


def test_16_bit_pgm_read_as_32_bit_mode_is_scaled_as_16_bits(tmp_path):
    payload = encoded(Image.fromarray(np.array([[0, 32_896, 65_535]] * 2, dtype=np.uint16)), "PPM")
    assert Image.open(io.BytesIO(payload)).mode == "I"  # Pillow's 32-bit mode, holding 16-bit data
    assert load_one_image(tmp_path, "deep.pgm", payload).tolist() == [[0, 128, 255]] * 2


@pytest.mark.filterwarnings("ignore:IM image format is deprecated:DeprecationWarning")
def test_integers_of_unknown_depth_are_taken_as_16_bits_up_to_65535_and_refused_above(tmp_path):
    # Pillow's IM format stores Pillow's own 32-bit mode and says nothing about the data's range.
    within = encoded(Image.fromarray(np.array([[0, 32_896, 65_535]] * 2, dtype=np.int32)), "IM")
    assert load_one_image(tmp_path / "within", "deep.im", within).tolist() == [[0, 128, 255]] * 2
    above = encoded(Image.fromarray(np.array([[0, 70_000, 5]] * 2, dtype=np.int32)), "IM")
    with pytest.raises(DataError) as caught:
        load_one_image(tmp_path / "above", "deep.im", above)
    assert report_lines(caught.value) == {
        "a/deep.im": "integer image holds values from 0 to 70,000 in a format that does not say its bit depth; "
        "save it as 8- or 16-bit"
    }
