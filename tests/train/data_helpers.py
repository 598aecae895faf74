"""Shared pieces of the data tests (tests/train/test_data*.py): images made with Pillow and numpy,
dataset folders, and reading the errors back. Nothing is downloaded."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archspec.errors import DataError
from archspec.train.data import load_dataset

SHAPE_GRAY = (16, 16, 1)
SHAPE_RGB = (16, 16, 3)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Keep every test's cache out of the real home folder."""
    monkeypatch.setenv("CNN_ARCH_CACHE_DIR", str(tmp_path / "env-cache"))


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


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def tiff_bytes(pixels: np.ndarray, *, signed: bool = False) -> bytes:
    """An uncompressed one-channel little-endian TIFF of integer `pixels`, with the SampleFormat tag
    (1 unsigned, 2 signed) that Pillow cannot be told to write."""
    height, width = pixels.shape
    data = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    short, long = 3, 4
    # (tag, type, value): width, height, bits per sample, no compression, black is zero, strip
    # offset, samples per pixel, rows per strip, strip bytes, sample format.
    tags = [
        (256, short, width),
        (257, short, height),
        (258, short, pixels.dtype.itemsize * 8),
        (259, short, 1),
        (262, short, 1),
        (273, long, 0),
        (277, short, 1),
        (278, short, height),
        (279, long, len(data)),
        (339, short, 2 if signed else 1),
    ]
    data_offset = 8 + 2 + 12 * len(tags) + 4
    directory = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        value = data_offset if tag == 273 else value
        packed_value = struct.pack("<HH", value, 0) if kind == short else struct.pack("<I", value)
        directory += struct.pack("<HHI", tag, kind, 1) + packed_value
    return b"II*\0" + struct.pack("<I", 8) + directory + struct.pack("<I", 0) + data
