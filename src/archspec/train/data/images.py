"""Image decoding: one file's bytes to uint8 pixels at the spec's `input HxWxC` (Pillow, EXIF rotation,
colour-mode conversion, high bit depths scaled to 8 bits), used alike for training and `predict`."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from archspec.errors import DataError

# Pillow's default limit, held here so that a library lowering or disabling Pillow's global
# (`Image.MAX_IMAGE_PIXELS = None`) cannot switch the decompression-bomb check off for us.
MAX_IMAGE_PIXELS = 89_478_485
MODE_FOR_CHANNELS = {1: "L", 3: "RGB", 4: "RGBA"}
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# Formats whose `I` images are at most 16 bits (PGM is Pillow's "PPM").
_SIXTEEN_BIT_FORMATS = frozenset({"PNG", "PPM"})
_TIFF_BITS_PER_SAMPLE, _TIFF_SAMPLE_FORMAT, _TIFF_SIGNED = 258, 339, 2

Shape = tuple[int, int, int]  # (height, width, channels)


class UnusableImage(Exception):
    """A file that cannot be used as an image; `reason` says why, for the bad-file report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_image(path: str | Path, input_shape: Shape) -> np.ndarray:
    """Decode one image file exactly as training images are decoded (for `predict`).

    Returns uint8 (H, W, C) at `input_shape`; raises `DataError` naming the file when it cannot be used.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(str(path), "no such image file" if not file.exists() else "is not a file")
    try:
        return decode_image(file.read_bytes(), input_shape)
    except UnusableImage as error:
        raise DataError(str(path), f"cannot be used: {error.reason}") from None
    except OSError as error:
        raise DataError(str(path), f"cannot be read ({error.strerror})") from None
    except MemoryError:
        raise DataError(str(path), "ran out of memory while decoding it") from None


def decode_files(paths: list[str], input_shape: Shape) -> tuple[np.ndarray, list[tuple[int, str]], list[str]]:
    """Decode the files at `paths` (a folder's chunk, in a worker process or in the main one): the
    usable images in order as one uint8 array, (index in `paths`, reason) for each file that cannot
    be used, and every file's content digest (sha256 of the bytes decoded, or `unreadable_digest`).

    Here, not in `folders`, so that a worker process imports only numpy, Pillow and this module."""
    images = np.empty((len(paths), *input_shape), dtype=np.uint8)
    problems = []
    digests = []
    usable = 0
    for index, path in enumerate(paths):
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            problems.append((index, f"cannot read file ({exc.strerror})"))
            digests.append(unreadable_digest(exc))
            continue
        digests.append(hashlib.sha256(data).hexdigest())
        try:
            images[usable] = decode_image(data, input_shape)
        except UnusableImage as exc:
            problems.append((index, exc.reason))
            continue
        usable += 1
    return images[:usable], problems, digests


def unreadable_digest(exc: OSError) -> str:
    """A file's digest in a folder's cache key when it cannot be read: the key must still change once
    it becomes readable (decoding reports the file)."""
    return f"unreadable: {exc.strerror}"


def decode_image(data: bytes, input_shape: Shape) -> np.ndarray:
    """Decode one image file's bytes to uint8 (H, W, C); raise UnusableImage saying why not."""
    if not data:
        raise UnusableImage("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Warnings such as "Corrupt EXIF data" would repeat for every file of a camera's
            # images; the image itself decodes. Pillow only warns about a decompression bomb
            # between its limit and twice it; that warning must be a refusal.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                _check_pixel_count(image)
                image.load()
                # The bit depth is read before the rotation, whose copy loses the TIFF tags.
                depth = _declared_depth(image)
                return fit_image(ImageOps.exif_transpose(image), input_shape, depth)
    except UnusableImage:
        raise
    except UnidentifiedImageError:
        raise UnusableImage(_unidentified_reason(data)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnusableImage(f"possible decompression bomb ({exc})") from None
    except MemoryError:
        raise  # the host is short of memory; the file may be fine
    # Pillow's plugins raise many exception types on malformed input (OSError, SyntaxError,
    # struct.error, zlib.error, ...); each one means this file cannot be used.
    except Exception as exc:
        raise UnusableImage(f"corrupt or truncated image ({exc or type(exc).__name__})") from None


def _check_pixel_count(image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise UnusableImage(
            f"possible decompression bomb ({width}x{height} = {width * height:,} pixels, "
            f"more than the limit of {MAX_IMAGE_PIXELS:,})"
        )


def _unidentified_reason(data: bytes) -> str:
    if _looks_like_text(data):
        return "holds text, not image data"
    return "not an image format Pillow can read"


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off at the end of the window is still text.
        if exc.start < len(head) - 3:
            return False
    return b"\0" not in head


def _declared_depth(image: Image.Image) -> tuple[int, bool] | None:
    """(bits per sample, signed) of an integer image above 8 bits, as its file declares them.

    None for 8-bit modes, and for an `I` image whose format does not say (then its values decide).
    """
    if image.mode in _SIXTEEN_BIT_MODES or (image.mode == "I" and image.format in _SIXTEEN_BIT_FORMATS):
        return 16, False
    if image.mode == "I" and image.format == "TIFF":
        bits = _first(image.tag_v2.get(_TIFF_BITS_PER_SAMPLE, 32))
        return bits, _first(image.tag_v2.get(_TIFF_SAMPLE_FORMAT, 1)) == _TIFF_SIGNED
    return None


def _first(value: int | tuple[int, ...]) -> int:
    return value[0] if isinstance(value, tuple) else value


def fit_image(image: Image.Image, input_shape: Shape, depth: tuple[int, bool] | None = None) -> np.ndarray:
    """Convert `image` to the spec's channels and resize it (bilinear) to the spec's height and width."""
    height, width, channels = input_shape
    image = _to_mode(image, MODE_FOR_CHANNELS[channels], depth)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).reshape(height, width, channels)


def _to_mode(image: Image.Image, mode: str, depth: tuple[int, bool] | None) -> Image.Image:
    if image.mode == "I" or image.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own conversion of these to "L" clips at 255 instead of scaling.
        image = Image.fromarray(_integers_to_uint8(np.asarray(image), depth))
    elif image.mode == "F":
        image = Image.fromarray(float_to_uint8(np.asarray(image)))
    elif image.mode in ("P", "PA"):
        # Through RGBA so that a palette's transparency survives for 4-channel specs.
        image = image.convert("RGBA")
    try:
        return image.convert(mode)
    except ValueError:
        raise UnusableImage(f"cannot convert colour mode {image.mode} to {mode}") from None


def _integers_to_uint8(samples: np.ndarray, depth: tuple[int, bool] | None) -> np.ndarray:
    """Scale samples of `depth` (bits, signed) to 0..255: 0 stays 0, the type's largest value becomes 255.

    Without a declared depth, values up to 65535 are taken as 16 bits; larger ones are refused
    rather than guessed.
    """
    if depth is None:
        if samples.min() < 0 or samples.max() > 65535:
            raise UnusableImage(
                f"integer image holds values from {samples.min():,} to {samples.max():,} in a format "
                "that does not say its bit depth; save it as 8- or 16-bit"
            )
        depth = (16, False)
    bits, signed = depth
    if bits == 32 and not signed:
        # Pillow holds unsigned 32-bit samples in int32: values from 2**31 up read as negative.
        samples = samples.view(np.uint32)
    levels = samples.astype(np.int64)
    if signed and levels.min() < 0:
        raise UnusableImage(
            f"{bits}-bit signed integer image holds negative values (min {levels.min():,}), "
            "which have no place in 0..255; save it unsigned"
        )
    largest = 2 ** (bits - 1 if signed else bits) - 1
    return ((levels * 255 + largest // 2) // largest).astype(np.uint8)


def float_to_uint8(values: np.ndarray, top: float | None = None) -> np.ndarray:
    """Floats in 0..1 scaled by 255, others taken as 0..255; rounded and clipped to uint8. `top`: the
    largest value of the whole array `values` is part of (default: of `values`)."""
    scale = 255.0 if (values.max() if top is None else top) <= 1.0 else 1.0
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def fit_images(images: np.ndarray, input_shape: Shape) -> np.ndarray:
    """Fit uint8 (N, h, w, c) images, c in 1..4, to `input_shape`."""
    if images.shape[1:] == input_shape:
        return images
    fitted = np.empty((len(images), *input_shape), dtype=np.uint8)
    for index, image in enumerate(np.ascontiguousarray(images)):
        pixels = image[..., 0] if image.shape[-1] == 1 else image
        fitted[index] = fit_image(Image.fromarray(pixels), input_shape)
    return fitted
