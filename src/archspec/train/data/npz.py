"""A `.npz` file in the Keras datasets layout as a Dataset: every array header checked before any
array is read, then the values, the labels and the class names."""

from __future__ import annotations

import math
import zipfile
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archspec.errors import DataError
from archspec.train.data.dataset import Dataset, Split, assemble
from archspec.train.data.images import Shape, fit_images, float_to_uint8
from archspec.train.data.listing import SPLITS
from archspec.train.data.memory import check_decoded_size, check_read_size

# The most elements one .npz array may declare: a header is a claim, checked before allocating.
MAX_ARRAY_ELEMENTS = 2**31
# More classes than this means the labels are not class indices (and would need a name each).
MAX_CLASSES = 100_000
_SHOWN_CLASSES = 10


@dataclass(frozen=True)
class _ArrayHeader:
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


_NPZ_HINT = (
    "save the arrays with np.savez(path, x_train=images, y_train=labels, x_test=..., y_test=...): "
    "images uint8 (N, H, W) or (N, H, W, C), labels integers (N,)"
)


def load_npz(
    source: str, path: Path, input_shape: Shape, *, val_split: float, seed: int, test_split: float = 0.0
) -> Dataset:
    headers = _read_npz_headers(source, path)
    pairs = _check_npz_layout(source, headers)
    wanted = [name for pair in pairs.values() for name in pair]
    if "class_names" in headers:
        wanted.append("class_names")
    check_decoded_size(source, sum(headers[x_name].shape[0] for x_name, _ in pairs.values()), input_shape)
    check_read_size(source, sum(headers[name].nbytes for name in wanted), "its arrays")
    arrays = _read_npz_arrays(source, path, wanted)
    splits = {
        split: (
            _images_to_uint8(source, x_name, arrays[x_name]),
            _labels(source, y_name, arrays[y_name]),
        )
        for split, (x_name, y_name) in pairs.items()
    }
    class_names = _npz_class_names(source, arrays.get("class_names"), splits)
    fitted = {split: (fit_images(x, input_shape), y) for split, (x, y) in splits.items()}
    return assemble(
        source,
        class_names,
        fitted["train"],
        fitted.get("val"),
        fitted.get("test"),
        val_split=val_split,
        seed=seed,
        test_split=test_split,
    )


def _read_npz_headers(source: str, path: Path) -> dict[str, _ArrayHeader]:
    try:
        with zipfile.ZipFile(path) as archive:
            return {
                info.filename.removesuffix(".npy"): _read_member_header(source, archive, info)
                for info in archive.infolist()
                if info.filename.endswith(".npy")
            }
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        message = f"cannot read it as a .npz archive ({exc})"
        raise DataError(source, message, hint=_NPZ_HINT) from None


