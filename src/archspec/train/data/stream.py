"""Training data that is read image by image instead of held in memory (`--data-memory`): the choice
between the two, the random-access sources, and their up-front check and fingerprint.

A streamable source is any picklable object with

    __len__() -> int
    __getitem__(i) -> (uint8 array H x W x C already fitted to the spec's input, int label)

`FolderSource` is the one for class folders (decoded with `images.decode_image`, exactly as the
in-memory path decodes). Another kind (a Hugging Face dataset, say) plugs in by building a
`Streamed` from such sources with `streamed_from_sources`: it then gets the same split, fingerprint
and Grain pipeline (`data.pipeline`) as a folder.

Everything the in-memory path guarantees holds: the same bad-file report before training (every
file is decoded once up front, in Grain's worker threads), the same train/val split, and the same
fingerprint (a run started in memory can be resumed streaming, and back).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from archspec.errors import DataError, UserError
from archspec.summary import human_bytes
from archspec.train.data.check_cache import CheckCache
from archspec.train.data.dataset import hold_out
from archspec.train.data.images import Shape, UnusableImage, decode_image
from archspec.train.data.listing import FolderListing

_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?)(b?)\s*", re.IGNORECASE)
SIZE_HINT = "give a size such as 2GB, 512MB, 1.5GiB or 0 (0 streams every dataset from disk)"


class Source(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]: ...


def parse_memory(text: str) -> int:
    """Bytes of a size like `2GB`, `512MiB`, `1.5g` or `1000000`; raise UserError when it is not one."""
    match = _SIZE.fullmatch(text)
    if match is None or (match.group(3) and not match.group(2)):
        raise UserError(f"`--data-memory` must be an amount of memory, got `{text}`", hint=SIZE_HINT)
    number, prefix, binary, _ = match.groups()
    unit = 1024 ** "bkmgt".index(prefix.lower()) if binary else _UNITS[prefix.lower()]
    return int(float(number) * unit)


@dataclass(frozen=True)
class Choice:
    """Whether to stream, and the one line the run header prints about it."""

    stream: bool
    line: str


def choose(count: int, input_shape: Shape, budget: int, *, given: bool, streamable: bool = True) -> Choice:
    """Stream when `count` decoded images of `input_shape` exceed `budget` bytes (and the source streams)."""
    decoded = count * int(np.prod(input_shape))
    where = "--data-memory" if given else "default"
    if decoded > budget and not streamable:
        return Choice(
            False,
            f"data: {count:,} images in memory (decoded {human_bytes(decoded)} > budget {human_bytes(budget)}, "
            f"{where}; only folders, .npz files and hf: datasets are streamed)",
        )
    if decoded > budget:
        return Choice(
            True,
            f"data: streaming {count:,} images from disk (decoded {human_bytes(decoded)} > budget "
            f"{human_bytes(budget)}, {where})",
        )
    return Choice(
        False,
        f"data: {count:,} images in memory (decoded {human_bytes(decoded)} <= budget {human_bytes(budget)}, {where})",
    )


def folder_listing(source: str, input_shape: Shape) -> FolderListing | None:
    """The listing of `source` when it is a dataset folder (None for other sources)."""
    from archspec.train.data.dataset import check_input_shape
    from archspec.train.data.listing import list_folder

    path = Path(source).expanduser()
    if source == "digits" or not path.is_dir():
        return None
    check_input_shape(source, input_shape)
    return list_folder(source, path)


@dataclass(frozen=True, eq=False)
class FolderSource:
    """Files of a class folder, decoded on demand to the spec's input; picklable (paths, labels)."""

    paths: tuple[str, ...]
    shown: tuple[str, ...]  # relative paths, as the bad-file report names them
    labels: np.ndarray
    input_shape: Shape

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        pixels = self.decode(index)
        if isinstance(pixels, str):
            # Checked before training started: the file changed since.
            raise DataError(self.shown[index], f"cannot be used any more: {pixels} (it was fine when training started)")
        return pixels, int(self.labels[index])

    def decode(self, index: int) -> np.ndarray | str:
        """The image's pixels, or why it cannot be used (the words of the in-memory path's report)."""
        try:
            data = Path(self.paths[index]).read_bytes()
        except OSError as exc:
            return f"cannot read file ({exc.strerror})"
        try:
            return decode_image(data, self.input_shape)
        except UnusableImage as exc:
            return exc.reason

    def subset(self, indices: np.ndarray) -> FolderSource:
        return FolderSource(
            tuple(self.paths[i] for i in indices),
            tuple(self.shown[i] for i in indices),
            self.labels[indices],
            self.input_shape,
        )


