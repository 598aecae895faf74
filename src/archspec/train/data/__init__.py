"""Training data for `cnn-arch train --data`: `load_dataset` turns what the user passed into
uint8 image arrays already fitted to the spec's `input HxWxC` (whether the model's last layer fits
the classes found is `outputs.check_fits`).

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
- `hf:NAME[:CONFIG]`: a Hugging Face `datasets` dataset (the `hf` extra), from the hub, its cache or a
  local folder; its own splits, image column and class names (`hub`).

Without a `val` split, `val_split` of the training images is held out, stratified and seeded. Every
image is resized to the spec's height and width with bilinear filtering; RGBA loses its alpha unless
the spec asks for 4 channels; 16- and 32-bit integer images are scaled to 8 bits by the range their
file declares (0..65535, 0..2**32-1); float arrays in 0..1 are scaled to 0..255.

Which files count: hidden files (`.DS_Store`, `._photo.jpg`), `Thumbs.db`, `desktop.ini` and
`__MACOSX` are ignored, as are files directly in the dataset folder (a README). Every other file in
a class folder is meant to be an image. One that Pillow can decode is used whatever its name (a JPEG
saved as `.png` is common and harmless); one it cannot is reported, whatever its name: a `notes.txt`
in a class folder is as much a mistake as a `.png` that holds text. `IMAGE_EXTENSIONS` only serves
to spot images put directly in the dataset folder instead of in class folders. Symlinks are
followed inside the dataset folder only, and symlink loops are reported.

Bad data is found before training starts: a folder's empty class folders and every bad file come in
one error; `skip_bad_files=True` trains without the bad files and lists them in `Dataset.skipped`.
Every class needs training images, and a validation or test label must occur in training. A dataset
whose decoded images would not fit in the host's memory is refused before anything big is allocated.

Modules: `dataset` (the Dataset, splits, digits), `images` (decoding), `listing` and `folders`
(folders and their cache), `npz`, `memory` (the host's available memory).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.errors import DataError, UserError

if TYPE_CHECKING:
    from archspec.train.data.dataset import Dataset
    from archspec.train.data.images import MAX_IMAGE_PIXELS, read_image
    from archspec.train.data.listing import IMAGE_EXTENSIONS
    from archspec.train.data.memory import available_host_memory

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "Dataset",
    "available_host_memory",
    "load_dataset",
    "read_image",
]

# Imported on first use, not with the package: a decoding worker process imports
# `archspec.train.data.images`, and with it this package, and should pay for numpy and Pillow only.
_LAZY = {
    "Dataset": "dataset",
    "MAX_IMAGE_PIXELS": "images",
    "read_image": "images",
    "IMAGE_EXTENSIONS": "listing",
    "available_host_memory": "memory",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_ACCEPTED_SOURCES = (
    "pass `digits` (the built-in 8x8 digits), a folder with one sub-folder of images per class, "
    "a .npz file with `x_train` and `y_train` arrays, or `hf:NAME` (a Hugging Face hub dataset)"
)


def load_dataset(
    source: str,
    input_shape: tuple[int, int, int],
    *,
    val_split: float = 0.1,
    seed: int = 0,
    skip_bad_files: bool = False,
    cache_dir: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    test_split: float = 0.0,
) -> Dataset:
    """Load `source` (`digits`, a class folder or a .npz file) fitted to `input_shape` (H, W, C).

    Args:
        val_split: fraction of the training images held out for validation when the source has
            no validation split; 0 (or too few images to hold any out) gives no validation set.
        seed: picks which images are held out for validation and testing.
        skip_bad_files: train without unreadable images instead of reporting them as an error.
        cache_dir: where decoded folders are cached; default `$CNN_ARCH_CACHE_DIR/datasets`, else
            `$XDG_CACHE_HOME/cnn-arch/datasets`, else `~/.cache/cnn-arch/datasets`.
        progress: called as `progress(stage, done, total)` while a folder's files are read for its
            cache key (`stage` "hashing") and decoded ("decoding"), for a progress bar.
        test_split: fraction of the training images held out for testing when the source has no test
            split (before the validation images are held out of the rest).

    Raises:
        DataError: the data is missing, unreadable, inconsistent, cannot fit `input_shape`, or
            would not fit in the host's memory once decoded.
        UserError: `val_split` is out of range.
    """
    from archspec.train.data.dataset import check_input_shape
    from archspec.train.data.memory import SMALLER_HINT

    check_input_shape(source, input_shape)
    if not 0 <= val_split < 1:
        raise UserError(f"`--val-split` (={val_split}) must be at least 0 and below 1")
    try:
        return _load(
            source,
            input_shape,
            val_split=val_split,
            test_split=test_split,
            seed=seed,
            skip_bad_files=skip_bad_files,
            cache_dir=cache_dir,
            progress=progress,
        )
    except MemoryError:
        # The size check comes first, but the host may not say what it has, or others may take it meanwhile.
        raise DataError(source, "ran out of memory while loading the dataset", hint=SMALLER_HINT) from None


def _load(
    source: str,
    input_shape: tuple[int, int, int],
    *,
    val_split: float,
    test_split: float,
    seed: int,
    skip_bad_files: bool,
    cache_dir: str | Path | None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Dataset:
    from archspec.train.data.dataset import load_digits
    from archspec.train.data.folders import default_cache_dir, load_folder
    from archspec.train.data.hub import HUB_PREFIX, load_hub
    from archspec.train.data.npz import load_npz

    if source == "digits":
        return load_digits(input_shape, val_split=val_split, seed=seed)
    if source.startswith(HUB_PREFIX):
        # `datasets` (pyarrow, pandas: slow to import, an optional extra) is imported only here, by load_hub.
        return load_hub(
            source, input_shape, val_split=val_split, test_split=test_split, seed=seed, skip_bad_files=skip_bad_files
        )
    path = Path(source).expanduser()
    if path.is_dir():
        cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        return load_folder(
            source,
            path,
            input_shape,
            val_split=val_split,
            test_split=test_split,
            seed=seed,
            skip_bad_files=skip_bad_files,
            cache_dir=cache,
            progress=progress,
        )
    if path.is_file() and path.suffix.lower() == ".npz":
        return load_npz(source, path, input_shape, val_split=val_split, test_split=test_split, seed=seed)
    if path.exists():
        raise DataError(source, "is neither a folder nor a .npz file", hint=_ACCEPTED_SOURCES)
    raise DataError(source, "no such file or folder, and not a built-in dataset", hint=_ACCEPTED_SOURCES)
