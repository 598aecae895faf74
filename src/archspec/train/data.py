"""Training data for `cnn-arch train --data`: `load_dataset` turns what the user passed into
uint8 image arrays already fitted to the spec's `input HxWxC`; `check_fits` checks the model's last
layer against the classes found.

Three sources:

- `digits`: scikit-learn's 8x8 handwritten digits (1,797 images shipped inside the package, so no
  download). A fixed stratified 20% is the test set, the same images in every run.
- A folder with one sub-folder per class (class names are the sorted sub-folder names), or with
  `train/`, `val/` and `test/` folders that each hold the same class sub-folders. Sub-folders inside
  a class folder are searched too. Images are decoded with Pillow (the first frame of animations,
  EXIF rotation applied), converted to the spec's channels, and cached as an .npz keyed by the
  files' contents, so a second run decodes nothing.
- A `.npz` file in the Keras datasets layout: `x_train`, `y_train`, optionally `x_val`/`y_val`,
  `x_test`/`y_test` and `class_names`. Every array header is checked before any array is read.

Without a `val` split, `val_split` of the training images is held out, stratified and seeded. Every
image is resized to the spec's height and width with bilinear filtering; RGBA loses its alpha unless
the spec asks for 4 channels; 16-bit images are scaled to 8 bits; float arrays in 0..1 are scaled to
0..255.

Which files count: hidden files (`.DS_Store`, `._photo.jpg`), `Thumbs.db`, `desktop.ini` and
`__MACOSX` are ignored, as are files directly in the dataset folder (a README). Every other file in
a class folder is meant to be an image. One that Pillow can decode is used whatever its name (a JPEG
saved as `.png` is common and harmless); one it cannot is reported, whatever its name: a `notes.txt`
in a class folder is as much a mistake as a `.png` that holds text. `IMAGE_EXTENSIONS` only serves
to spot images put directly in the dataset folder instead of in class folders. Symlinks are
followed inside the dataset folder only, and symlink loops are reported.

Bad data is found before training starts and reported in one error listing every bad file;
`skip_bad_files=True` trains without them and lists them in `Dataset.skipped`.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageOps, UnidentifiedImageError

from archspec.errors import DataError, UserError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
# Pillow's default limit, held here so that a library lowering or disabling Pillow's global
# (`Image.MAX_IMAGE_PIXELS = None`) cannot switch the decompression-bomb check off for us.
MAX_IMAGE_PIXELS = 89_478_485
# The most elements one .npz array may declare: a header is a claim, checked before allocating.
MAX_ARRAY_ELEMENTS = 2**31
# More classes than this means the labels are not class indices (and would need a name each).
MAX_CLASSES = 100_000
DIGITS_TEST_FRACTION = 0.2
# Independent of the user's seed so that every run is tested on the same digits.
DIGITS_TEST_SEED = 0
# Bump when decoding changes, so that old caches are not trusted.
CACHE_FORMAT_VERSION = 1
REPORT_LIMIT = 20

_ACCEPTED_SOURCES = (
    "pass `digits` (the built-in 8x8 digits), a folder with one sub-folder of images per class, "
    "or a .npz file with `x_train` and `y_train` arrays"
)
_SKIP_HINT = "fix or delete them, or pass --skip-bad-files to train without them"
_IGNORED_NAMES = frozenset({"Thumbs.db", "desktop.ini", "__MACOSX"})
_SPLITS = ("train", "val", "test")
_MODE_FOR_CHANNELS = {1: "L", 3: "RGB", 4: "RGBA"}
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})

_Split = tuple[np.ndarray, np.ndarray]  # (images, labels)
_Shape = tuple[int, int, int]  # (height, width, channels)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images as uint8 (N, H, W, C) fitted to the spec's input, labels as int32 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...]
    fingerprint: str
    source: str
    skipped: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_dataset(
    source: str,
    input_shape: tuple[int, int, int],
    *,
    val_split: float = 0.1,
    seed: int = 0,
    skip_bad_files: bool = False,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load `source` (`digits`, a class folder or a .npz file) fitted to `input_shape` (H, W, C).

    Args:
        val_split: fraction of the training images held out for validation when the source has
            no validation split; 0 (or too few images to hold any out) gives no validation set.
        seed: picks which images are held out for validation.
        skip_bad_files: train without unreadable images instead of reporting them as an error.
        cache_dir: where decoded folders are cached; default `$CNN_ARCH_CACHE_DIR/datasets`, else
            `$XDG_CACHE_HOME/cnn-arch/datasets`, else `~/.cache/cnn-arch/datasets`.

    Raises:
        DataError: the data is missing, unreadable, inconsistent or cannot fit `input_shape`.
        UserError: `val_split` is out of range.
    """
    _check_input_shape(source, input_shape)
    if not 0 <= val_split < 1:
        raise UserError(f"`--val-split` (={val_split}) must be at least 0 and below 1")
    if source == "digits":
        return _load_digits(input_shape, val_split=val_split, seed=seed)
    path = Path(source).expanduser()
    if path.is_dir():
        cache = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir()
        return _load_folder(
            source,
            path,
            input_shape,
            val_split=val_split,
            seed=seed,
            skip_bad_files=skip_bad_files,
            cache_dir=cache,
        )
    if path.is_file() and path.suffix.lower() == ".npz":
        return _load_npz(source, path, input_shape, val_split=val_split, seed=seed)
    if path.exists():
        raise DataError(source, "is neither a folder nor a .npz file", hint=_ACCEPTED_SOURCES)
    raise DataError(source, "no such file or folder, and not a built-in dataset", hint=_ACCEPTED_SOURCES)