@dataclass(frozen=True, eq=False)
class Streamed:
    """A dataset read from its sources while training: what `Dataset` says, without the pixels.

    `x_*` are None (nothing is held); `y_*` are the labels of each split, `sources` its images.
    """

    sources: dict[str, Source]  # "train", and "val" / "test" where present
    y_train: np.ndarray
    y_val: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...]
    fingerprint: str
    source: str
    skipped: tuple[str, ...] = ()
    input_shape: Shape = (0, 0, 0)
    held_out: tuple[str, ...] = ()  # as `Dataset.held_out`
    x_train: None = field(default=None, init=False)
    x_val: None = field(default=None, init=False)
    x_test: None = field(default=None, init=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def stream_folder(
    source: str,
    listing: FolderListing,
    input_shape: Shape,
    *,
    val_split: float,
    seed: int,
    skip_bad_files: bool,
    progress=None,
    test_split: float = 0.0,
) -> Streamed:
    """The folder of `listing` as a Streamed dataset, every file checked (and the bad ones reported)
    before training starts, exactly as `folders.load_folder` reports them."""
    from archspec.train.data import folders

    root_sources = {
        split: FolderSource(
            tuple(str(file.path) for file in files),
            tuple(file.relative for file in files),
            np.array([file.label for file in files], dtype=np.int32),
            input_shape,
        )
        for split, files in listing.files.items()
    }
    cache = CheckCache(
        Path(source).expanduser(),
        listing,
        input_shape,
        val_split=val_split,
        test_split=test_split,
        seed=seed,
        progress=progress,
    )
    split = {"class_names": listing.class_names, "val_split": val_split, "test_split": test_split, "seed": seed}
    if (known := cache.read()) is not None:
        decoded_bad, fingerprint = known
    else:
        streamed, decoded_bad, _ = _check(source, root_sources, **split, progress=progress)
        fingerprint = None if decoded_bad else streamed.fingerprint
    bad = sorted(listing.bad + decoded_bad)
    if listing.empty or (bad and not skip_bad_files):
        cache.write(decoded_bad, fingerprint)
        raise folders._folder_report(source, listing.empty, [] if skip_bad_files else bad)
    if bad:
        # The split is made among the usable files, so it changes: check and fingerprint again.
        unusable = {path for path, _ in bad}
        root_sources = {
            split: src.subset(np.array([i for i, name in enumerate(src.shown) if name not in unusable], dtype=np.int64))
            for split, src in root_sources.items()
        }
        folders._check_every_class_left(source, listing.class_names, root_sources["train"].labels)
    if bad or known is not None:
        streamed, _, _ = _check(source, root_sources, **split, fingerprint=fingerprint)
    cache.write(decoded_bad, streamed.fingerprint)
    return replace(streamed, skipped=tuple(f"{path}: {reason}" for path, reason in bad))


def stream_hub(hub, *, skip_bad_files: bool, progress=None) -> Streamed:
    """A hub dataset's splits (validation already held out by `open_hub`), every image checked before
    training starts and reported as `hub.load_hub` reports it; the fingerprint is the hub's own, as in memory."""
    from archspec.train.data import hub as hubs

    streamed, bad, bad_at = _check(hub.source, hub.sources, hub.class_names, val_split=0, seed=0, progress=progress)
    if bad and not skip_bad_files:
        raise hubs.bad_report(hub.source, bad)
    if bad:
        # With no validation split made here, the checked splits are the hub's own sources.
        sources = {
            name: src.subset(np.array([i for i in range(len(src)) if i not in bad_at.get(name, ())], dtype=np.int64))
            for name, src in hub.sources.items()
        }
        hubs.check_every_class_trained(hub.source, hub.class_names, sources["train"].labels)
        streamed, _, _ = _check(hub.source, sources, hub.class_names, val_split=0, seed=0)
        streamed = replace(streamed, skipped=tuple(f"{where}: {reason}" for where, reason in bad))
    return replace(streamed, fingerprint=hub.fingerprint, held_out=hub.held_out)


def streamed_from_sources(
    source: str, sources: dict[str, Source], class_names: tuple[str, ...], *, val_split: float, seed: int
) -> Streamed:
    """A Streamed dataset of other sources (`train` and optionally `val`, `test`), each image read
    once to fingerprint it. A source without `labels` (an array of its labels) is read for them too."""
    labelled = {name: _Labelled(src) for name, src in sources.items()}
    return _check(source, labelled, class_names, val_split=val_split, seed=seed, strict=True)[0]


class _Labelled:
    """A source with its labels known up front (read once when it does not say them)."""

    def __init__(self, source: Source) -> None:
        self.source = source
        labels = getattr(source, "labels", None)
        if labels is None:
            labels = [source[i][1] for i in range(len(source))]
        self.labels = np.asarray(labels, dtype=np.int32)
        self.input_shape = getattr(source, "input_shape", None)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        return self.source[index]

    def subset(self, indices: np.ndarray) -> Subset:
        return Subset(self, indices)


@dataclass(frozen=True, eq=False)
class Subset:
    """Images `indices` of `source` (a split of it); picklable when `source` is."""

    source: _Labelled
    indices: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        return self.source.labels[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.source[int(self.indices[index])]


def _check(
    source, root_sources, class_names, *, val_split, seed, test_split=0.0, strict=False, progress=None, fingerprint=None
) -> tuple[Streamed, list, dict[str, set[int]]]:
    """Split as `dataset.assemble` does, decode every image once in the split's order to find the bad
    ones and compute `dataset._fingerprint` without holding the images; (dataset, bad files as
    (where, reason), and each split's positions of them). Given the `fingerprint` (known from an
    earlier check of the same files), nothing is read."""
    train = root_sources["train"]
    splits = {name: src for name, src in root_sources.items() if name != "train" and len(src)}
    keep, held_val, held_test = hold_out(
        train.labels,
        val_split=0 if "val" in splits else val_split,
        test_split=0 if "test" in splits else test_split,
        seed=seed,
    )
    if held_val is not None:
        splits["val"] = train.subset(held_val)
    if held_test is not None:
        splits["test"] = train.subset(held_test)
    if len(keep) != len(train):
        train = train.subset(keep)
    ordered = {"train": train, **{name: splits[name] for name in ("val", "test") if name in splits}}
    held = tuple(name for name, indices in (("val", held_val), ("test", held_test)) if indices is not None)
    if fingerprint is not None:
        return _streamed(source, ordered, class_names, fingerprint, train, held), [], {}
    digest = hashlib.sha256(json.dumps(class_names).encode())
    bad: list[tuple[str, str]] = []
    bad_at: dict[str, set[int]] = {}
    total, done = sum(len(split) for split in ordered.values()), 0
    for name, split in ordered.items():
        shape = (len(split), *_shape_of(split))
        digest.update(f"{name}:{np.dtype(np.uint8).str}:{shape}".encode())
        for index, pixels in _decoded(split):
            done += 1
            if progress is not None and (done % 64 == 0 or done == total):
                progress("reading", done, total)  # a bar while every image is read once
            if isinstance(pixels, str):
                if strict:
                    raise DataError(source, f"image {index} of the {name} split cannot be used: {pixels}")
                bad.append((split.shown[index] if hasattr(split, "shown") else split.describe(index), pixels))
                bad_at.setdefault(name, set()).add(index)
            else:
                digest.update(np.ascontiguousarray(pixels))
        labels = np.ascontiguousarray(split.labels, dtype=np.int32)
        digest.update(f"{name}:{labels.dtype.str}:{labels.shape}".encode())
        digest.update(labels)
    return _streamed(source, ordered, class_names, digest.hexdigest(), train, held), bad, bad_at


def _streamed(source, ordered, class_names, fingerprint, train, held_out) -> Streamed:
    return Streamed(
        sources=ordered,
        y_train=ordered["train"].labels,
        y_val=ordered["val"].labels if "val" in ordered else None,
        y_test=ordered["test"].labels if "test" in ordered else None,
        class_names=class_names,
        fingerprint=fingerprint,
        source=source,
        input_shape=_shape_of(train),
        held_out=held_out,
    )


def _shape_of(split) -> Shape:
    shape = getattr(split, "input_shape", None)
    if shape is None and isinstance(split, Subset):
        shape = getattr(split.source, "input_shape", None)
    if shape is None:
        shape = tuple(split[0][0].shape)
    return tuple(shape)


def _decoded(split) -> Iterator[tuple[int, np.ndarray | str]]:
    """(index, pixels or reason) of every image of `split` in order, decoded in Grain's threads."""
    import grain

    ds = grain.MapDataset.source(_Checked(split)).to_iter_dataset(
        grain.ReadOptions(num_threads=decode_threads(), prefetch_buffer_size=256)
    )
    yield from enumerate(ds)


@dataclass(frozen=True, eq=False)
class _Checked:
    """`split`'s images as pixels or the reason they cannot be used (for the up-front check)."""

    split: object

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> np.ndarray | str:
        if isinstance(self.split, FolderSource):
            return self.split.decode(index)
        if hasattr(self.split, "checked"):  # a hub split: a bad image is reported, not raised
            return self.split.checked(index)
        return self.split[index][0]


def decode_threads() -> int:
    """Threads that decode images: Pillow lets go of the GIL while it decodes and resizes."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