def _read_member_header(source: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _ArrayHeader:
    name = info.filename.removesuffix(".npy")
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
        except (ValueError, EOFError, zlib.error) as exc:
            raise DataError(source, f"array `{name}` has an unreadable header ({exc})") from None
        header_bytes = member.tell()
    if dtype.hasobject:
        raise DataError(
            source,
            f"array `{name}` holds Python objects (dtype {dtype}), which are never unpickled",
            hint=_NPZ_HINT,
        )
    elements = math.prod(shape)
    if elements > MAX_ARRAY_ELEMENTS:
        raise DataError(
            source,
            f"array `{name}` declares shape {shape}: {elements:,} elements, "
            f"more than the {MAX_ARRAY_ELEMENTS:,} this tool loads",
        )
    if info.file_size < header_bytes + elements * dtype.itemsize:
        raise DataError(
            source,
            f"array `{name}` is truncated: its header declares shape {shape} of {dtype}, "
            f"but the file holds only {info.file_size - header_bytes:,} bytes of data",
        )
    return _ArrayHeader(tuple(shape), dtype)


def _check_npz_layout(source: str, headers: dict[str, _ArrayHeader]) -> dict[str, tuple[str, str]]:
    """Check names, ranks, dtypes and lengths; return split -> (images name, labels name)."""
    if "x_train" not in headers or "y_train" not in headers:
        absent = [name for name in ("x_train", "y_train") if name not in headers]
        missing = " and ".join(f"`{name}`" for name in absent)
        found = ", ".join(f"`{name}`" for name in sorted(headers)) or "no arrays"
        raise DataError(source, f"missing array {missing} (found {found})", hint=_NPZ_HINT)
    pairs = {}
    for split in SPLITS:
        x_name, y_name = f"x_{split}", f"y_{split}"
        if (x_name in headers) != (y_name in headers):
            lone, partner = (x_name, y_name) if x_name in headers else (y_name, x_name)
            raise DataError(source, f"array `{lone}` comes without `{partner}`", hint=_NPZ_HINT)
        if x_name in headers:
            _check_images_header(source, x_name, headers[x_name])
            _check_labels_header(source, y_name, headers[y_name])
            if headers[x_name].shape[0] != headers[y_name].shape[0]:
                raise DataError(
                    source,
                    f"`{x_name}` holds {headers[x_name].shape[0]} images but `{y_name}` "
                    f"holds {headers[y_name].shape[0]} labels",
                    hint="each image needs exactly one label",
                )
            pairs[split] = (x_name, y_name)
    if "class_names" in headers:
        header = headers["class_names"]
        if header.dtype.kind != "U" or len(header.shape) != 1:
            raise DataError(
                source,
                f"array `class_names` must be 1-D strings, got shape {header.shape} of {header.dtype}",
                hint="save it as np.array(['cat', 'dog', ...])",
            )
    return pairs


def _check_images_header(source: str, name: str, header: _ArrayHeader) -> None:
    if len(header.shape) not in (3, 4):
        raise DataError(
            source,
            f"array `{name}` has shape {header.shape}; images must be (N, H, W) or (N, H, W, C)",
            hint=_NPZ_HINT,
        )
    if len(header.shape) == 4 and header.shape[3] not in (1, 2, 3, 4):
        raise DataError(
            source,
            f"array `{name}` has shape {header.shape}: {header.shape[3]} channels in the last axis",
            hint="images must be channels-last (N, H, W, C) with C from 1 to 4; "
            "transpose channels-first arrays with x.transpose(0, 2, 3, 1)",
        )
    if header.shape[0] == 0 or header.shape[1] == 0 or header.shape[2] == 0:
        raise DataError(source, f"array `{name}` has shape {header.shape}, which holds no images")
    if header.dtype.kind not in "uif":
        raise DataError(
            source,
            f"array `{name}` has dtype {header.dtype}; images must be integers 0..255 or floats",
            hint=_NPZ_HINT,
        )


def _check_labels_header(source: str, name: str, header: _ArrayHeader) -> None:
    shape = header.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise DataError(
            source,
            f"array `{name}` has shape {shape}; labels must be (N,) or (N, 1) class indices",
            hint="turn one-hot labels into indices with y.argmax(axis=1)",
        )
    if header.dtype.kind not in "ui":
        raise DataError(
            source,
            f"array `{name}` has dtype {header.dtype}; labels must be integer class indices",
            hint="convert them with y.astype(np.int64)",
        )


def _read_npz_arrays(source: str, path: Path, names: list[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in names}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(source, f"cannot read the arrays ({exc})", hint=_NPZ_HINT) from None


def _images_to_uint8(source: str, name: str, images: np.ndarray) -> np.ndarray:
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.dtype.kind == "f":
        check_image_values(source, name, images.dtype, bool(np.isfinite(images).all()), images.min(), images.max())
        return float_to_uint8(images)
    check_image_values(source, name, images.dtype, True, images.min(), images.max())
    return images.astype(np.uint8)


def check_image_values(source: str, name: str, dtype: np.dtype, finite: bool, low, high) -> None:
    """Refuse an image array whose values cannot be pixels, from the whole array's min and max."""
    if dtype.kind == "f":
        if not finite:
            raise DataError(source, f"array `{name}` holds NaN or infinite values")
        if low < 0:
            raise DataError(
                source,
                f"array `{name}` holds negative values (min {low:g})",
                hint="store images as uint8 0..255 or floats in 0..1, not normalized",
            )
    elif low < 0 or high > 255:
        raise DataError(
            source,
            f"array `{name}` holds values from {low} to {high}; integer images must lie in 0..255",
            hint="store images as uint8 0..255 or floats in 0..1",
        )


def _labels(source: str, name: str, labels: np.ndarray) -> np.ndarray:
    labels = labels.reshape(-1)
    if labels.min() < 0:
        raise DataError(source, f"array `{name}` holds negative labels (min {labels.min()})")
    if labels.max() >= MAX_CLASSES:
        raise DataError(
            source,
            f"array `{name}` holds label {labels.max()}, more than the {MAX_CLASSES:,} classes this tool trains",
            hint="labels must be class indices 0..K-1",
        )
    return labels.astype(np.int32)


def _npz_class_names(source: str, stored: np.ndarray | None, splits: dict[str, Split]) -> tuple[str, ...]:
    """The class names (stored, else the labels 0..largest), once every class is known to be trainable."""
    largest = max(int(labels.max()) for _, labels in splits.values())
    if stored is None:
        class_names = tuple(str(label) for label in range(largest + 1))
    else:
        if largest >= len(stored):
            raise DataError(
                source,
                f"label {largest} has no name: `class_names` holds {len(stored)} names",
                hint="labels must be indices into `class_names`",
            )
        class_names = tuple(str(name) for name in stored)
        _check_unique_names(source, class_names)
    _check_every_class_trained(source, class_names, splits, named=stored is not None)
    return class_names


def _check_unique_names(source: str, class_names: tuple[str, ...]) -> None:
    indices = defaultdict(list)
    for index, name in enumerate(class_names):
        indices[name].append(index)
    repeated = [f"`{name}` at {_and_list(at)}" for name, at in indices.items() if len(at) > 1]
    if repeated:
        raise DataError(
            source,
            f"array `class_names` repeats {'names' if len(repeated) > 1 else 'a name'}: {', '.join(repeated)}",
            hint="give each class a name of its own: predictions of two classes with one name cannot be told apart",
        )


def _check_every_class_trained(
    source: str, class_names: tuple[str, ...], splits: dict[str, Split], *, named: bool
) -> None:
    """Refuse evaluation labels that never occur in `y_train`, and classes without a training image."""
    trained = set(np.unique(splits["train"][1]).tolist())
    for split, (_, labels) in splits.items():
        unseen = sorted(set(np.unique(labels).tolist()) - trained)
        if unseen:
            one = len(unseen) == 1
            raise DataError(
                source,
                f"`y_{split}` holds {_classes(unseen, class_names, named)}, "
                f"which never {'occurs' if one else 'occur'} in `y_train`",
                hint=f"a model cannot learn a class it never trains on: add training images of "
                f"{'it' if one else 'them'}, or leave {'it' if one else 'them'} out of `y_{split}`",
            )
    untrained = [label for label in range(len(class_names)) if label not in trained]
    if not untrained:
        return
    one = len(untrained) == 1
    if named:
        why = f"`class_names` names {len(class_names)} classes"
        hint = "add training images of every class, or drop the unused names and renumber the labels to match"
    else:
        why = f"the labels run from 0 to {len(class_names) - 1}, so there are {len(class_names)} classes"
        hint = "labels must be class indices 0..K-1; renumber them alike in every split, e.g. with np.unique"
        if untrained == [0]:
            hint = "labels must be class indices from 0: subtract 1 from the labels of every split"
    raise DataError(
        source,
        f"{_classes(untrained, class_names, named)} {'holds' if one else 'hold'} no images in `y_train`: {why}",
        hint=hint,
    )


def _classes(labels: list[int], class_names: tuple[str, ...], named: bool) -> str:
    """`class 3`, `classes 1, 2, 4`, or with names `class `fish` (label 2)`; at most 10 shown."""
    shown = [f"`{class_names[label]}` (label {label})" if named else str(label) for label in labels[:_SHOWN_CLASSES]]
    more = f", ... ({len(labels)} in all)" if len(labels) > _SHOWN_CLASSES else ""
    return f"{'class' if len(labels) == 1 else 'classes'} {', '.join(shown)}{more}"


def _and_list(items: list[int]) -> str:
    return " and ".join(map(str, items)) if len(items) < 3 else f"{', '.join(map(str, items[:-1]))} and {items[-1]}"