def check_fits(dataset: Dataset, *, num_outputs: int, head_activation: str | None) -> None:
    """Check that a model ending in `num_outputs` units and `head_activation` fits `dataset`.

    `head_activation` is the last layer's activation, None (or "linear") when it outputs logits.
    Softmax and logits need one unit per class; sigmoid needs one per class, or one for two classes.

    Raises:
        UserError: the last layer cannot represent the dataset's classes.
    """
    classes = dataset.num_classes
    activation = (head_activation or "linear").lower()
    head = f"dense {num_outputs}" if activation == "linear" else f"dense {num_outputs} {activation}"
    found = f"{dataset.source} has {_describe_classes(dataset.class_names)}"
    change = f"change the last layer to `dense {classes} softmax`"
    if activation not in ("softmax", "sigmoid", "linear"):
        raise UserError(
            f"the spec ends with `{head}`, which cannot output class scores: "
            "a classifier's last layer has softmax, sigmoid or no activation",
            hint=change,
        )
    if num_outputs == classes or (activation == "sigmoid" and num_outputs == 1 and classes == 2):
        return
    if activation == "sigmoid" and num_outputs == 1:
        raise UserError(f"`{head}` can tell only 2 classes apart, but {found}", hint=change)
    if activation == "linear":
        raise UserError(
            f"the spec ends with `{head}` (no activation: one logit per class) but {found}",
            hint=f"change the last layer to `dense {classes}` or `dense {classes} softmax`",
        )
    raise UserError(f"the spec ends with `{head}` but {found}", hint=change)


def _describe_classes(class_names: tuple[str, ...]) -> str:
    shown = ", ".join(class_names[:5]) + (", ..." if len(class_names) > 5 else "")
    return f"{len(class_names)} classes ({shown})"


def _check_input_shape(source: str, input_shape: _Shape) -> None:
    height, width, channels = input_shape
    where = f"`input {height}x{width}x{channels}`"
    if height < 1 or width < 1:
        raise DataError(source, f"cannot resize images to {where}: height and width must be at least 1")
    if channels not in _MODE_FOR_CHANNELS:
        raise DataError(
            source,
            f"cannot convert images to {where}: {channels} channels is not an image format",
            hint="use 1 channel (grayscale), 3 (RGB) or 4 (RGBA) in the spec's `input` line",
        )


def _default_cache_dir() -> Path:
    if override := os.environ.get("CNN_ARCH_CACHE_DIR"):
        return Path(override).expanduser() / "datasets"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "cnn-arch" / "datasets"


# --- assembling a Dataset -------------------------------------------------------------------------


def _assemble(
    source: str,
    class_names: tuple[str, ...],
    train: _Split,
    val: _Split | None,
    test: _Split | None,
    *,
    val_split: float,
    seed: int,
    skipped: tuple[str, ...] = (),
) -> Dataset:
    if len(class_names) < 2:
        raise DataError(
            source,
            f"found only one class ({', '.join(class_names)}); a classifier needs at least two",
            hint="add the images of the other classes",
        )
    if val is None and val_split > 0:
        keep, held = _stratified_split(train[1], val_split, np.random.default_rng(seed))
        if held.size:
            train, val = _take(train, keep), _take(train, held)
    splits = {"train": train, "val": val, "test": test}
    return Dataset(
        x_train=train[0],
        y_train=train[1],
        x_val=val[0] if val is not None else None,
        y_val=val[1] if val is not None else None,
        x_test=test[0] if test is not None else None,
        y_test=test[1] if test is not None else None,
        class_names=class_names,
        fingerprint=_fingerprint(class_names, splits),
        source=source,
        skipped=skipped,
    )


