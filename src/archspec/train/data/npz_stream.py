"""A .npz too big for memory, streamed: each image array is memory-mapped from the archive (its
members stored uncompressed, as `np.savez` writes them) and every image converted as `load_npz`
converts the whole array, so the split, the fingerprint and the pixels are the in-memory ones."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

from archspec.errors import DataError
from archspec.train.data import npz
from archspec.train.data.images import Shape, fit_images, float_to_uint8

# Images scanned at a time for the whole array's min, max and finiteness (a bound on the memory used).
_SCAN_IMAGES = 1024
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # a zip member's local header: signature ... name and extra lengths


def stream_npz(source: str, path: Path, input_shape: Shape, *, val_split: float, seed: int, test_split: float = 0.0):
    """The .npz at `path` as a `stream.Streamed` dataset, every image read once up front (to check its
    values and to fingerprint it), as `load_npz` would hold it."""
    from archspec.train.data import stream

    headers = npz._read_npz_headers(source, path)
    pairs = npz._check_npz_layout(source, headers)
    small = [y_name for _, y_name in pairs.values()] + (["class_names"] if "class_names" in headers else [])
    arrays = npz._read_npz_arrays(source, path, small)
    sources = {
        split: NpzImages.open(source, path, x_name, npz._labels(source, y_name, arrays[y_name]), input_shape)
        for split, (x_name, y_name) in pairs.items()
    }
    class_names = npz._npz_class_names(
        source, arrays.get("class_names"), {split: (None, images.labels) for split, images in sources.items()}
    )
    return stream._check(
        source, sources, class_names, val_split=val_split, test_split=test_split, seed=seed, strict=True
    )[0]


class NpzImages:
    """One image array of a .npz, random access: item `i` is (uint8 image fitted to the input, label).
    Picklable (for Grain's worker processes): it holds where the array lies, and maps it when read."""

    def __init__(self, path: str, name: str, layout: tuple, labels: np.ndarray, input_shape: Shape, top) -> None:
        self.path, self.name, self.layout = path, name, layout  # layout: (offset, shape, dtype, fortran)
        self.labels, self.input_shape, self.top = labels, input_shape, top
        self.indices = np.arange(len(labels))
        self._array = None

    @classmethod
    def open(cls, source: str, path: Path, name: str, labels: np.ndarray, input_shape: Shape) -> NpzImages:
        """Locate array `name` in the archive and check its values as `load_npz` checks the whole array."""
        layout = _stored_layout(source, path, name)
        images = cls(str(path), name, layout, labels, input_shape, top=None)
        array = images._mapped()
        finite, low, high = True, None, None
        for start in range(0, len(array), _SCAN_IMAGES):
            part = array[start : start + _SCAN_IMAGES]
            if part.dtype.kind == "f":
                finite = finite and bool(np.isfinite(part).all())
            low = part.min() if low is None else min(low, part.min())
            high = part.max() if high is None else max(high, part.max())
        npz.check_image_values(source, name, array.dtype, finite, low, high)
        images.top = float(high)
        return images

    def subset(self, indices: np.ndarray) -> NpzImages:
        subset = NpzImages(self.path, self.name, self.layout, self.labels[indices], self.input_shape, self.top)
        subset.indices = self.indices[indices]
        return subset

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        image = np.asarray(self._mapped()[int(self.indices[index])])
        if image.ndim == 2:
            image = image[..., np.newaxis]
        pixels = float_to_uint8(image, self.top) if image.dtype.kind == "f" else image.astype(np.uint8)
        return fit_images(pixels[np.newaxis], self.input_shape)[0], int(self.labels[index])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}  # a memory map is sent as its path, not its contents

    def _mapped(self) -> np.ndarray:
        if self._array is None:
            offset, shape, dtype, fortran = self.layout
            order = "F" if fortran else "C"
            self._array = np.memmap(self.path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape, order=order)
        return self._array


def _stored_layout(source: str, path: Path, name: str) -> tuple:
    """(offset of the array's data in the file, shape, dtype, Fortran order) of member `name`.npy."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(f"{name}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                raise DataError(
                    source,
                    f"array `{name}` is compressed, so it cannot be streamed from disk, and it is too big "
                    "for the memory budget",
                    hint="save the arrays with np.savez (not np.savez_compressed), or as a folder of images; "
                    "or raise --data-memory",
                )
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(member)
                header_bytes = member.tell()
        with open(path, "rb") as file:
            file.seek(info.header_offset)
            signature, name_length, extra_length = _LOCAL_HEADER.unpack(file.read(_LOCAL_HEADER.size))
    except (OSError, ValueError, KeyError, struct.error, zipfile.BadZipFile) as exc:
        raise DataError(source, f"cannot read array `{name}` ({exc})") from None
    if signature != b"PK\x03\x04":
        raise DataError(source, f"cannot read array `{name}` (a damaged zip entry)")
    offset = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length + header_bytes
    return offset, tuple(shape), dtype.str, fortran
