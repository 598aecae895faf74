"""The `Dataset` every source produces, how it is assembled from splits (the stratified validation
split, the fingerprint), and the built-in `digits` source."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from archspec.errors import DataError
from archspec.train.data.images import MODE_FOR_CHANNELS, Shape, fit_images
from archspec.train.data.memory import check_decoded_size

DIGITS_TEST_FRACTION = 0.2
# Independent of the user's seed so that every run is tested on the same digits.
DIGITS_TEST_SEED = 0
DIGITS_COUNT = 1797  # in scikit-learn's copy, checked against memory before it is loaded

TEST_STREAM = 1  # the held-out test split's random stream beside the seed (the validation split's is the seed alone)

Split = tuple[np.ndarray, np.ndarray]  # (images, labels)


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
    held_out: tuple[str, ...] = ()  # the splits ("val", "test") held out of the training images here

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def classes_without_images(class_names: tuple[str, ...], labels: np.ndarray) -> list[str]:
    """The names of the classes no label of `labels` is."""
    present = np.bincount(labels, minlength=len(class_names))
    return [name for name, count in zip(class_names, present, strict=True) if count == 0]


def check_input_shape(source: str, input_shape: Shape) -> None:
    height, width, channels = input_shape
    where = f"`input {height}x{width}x{channels}`"
    if height < 1 or width < 1:
        raise DataError(source, f"cannot resize images to {where}: height and width must be at least 1")
    if channels not in MODE_FOR_CHANNELS:
        raise DataError(
            source,
            f"cannot convert images to {where}: {channels} channels is not an image format",
            hint="use 1 channel (grayscale), 3 (RGB) or 4 (RGBA) in the spec's `input` line",
        )


def assemble(
    source: str,
    class_names: tuple[str, ...],
    train: Split,
    val: Split | None,
    test: Split | None,
    *,
    val_split: float,
    seed: int,
    test_split: float = 0.0,
    skipped: tuple[str, ...] = (),
) -> Dataset:
    """The Dataset of these splits, with `test_split` of `train` held out when there is no `test` and
    `val_split` of the rest when there is no `val` (see `hold_out`)."""
    if len(class_names) < 2:
        raise DataError(
            source,
            f"found only one class ({', '.join(class_names)}); a classifier needs at least two",
            hint="add the images of the other classes",
        )
    keep, held_val, held_test = hold_out(
        train[1], val_split=val_split if val is None else 0, test_split=test_split if test is None else 0, seed=seed
    )
    if held_val is not None:
        val = take(train, held_val)
    if held_test is not None:
        test = take(train, held_test)
    train = take(train, keep) if len(keep) != len(train[1]) else train
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
        held_out=tuple(name for name, held in (("val", held_val), ("test", held_test)) if held is not None),
    )


def take(split: Split, indices: np.ndarray) -> Split:
    return split[0][indices], split[1][indices]


def hold_out(
    labels: np.ndarray, *, val_split: float, test_split: float, seed: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Indices (train, validation, test) into a training split's `labels`: first `test_split` of the
    images is held out for testing, then `val_split` of the rest for validation, each stratified and
    seeded (a 0 share, or too few images, holds out none: None). The test images are drawn from their
    own random stream, so the validation images of a seed do not depend on whether a test split is
    held out."""
    keep = np.arange(len(labels))
    test = val = None
    if test_split > 0:
        kept, held = stratified_split(labels, test_split, np.random.default_rng([seed, TEST_STREAM]))
        if held.size:
            keep, test = kept, held
    if val_split > 0:
        kept, held = stratified_split(labels[keep], val_split, np.random.default_rng(seed))
        if held.size:
            keep, val = keep[kept], keep[held]
    return keep, val, test


def stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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


def _fingerprint(class_names: tuple[str, ...], splits: dict[str, Split | None]) -> str:
    digest = hashlib.sha256(json.dumps(class_names).encode())
    for name, split in splits.items():
        if split is None:
            continue
        for array in split:
            digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
            digest.update(np.ascontiguousarray(array))
    return digest.hexdigest()


def load_digits(input_shape: Shape, *, val_split: float, seed: int) -> Dataset:
    """scikit-learn's 8x8 digits scaled to 0..255 and fitted to `input_shape`, with a fixed test split."""
    check_decoded_size("digits", DIGITS_COUNT, input_shape)
    from sklearn.datasets import load_digits  # heavy import, only paid for this source

    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[..., np.newaxis]
    labels = digits.target.astype(np.int32)
    train_indices, test_indices = stratified_split(
        labels, DIGITS_TEST_FRACTION, np.random.default_rng(DIGITS_TEST_SEED)
    )
    # Split the 8x8 originals, then fit: the fitted images are never copied by the split.
    train = (fit_images(images[train_indices], input_shape), labels[train_indices])
    test = (fit_images(images[test_indices], input_shape), labels[test_indices])
    class_names = tuple(str(name) for name in digits.target_names)
    return assemble("digits", class_names, train, None, test, val_split=val_split, seed=seed)