def _take(split: _Split, indices: np.ndarray) -> _Split:
    return split[0][indices], split[1][indices]


def _stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) with `fraction` of each class held out, both sorted.

    Per-class quotas are rounded by largest remainder so that the total is `round(fraction * N)`,
    and every class keeps at least one image.
    """
    classes, counts = np.unique(labels, return_counts=True)
    quotas = fraction * counts
    held_counts = np.floor(quotas).astype(np.int64)
    shortfall = round(fraction * len(labels)) - int(held_counts.sum())
    by_remainder = np.argsort(-(quotas - held_counts), kind="stable")
    held_counts[by_remainder[:shortfall]] += 1
    held_counts = np.minimum(held_counts, counts - 1)
    held = [
        rng.permutation(np.flatnonzero(labels == label))[:count]
        for label, count in zip(classes, held_counts, strict=True)
    ]
    held_out = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


def _fingerprint(class_names: tuple[str, ...], splits: dict[str, _Split | None]) -> str:
    digest = hashlib.sha256(json.dumps(class_names).encode())
    for name, split in splits.items():
        if split is None:
            continue
        for array in split:
            digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
            digest.update(np.ascontiguousarray(array))
    return digest.hexdigest()


# --- images -------------------------------------------------------------------------------------


class _UnusableImage(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_image(path: str | Path, input_shape: _Shape) -> np.ndarray:
    """Decode one image file exactly as training images are decoded (for `predict`).

    Returns uint8 (H, W, C) at `input_shape`; raises `DataError` naming the file when it cannot be used.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(str(path), "no such image file" if not file.exists() else "is not a file")
    try:
        return _decode_image(file.read_bytes(), input_shape)
    except _UnusableImage as error:
        raise DataError(str(path), f"cannot be used: {error.reason}") from None
    except OSError as error:
        raise DataError(str(path), f"cannot be read ({error.strerror})") from None


