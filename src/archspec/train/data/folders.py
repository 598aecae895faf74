"""A folder of class folders as a Dataset: every file decoded once (in worker processes, one per usable
CPU) and cached as an .npz keyed by the files' contents, and one report of every problem the folder has."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL

from archspec.errors import DataError
from archspec.train.data import workers as worker_processes
from archspec.train.data.dataset import Dataset, Split, assemble, classes_without_images
from archspec.train.data.images import Shape, decode_files, unreadable_digest
from archspec.train.data.listing import FolderListing, list_folder
from archspec.train.data.memory import check_decoded_size
from archspec.train.data.workers import usable_cpus

# Bump when decoding changes, so that old caches are not trusted.
CACHE_FORMAT_VERSION = 2
REPORT_LIMIT = 20
# Files per task given to a worker: big enough that sending it costs nothing next to decoding it,
# small enough for a smooth progress bar and for the workers to finish together.
CHUNK_FILES = 64
# Below this many files, decoding in this process is quicker than starting worker processes (each
# imports numpy and Pillow: about half a second on a loaded 2-core machine).
MIN_FILES_FOR_WORKERS = 400

# `progress(stage, done, total)`: `stage` is "hashing" (reading every file for the cache key) or
# "decoding"; called with 0 first, then as files are done, and last with `done == total`.
Progress = Callable[[str, int, int], None]

_EMPTY_HINT = "add images to each class folder or delete the empty ones"
_SKIP_HINT = "fix or delete them, or pass --skip-bad-files to train without them"
_BOTH_HINT = f"{_EMPTY_HINT}; fix or delete the files, or pass --skip-bad-files to train without them"


@dataclass(frozen=True)
class _Decoded:
    splits: dict[str, Split]
    bad: list[tuple[str, str]]


def default_cache_dir() -> Path:
    if override := os.environ.get("CNN_ARCH_CACHE_DIR"):
        return Path(override).expanduser() / "datasets"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "cnn-arch" / "datasets"


def load_folder(
    source: str,
    root: Path,
    input_shape: Shape,
    *,
    val_split: float,
    seed: int,
    skip_bad_files: bool,
    cache_dir: Path,
    test_split: float = 0.0,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Dataset:
    """`workers`: decoding processes (default: one per usable CPU; 1 decodes in this process)."""
    listing = list_folder(source, root)
    check_decoded_size(source, listing.file_count, input_shape)
    workers = usable_cpus() if workers is None else workers
    decoded = _decode_folder_cached(source, root, listing, input_shape, cache_dir, progress, workers)
    bad = sorted(listing.bad + decoded.bad)
    if listing.empty or (bad and not skip_bad_files):
        raise _folder_report(source, listing.empty, [] if skip_bad_files else bad)
    train = decoded.splits["train"]
    _check_every_class_left(source, listing.class_names, train[1])
    # A split can only come out empty when every one of its files was skipped.
    val, test = (decoded.splits.get(name) for name in ("val", "test"))
    return assemble(
        source,
        listing.class_names,
        train,
        val if val is not None and len(val[1]) else None,
        test if test is not None and len(test[1]) else None,
        val_split=val_split,
        seed=seed,
        test_split=test_split,
        skipped=tuple(f"{path}: {reason}" for path, reason in bad),
    )


def _folder_report(source: str, empty: list[str], bad: list[tuple[str, str]]) -> DataError:
    """One error for every problem found: the empty class folders, then the files that cannot be used."""
    parts = []
    if empty:
        noun = "folder holds" if len(empty) == 1 else "folders hold"
        parts.append(f"class {noun} no images: {', '.join(empty)}")
    if bad:
        lines = [f"  {path}: {reason}" for path, reason in bad[:REPORT_LIMIT]]
        if len(bad) > REPORT_LIMIT:
            lines.append(f"  ... and {len(bad) - REPORT_LIMIT} more")
        count = "1 file" if len(bad) == 1 else f"{len(bad)} files"
        parts.append(f"{count} cannot be used:\n" + "\n".join(lines))
    hint = _BOTH_HINT if empty and bad else _EMPTY_HINT if empty else _SKIP_HINT
    return DataError(source, "\n".join(parts), hint=hint)


def _check_every_class_left(source: str, class_names: tuple[str, ...], labels: np.ndarray) -> None:
    if emptied := classes_without_images(class_names, labels):
        raise DataError(
            source,
            f"no usable training images left in class {', '.join(f'`{n}`' for n in emptied)} after skipping bad files",
            hint="fix the skipped files or add images to the class",
        )


def _decode_folder_cached(
    source: str,
    root: Path,
    listing: FolderListing,
    input_shape: Shape,
    cache_dir: Path,
    progress: Progress | None,
    workers: int,
) -> _Decoded:
    name = hashlib.sha256(f"{os.path.realpath(root)}:{input_shape}".encode()).hexdigest()[:32]
    cache_path = cache_dir / f"folder-{name}.npz"
    with worker_processes.pool(_worker_count(listing, workers), source) as pool:
        if cache_path.exists():
            # Probably decoded before: the files' digests say whether the cache still holds.
            paths = [file.path for files in listing.files.values() for file in files]
            key = _cache_key(listing, _content_digests(paths, progress), input_shape)
            if (cached := _read_cache(cache_path, key)) is not None:
                return cached
            decoded, _ = _decode_listing(listing, input_shape, progress, pool)
        else:
            # Decoding is certain: the files are hashed as they are decoded, from the same bytes,
            # in the workers (one reading of each file, and no pass in this process alone).
            decoded, digests = _decode_listing(listing, input_shape, progress, pool)
            key = _cache_key(listing, digests, input_shape)
    _write_cache(cache_path, key, decoded)
    return decoded


def _worker_count(listing: FolderListing, workers: int) -> int:
    """`workers`, but one (this process) for a folder too small to repay starting processes, and no
    more than there are chunks."""
    if listing.file_count < MIN_FILES_FOR_WORKERS:
        return 1
    return min(workers, len(_chunks(listing)))


def _chunks(listing: FolderListing) -> list:
    return [
        (split, files[start : start + CHUNK_FILES])
        for split, files in listing.files.items()
        for start in range(0, len(files), CHUNK_FILES)
    ]


def _content_digests(paths: list[Path], progress: Progress | None) -> list[str]:
    digests = []
    _report(progress, "hashing", 0, len(paths))
    for path in paths:
        digests.append(_content_digest(path))
        if len(digests) % CHUNK_FILES == 0 or len(digests) == len(paths):
            _report(progress, "hashing", len(digests), len(paths))
    return digests


def _report(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None and total:
        progress(stage, done, total)


def _content_digest(path: Path) -> str:
    try:
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError as exc:
        return unreadable_digest(exc)


def _cache_key(listing: FolderListing, digests: list[str], input_shape: Shape) -> str:
    files = [[split, file.relative, file.label] for split, split_files in listing.files.items() for file in split_files]
    # Pillow's version is part of the key: its resizing has changed between releases.
    described = [CACHE_FORMAT_VERSION, PIL.__version__, input_shape, listing.class_names, files, digests]
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()


def _decode_listing(
    listing: FolderListing, input_shape: Shape, progress: Progress | None, pool: worker_processes.Pool
) -> tuple[_Decoded, list[str]]:
    """Decode every file in chunks, in the pool's processes; the arrays, their order and the bad-file
    report are the same whatever the number of workers. Also returns each file's content digest, in
    the listing's order."""
    total = listing.file_count
    chunks = _chunks(listing)
    # Filled in place: a list of chunks and np.concatenate would hold the dataset twice.
    images = {split: np.empty((len(files), *input_shape), dtype=np.uint8) for split, files in listing.files.items()}
    labels: dict[str, list[int]] = {split: [] for split in listing.files}
    bad = []
    digests: list[str] = []
    done = 0
    _report(progress, "decoding", 0, total)
    tasks = (([str(file.path) for file in files], input_shape) for _, files in chunks)
    with closing(pool.map_in_order(decode_files, tasks)) as results:
        for (split, files), (decoded, problems, chunk_digests) in zip(chunks, results, strict=True):
            unusable = dict(problems)
            filled = len(labels[split])
            images[split][filled : filled + len(decoded)] = decoded
            labels[split] += [file.label for index, file in enumerate(files) if index not in unusable]
            bad += [(files[index].relative, reason) for index, reason in problems]
            digests += chunk_digests
            done += len(files)
            _report(progress, "decoding", done, total)
    splits = {split: (images[split][: len(labels[split])], np.array(labels[split], dtype=np.int32)) for split in images}
    return _Decoded(splits, bad), digests


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