def _decode_image(data: bytes, input_shape: _Shape) -> np.ndarray:
    """Decode one image file's bytes to uint8 (H, W, C); raise _UnusableImage saying why not."""
    if not data:
        raise _UnusableImage("empty file (0 bytes)")
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
                return _fit_image(ImageOps.exif_transpose(image), input_shape)
    except _UnusableImage:
        raise
    except UnidentifiedImageError:
        raise _UnusableImage(_unidentified_reason(data)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _UnusableImage(f"possible decompression bomb ({exc})") from None
    # Pillow's plugins raise many exception types on malformed input (OSError, SyntaxError,
    # struct.error, zlib.error, ...); each one means this file cannot be used.
    except Exception as exc:
        raise _UnusableImage(f"corrupt or truncated image ({exc or type(exc).__name__})") from None


def _check_pixel_count(image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise _UnusableImage(
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


def _fit_image(image: Image.Image, input_shape: _Shape) -> np.ndarray:
    height, width, channels = input_shape
    image = _to_mode(image, _MODE_FOR_CHANNELS[channels])
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).reshape(height, width, channels)


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own conversion of these to "L" clips at 255 instead of scaling.
        levels = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        image = Image.fromarray(((levels + 128) // 257).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(_float_to_uint8(np.asarray(image)))
    elif image.mode in ("P", "PA"):
        # Through RGBA so that a palette's transparency survives for 4-channel specs.
        image = image.convert("RGBA")
    try:
        return image.convert(mode)
    except ValueError:
        raise _UnusableImage(f"cannot convert colour mode {image.mode} to {mode}") from None


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    scale = 255.0 if values.max() <= 1.0 else 1.0
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def _fit_images(images: np.ndarray, input_shape: _Shape) -> np.ndarray:
    """Fit uint8 (N, h, w, c) images, c in 1..4, to `input_shape`."""
    if images.shape[1:] == input_shape:
        return images
    fitted = np.empty((len(images), *input_shape), dtype=np.uint8)
    for index, image in enumerate(np.ascontiguousarray(images)):
        pixels = image[..., 0] if image.shape[-1] == 1 else image
        fitted[index] = _fit_image(Image.fromarray(pixels), input_shape)
    return fitted


# --- digits -------------------------------------------------------------------------------------


def _load_digits(input_shape: _Shape, *, val_split: float, seed: int) -> Dataset:
    from sklearn.datasets import load_digits  # heavy import, only paid for this source

    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[..., np.newaxis]
    everything = (_fit_images(images, input_shape), digits.target.astype(np.int32))
    train_indices, test_indices = _stratified_split(
        everything[1], DIGITS_TEST_FRACTION, np.random.default_rng(DIGITS_TEST_SEED)
    )
    class_names = tuple(str(name) for name in digits.target_names)
    train, test = _take(everything, train_indices), _take(everything, test_indices)
    return _assemble("digits", class_names, train, None, test, val_split=val_split, seed=seed)


# --- image folders ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ImageFile:
    relative: str  # posix path from the dataset root, as shown to the user
    path: Path
    label: int


@dataclass(frozen=True)
class _FolderListing:
    class_names: tuple[str, ...]
    files: dict[str, list[_ImageFile]]  # split name -> files
    bad: list[tuple[str, str]]  # (relative path, reason), found without decoding


@dataclass(frozen=True)
class _Decoded:
    splits: dict[str, _Split]
    bad: list[tuple[str, str]]


def _load_folder(
    source: str,
    root: Path,
    input_shape: _Shape,
    *,
    val_split: float,
    seed: int,
    skip_bad_files: bool,
    cache_dir: Path,
) -> Dataset:
    listing = _list_folder(source, root)
    decoded = _decode_folder_cached(root, listing, input_shape, cache_dir)
    bad = sorted(listing.bad + decoded.bad)
    if bad and not skip_bad_files:
        raise _bad_files_error(source, bad)
    train = decoded.splits["train"]
    _check_every_class_left(source, listing.class_names, train[1])
    # A split can only come out empty when every one of its files was skipped.
    val, test = (decoded.splits.get(name) for name in ("val", "test"))
    return _assemble(
        source,
        listing.class_names,
        train,
        val if val is not None and len(val[1]) else None,
        test if test is not None and len(test[1]) else None,
        val_split=val_split,
        seed=seed,
        skipped=tuple(f"{path}: {reason}" for path, reason in bad),
    )


def _bad_files_error(source: str, bad: list[tuple[str, str]]) -> DataError:
    lines = [f"  {path}: {reason}" for path, reason in bad[:REPORT_LIMIT]]
    if len(bad) > REPORT_LIMIT:
        lines.append(f"  ... and {len(bad) - REPORT_LIMIT} more")
    count = "1 file" if len(bad) == 1 else f"{len(bad)} files"
    return DataError(source, f"{count} cannot be used:\n" + "\n".join(lines), hint=_SKIP_HINT)


def _check_every_class_left(source: str, class_names: tuple[str, ...], labels: np.ndarray) -> None:
    present = np.bincount(labels, minlength=len(class_names))
    emptied = [name for name, count in zip(class_names, present, strict=True) if count == 0]
    if emptied:
        raise DataError(
            source,
            f"no usable training images left in class {', '.join(f'`{n}`' for n in emptied)} after skipping bad files",
            hint="fix the skipped files or add images to the class",
        )


def _list_folder(source: str, root: Path) -> _FolderListing:
    bad: list[tuple[Path, str]] = []
    top = _sub_folders(root, root, bad)
    if "train" in top:
        unexpected = sorted(set(top) - set(_SPLITS))
        if unexpected:
            raise DataError(
                source,
                f"unexpected folder `{unexpected[0]}` next to `train/`",
                hint="a dataset with splits holds only train/, val/ and test/, each with one sub-folder per class",
            )
        classes_by_split = {split: _sub_folders(top[split], root, bad) for split in _SPLITS if split in top}
    else:
        classes_by_split = {"train": top}
    class_names = _agree_on_classes(source, root, classes_by_split)
    files = {
        split: [
            _ImageFile(path.relative_to(root).as_posix(), path, label)
            for label, name in enumerate(class_names)
            for path in _walk_files(classes[name], root, bad)
        ]
        for split, classes in classes_by_split.items()
    }
    _check_no_empty_class(source, root, class_names, classes_by_split, files)
    shown = [(path.relative_to(root).as_posix(), reason) for path, reason in bad]
    return _FolderListing(class_names, files, shown)


def _agree_on_classes(source: str, root: Path, classes_by_split: dict[str, dict[str, Path]]) -> tuple[str, ...]:
    train = set(classes_by_split["train"])
    if not train:
        loose = [
            path
            for path, is_folder in _scan(root, root, [])
            if not is_folder and path.suffix.lower() in IMAGE_EXTENSIONS
        ]
        found = f" (it holds {len(loose)} images directly)" if loose else ""
        raise DataError(
            source,
            f"found no class sub-folders{found}",
            hint=f"put each class's images in its own sub-folder: {source}/cats/1.png, {source}/dogs/1.png",
        )
    differences = []
    for split, classes in classes_by_split.items():
        if missing := sorted(train - set(classes)):
            differences.append(f"{split}/ lacks {', '.join(missing)}")
        if extra := sorted(set(classes) - train):
            differences.append(f"{split}/ has {', '.join(extra)}, which train/ lacks")
    if differences:
        raise DataError(
            source,
            "the splits hold different class folders: " + "; ".join(differences),
            hint="train/, val/ and test/ must hold the same class sub-folders",
        )
    return tuple(sorted(train))


def _check_no_empty_class(
    source: str,
    root: Path,
    class_names: tuple[str, ...],
    classes_by_split: dict[str, dict[str, Path]],
    files: dict[str, list[_ImageFile]],
) -> None:
    empty = []
    for split, classes in classes_by_split.items():
        labels_present = {file.label for file in files[split]}
        empty += [
            classes[name].relative_to(root).as_posix() + "/"
            for label, name in enumerate(class_names)
            if label not in labels_present
        ]
    if empty:
        noun = "folder holds" if len(empty) == 1 else "folders hold"
        raise DataError(
            source,
            f"class {noun} no images: {', '.join(empty)}",
            hint="add images to each class folder or delete the empty ones",
        )


def _sub_folders(folder: Path, root: Path, bad: list[tuple[Path, str]]) -> dict[str, Path]:
    return {path.name: path for path, is_folder in _scan(folder, root, bad) if is_folder}


def _walk_files(folder: Path, root: Path, bad: list[tuple[Path, str]]) -> list[Path]:
    found = []
    for path, is_folder in _scan(folder, root, bad):
        found += _walk_files(path, root, bad) if is_folder else [path]
    return found


def _scan(folder: Path, root: Path, bad: list[tuple[Path, str]]) -> list[tuple[Path, bool]]:
    """The usable entries of `folder` as sorted (path, is_folder); bad symlinks go to `bad`."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as exc:
        bad.append((folder, f"cannot list folder ({exc.strerror})"))
        return []
    usable = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name in _IGNORED_NAMES:
            continue
        path = Path(entry.path)
        if entry.is_symlink() and (problem := _symlink_problem(path, root)):
            bad.append((path, problem))
        elif entry.is_dir():
            usable.append((path, True))
        elif entry.is_file():
            usable.append((path, False))
    return usable


def _symlink_problem(link: Path, root: Path) -> str | None:
    try:
        target = os.path.realpath(link, strict=True)
    except OSError as exc:
        return "symlink loop" if exc.errno == errno.ELOOP else "broken symlink"
    if not Path(target).is_relative_to(os.path.realpath(root)):
        return "symlink leads outside the dataset folder"
    # A link back to a folder it sits in would make the walk go round forever.
    folders_above = link.relative_to(root).parents
    if any(target == os.path.realpath(root / folder) for folder in folders_above):
        return "symlink loop"
    return None


def _decode_folder_cached(root: Path, listing: _FolderListing, input_shape: _Shape, cache_dir: Path) -> _Decoded:
    every_file = [file for files in listing.files.values() for file in files]
    key = _cache_key(listing, [_content_digest(file.path) for file in every_file], input_shape)
    name = hashlib.sha256(f"{os.path.realpath(root)}:{input_shape}".encode()).hexdigest()[:32]
    cache_path = cache_dir / f"folder-{name}.npz"
    if (cached := _read_cache(cache_path, key)) is not None:
        return cached
    decoded = _decode_listing(listing, input_shape)
    _write_cache(cache_path, key, decoded)
    return decoded


def _content_digest(path: Path) -> str:
    try:
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError as exc:
        # Decoding reports the file; the key must still change once it becomes readable.
        return f"unreadable: {exc.strerror}"


def _cache_key(listing: _FolderListing, digests: list[str], input_shape: _Shape) -> str:
    files = [[split, file.relative, file.label] for split, split_files in listing.files.items() for file in split_files]
    # Pillow's version is part of the key: its resizing has changed between releases.
    described = [CACHE_FORMAT_VERSION, PIL.__version__, input_shape, listing.class_names, files, digests]
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()


def _decode_listing(listing: _FolderListing, input_shape: _Shape) -> _Decoded:
    splits = {}
    bad = []
    for split, files in listing.files.items():
        images, labels = [], []
        for file in files:
            try:
                data = file.path.read_bytes()
            except OSError as exc:
                bad.append((file.relative, f"cannot read file ({exc.strerror})"))
                continue
            try:
                images.append(_decode_image(data, input_shape))
            except _UnusableImage as exc:
                bad.append((file.relative, exc.reason))
                continue
            labels.append(file.label)
        stacked = np.stack(images) if images else np.empty((0, *input_shape), dtype=np.uint8)
        splits[split] = (stacked, np.array(labels, dtype=np.int32))
    return _Decoded(splits, bad)


def _read_cache(path: Path, key: str) -> _Decoded | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            names = stored["splits"].tolist()
            splits = {split: (stored[f"x_{split}"], stored[f"y_{split}"]) for split in names}
            paths, reasons = stored["bad_paths"].tolist(), stored["bad_reasons"].tolist()
            bad = list(zip(paths, reasons, strict=True))
            return _Decoded(splits, bad)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None  # a damaged cache is rebuilt, never trusted


def _write_cache(path: Path, key: str, decoded: _Decoded) -> None:
    """Write atomically (temporary file, then rename) so no reader sees a half-written cache."""
    arrays = {
        "key": np.array(key),
        "splits": np.array(list(decoded.splits)),
        "bad_paths": np.array([path for path, _ in decoded.bad], dtype=str),
        "bad_reasons": np.array([reason for _, reason in decoded.bad], dtype=str),
    }
    for split, (images, labels) in decoded.splits.items():
        arrays[f"x_{split}"] = images
        arrays[f"y_{split}"] = labels
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    except OSError:
        return  # an unwritable cache only costs the next run a decode
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    except OSError:
        pass  # as above: the data is decoded, only the cache is lost
    finally:
        Path(temporary).unlink(missing_ok=True)


# --- .npz arrays --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ArrayHeader:
    shape: tuple[int, ...]
    dtype: np.dtype


_NPZ_HINT = (
    "save the arrays with np.savez(path, x_train=images, y_train=labels, x_test=..., y_test=...): "
    "images uint8 (N, H, W) or (N, H, W, C), labels integers (N,)"
)


def _load_npz(source: str, path: Path, input_shape: _Shape, *, val_split: float, seed: int) -> Dataset:
    headers = _read_npz_headers(source, path)
    pairs = _check_npz_layout(source, headers)
    wanted = [name for pair in pairs.values() for name in pair]
    if "class_names" in headers:
        wanted.append("class_names")
    arrays = _read_npz_arrays(source, path, wanted)
    splits = {
        split: (
            _images_to_uint8(source, x_name, arrays[x_name]),
            _labels(source, y_name, arrays[y_name]),
        )
        for split, (x_name, y_name) in pairs.items()
    }
    class_names = _npz_class_names(source, arrays.get("class_names"), splits)
    fitted = {split: (_fit_images(x, input_shape), y) for split, (x, y) in splits.items()}
    return _assemble(
        source,
        class_names,
        fitted["train"],
        fitted.get("val"),
        fitted.get("test"),
        val_split=val_split,
        seed=seed,
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
    for split in _SPLITS:
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
        if not np.isfinite(images).all():
            raise DataError(source, f"array `{name}` holds NaN or infinite values")
        if images.min() < 0:
            raise DataError(
                source,
                f"array `{name}` holds negative values (min {images.min():g})",
                hint="store images as uint8 0..255 or floats in 0..1, not normalized",
            )
        return _float_to_uint8(images)
    if images.min() < 0 or images.max() > 255:
        raise DataError(
            source,
            f"array `{name}` holds values from {images.min()} to {images.max()}; integer images must lie in 0..255",
            hint="store images as uint8 0..255 or floats in 0..1",
        )
    return images.astype(np.uint8)


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


def _npz_class_names(source: str, stored: np.ndarray | None, splits: dict[str, _Split]) -> tuple[str, ...]:
    largest = max(int(labels.max()) for _, labels in splits.values())
    if stored is None:
        return tuple(str(label) for label in range(largest + 1))
    if largest >= len(stored):
        raise DataError(
            source,
            f"label {largest} has no name: `class_names` holds {len(stored)} names",
            hint="labels must be indices into `class_names`",
        )
    return tuple(str(name) for name in stored)
