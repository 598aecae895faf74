"""`--data hf:NAME[:CONFIG]`: a Hugging Face `datasets` dataset (from the hub, its cache or a local folder)
as random-access sources of fitted images (`HubSource`, for streaming) or as an in-memory `Dataset`."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL

from archspec.errors import DataError
from archspec.train.data.dataset import Dataset, assemble, classes_without_images, hold_out
from archspec.train.data.images import Shape, UnusableImage, decode_image
from archspec.train.data.memory import check_decoded_size

HUB_PREFIX = "hf:"
# Bump when what the fingerprint covers changes, so that an old run's data no longer matches.
FINGERPRINT_VERSION = 1
REPORT_LIMIT = 20
# The hub's split names for each split training uses, in order of preference. `datasets`' own folder
# builders already say `validation` and `test` for folders named val/, dev/, eval/, testing/...
SPLIT_NAMES = {"train": ("train",), "val": ("validation", "valid", "val", "dev"), "test": ("test",)}
# Preferred when a dataset has several image or label columns (cifar100: fine_label, coarse_label).
PREFERRED_COLUMNS = {"image": ("image", "img"), "label": ("label", "labels")}
UNLABELED = -1  # ClassLabel's value for a row without a label (the test split of many hub datasets)

_EXTRA_HINT = "install it with `pip install 'cnn-arch[hf]'`"
_LOCAL_COPY_HINT = (
    "with no network, point at a local copy: a folder of class folders (`--data FOLDER`); the dataset's files "
    "(`hf download NAME --repo-type dataset --local-dir FOLDER` where there is network), an image folder or a "
    "`save_to_disk` folder, as `--data hf:FOLDER`; or a copy in the datasets cache, read with HF_DATASETS_OFFLINE=1"
)
_SKIP_HINT = "fix the dataset, or pass --skip-bad-files to train without them"


class HubSource:
    """One split of a hub dataset, random access: item `i` is (uint8 image fitted to `input_shape`, label).

    Picklable (a `datasets.Dataset` pickles as the path of its cache files), for worker processes.
    """

    def __init__(self, source: str, split: str, rows: Any, image_column: str, label_column: str, input_shape: Shape):
        import datasets

        self.source = source
        self.split = str(split)
        # Undecoded, so that each image's own bytes go through `decode_image` exactly as a folder's files do.
        self._rows = rows.select_columns([image_column, label_column]).cast_column(
            image_column, datasets.Image(decode=False)
        )
        self._image_column = image_column
        self.input_shape = input_shape
        # Through Arrow: the "numpy" format builds the column row by row (0.3 s per 2,000 rows).
        self.labels = self._rows.with_format("arrow")[label_column].to_numpy().astype(np.int32)
        self._indices = np.arange(len(self.labels))

    def subset(self, indices: np.ndarray) -> HubSource:
        """The rows at `indices` (positions in this source) as a source of their own."""
        subset = copy.copy(self)  # the same rows, not cast again
        subset._indices = self._indices[indices]
        subset.labels = self.labels[indices]
        return subset

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        try:
            return self.decode(index), int(self.labels[index])
        except UnusableImage as error:
            raise DataError(self.source, f"{self.describe(index)}: {error.reason}") from None

    def decode(self, index: int) -> np.ndarray:
        """Image `index` as uint8 (H, W, C) at `input_shape`; raise UnusableImage saying why not."""
        image = self._rows[int(self._indices[index])][self._image_column]
        data = image.get("bytes") if image else None
        if data is None:
            path = image.get("path") if image else None
            if not path:
                raise UnusableImage("the row holds no image")
            try:
                data = Path(path).read_bytes()
            except OSError as error:
                raise UnusableImage(f"cannot read file ({error.strerror})") from None
        return decode_image(data, self.input_shape)

    def checked(self, index: int) -> np.ndarray | str:
        """Image `index`'s pixels, or why it cannot be used (for the streaming path's up-front check)."""
        try:
            return self.decode(index)
        except UnusableImage as error:
            return error.reason

    def describe(self, index: int) -> str:
        """Where image `index` is, for a report: `train[41]`, and its file when the dataset names one."""
        row = int(self._indices[index])
        image = self._rows[row][self._image_column]
        path = image.get("path") if image else None
        return f"{self.split}[{row}] ({path})" if path else f"{self.split}[{row}]"


@dataclass(frozen=True)
class HubSplits:
    """A hub dataset ready to train on: its sources (validation held out if the dataset has none)."""

    source: str
    class_names: tuple[str, ...]
    train: HubSource
    val: HubSource | None
    test: HubSource | None
    fingerprint: str
    held_out: tuple[str, ...] = ()  # as `Dataset.held_out`

    @property
    def sources(self) -> dict[str, HubSource]:
        named = (("train", self.train), ("val", self.val), ("test", self.test))
        return {name: split for name, split in named if split is not None}


def parse_hub_source(source: str) -> tuple[str, str | None]:
    """`hf:NAME[:CONFIG]` as (NAME, CONFIG): the first two arguments of `datasets.load_dataset`.

    NAME is a hub id (`mnist`, `microsoft/cats_vs_dogs`) or a local folder (`hf:./pets`, `hf:~/data/pets`),
    the same as load_dataset's `path`; a folder is taken whole, so its name may hold a colon.
    """
    rest = source[len(HUB_PREFIX) :]
    if rest and Path(rest).expanduser().is_dir():
        return str(Path(rest).expanduser()), None
    name, _, config = rest.partition(":")
    if not name:
        raise DataError(
            source,
            "names no dataset",
            hint="write `hf:NAME` or `hf:NAME:CONFIG` with a Hugging Face hub dataset (`hf:mnist`), "
            "or `hf:FOLDER` with a local folder",
        )
    return name, config or None


def open_hub(source: str, input_shape: Shape, *, val_split: float, seed: int, test_split: float = 0.0) -> HubSplits:
    """Load (download or find cached) the dataset of `source` without decoding any image.

    Without a validation (test) split, `val_split` (`test_split`) of the training rows is held out,
    stratified and seeded as for every other source (`dataset.hold_out`).
    """
    datasets = _import_datasets(source)
    name, config = parse_hub_source(source)
    splits = _pick_splits(source, _load_dict(source, name, config, datasets))
    features = splits["train"].features
    image_column = _pick_column(source, features, datasets.Image, "image")
    label_column = _pick_column(source, features, datasets.ClassLabel, "label")
    class_names = tuple(features[label_column].names)
    sources = {}
    for split, rows in splits.items():
        _check_same_features(source, split, rows, image_column, label_column, features)
        hub_source = HubSource(source, rows.split or split, rows, image_column, label_column, input_shape)
        if (labelled := _labelled(source, split, hub_source)) is not None and len(labelled):
            sources[split] = labelled
    if "train" not in sources:
        raise DataError(source, f"its `{splits['train'].split}` split holds no rows", hint="pick a dataset with images")
    train, val, test = sources["train"], sources.get("val"), sources.get("test")
    asked_val = val is None and val_split > 0
    keep, held_val, held_test = hold_out(
        train.labels,
        val_split=val_split if asked_val else 0,
        test_split=0 if test is not None else test_split,
        seed=seed,
    )
    if held_val is not None:
        val = train.subset(held_val)
    if held_test is not None:
        test = train.subset(held_test)
    if len(keep) != len(train):
        train = train.subset(keep)
    described = {
        "version": FINGERPRINT_VERSION,
        "pillow": PIL.__version__,
        # A folder however it is spelled (`./pets`, `/data/pets`), as datasets' own fingerprint does.
        "name": os.path.realpath(name) if Path(name).is_dir() else name,
        "config": config,
        "columns": [image_column, label_column],
        "class_names": class_names,
        "input_shape": list(input_shape),
        # `_fingerprint` is datasets' own hash of a split: it changes with the hub revision or local files.
        "splits": {split: [rows._fingerprint, rows.num_rows] for split, rows in splits.items()},
        "held_out": [val_split, seed] if asked_val else None,
        # Only when a test split was held out: the fingerprints of earlier runs stay what they were.
        **({"held_out_test": [test_split, seed]} if held_test is not None else {}),
    }
    fingerprint = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    held = tuple(name for name, indices in (("val", held_val), ("test", held_test)) if indices is not None)
    return HubSplits(source, class_names, train, val, test, fingerprint, held)


def load_hub(
    source: str, input_shape: Shape, *, val_split: float, seed: int, skip_bad_files: bool, test_split: float = 0.0
) -> Dataset:
    """The dataset of `source` decoded into memory (for data that fits: checked against the host's memory)."""
    hub = open_hub(source, input_shape, val_split=val_split, seed=seed, test_split=test_split)
    check_decoded_size(source, sum(len(split) for split in hub.sources.values()), input_shape)
    decoded, bad = {}, []
    for name, split in hub.sources.items():
        decoded[name] = _decode_split(split, bad)
    if bad and not skip_bad_files:
        raise bad_report(source, bad)
    check_every_class_trained(source, hub.class_names, decoded["train"][1])
    dataset = assemble(
        source,
        hub.class_names,
        decoded["train"],
        decoded.get("val"),
        decoded.get("test"),
        # Validation was held out (or not) by `open_hub`, before decoding, as the streaming path does.
        val_split=0,
        seed=seed,
        skipped=tuple(f"{where}: {reason}" for where, reason in bad),
    )
    # The fingerprint of the dataset's own identity, which the streaming path can give without decoding.
    return dataclasses.replace(dataset, fingerprint=hub.fingerprint, held_out=hub.held_out)


def _decode_split(split: HubSource, bad: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    # Filled in place: a list of images and np.stack would hold the split twice.
    images = np.empty((len(split), *split.input_shape), dtype=np.uint8)
    kept = []
    for index in range(len(split)):
        try:
            images[len(kept)] = split.decode(index)
        except UnusableImage as error:
            bad.append((split.describe(index), error.reason))
            continue
        kept.append(index)
    return images[: len(kept)], split.labels[kept]


def bad_report(source: str, bad: list[tuple[str, str]]) -> DataError:
    lines = [f"  {where}: {reason}" for where, reason in bad[:REPORT_LIMIT]]
    if len(bad) > REPORT_LIMIT:
        lines.append(f"  ... and {len(bad) - REPORT_LIMIT} more")
    count = "1 image" if len(bad) == 1 else f"{len(bad)} images"
    return DataError(source, f"{count} cannot be used:\n" + "\n".join(lines), hint=_SKIP_HINT)


def _import_datasets(source: str):
    try:
        import datasets
    except ModuleNotFoundError:
        raise DataError(
            source, "hub datasets need the `datasets` package, which is not installed", hint=_EXTRA_HINT
        ) from None
    except ImportError as error:  # installed but broken (a pyarrow that does not match, say)
        raise DataError(source, f"the `datasets` package cannot be imported ({error})", hint=_EXTRA_HINT) from None
    return datasets


def _load_dict(source: str, name: str, config: str | None, datasets) -> dict[str, Any]:
    """The dataset's splits by name, from `datasets.load_dataset` (or `load_from_disk` for a saved folder)."""
    folder = Path(name)
    try:
        if folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()):
            loaded = datasets.load_from_disk(str(folder))
        else:
            loaded = datasets.load_dataset(name, config)
    except ConnectionError as error:
        raise _unreachable(source, name, error, datasets) from None
    except datasets.exceptions.DatasetNotFoundError as error:
        hint = _LOCAL_COPY_HINT
        if "gated" in str(error):
            hint = f"log in (`hf auth login`, or set HF_TOKEN) and accept its terms on its hub page; or, {hint}"
        raise DataError(source, f"`datasets` cannot load `{name}`: {error}", hint=hint) from None
    # A dataset's own builder can raise anything (a missing config, a bad file); its message says what.
    except Exception as error:
        hint = None
        if name in _packaged_builders(datasets):
            hint = f"`{name}` is a builder for local files: pass the folder itself, `--data hf:FOLDER`"
        raise DataError(source, f"`datasets` cannot load `{name}`: {error}", hint=hint) from None
    if isinstance(loaded, datasets.Dataset):
        return {str(loaded.split or "train"): loaded}
    return dict(loaded)


def _packaged_builders(datasets) -> frozenset[str]:
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    return frozenset(_PACKAGED_DATASETS_MODULES)


def _unreachable(source: str, name: str, error: ConnectionError, datasets) -> DataError:
    cache = datasets.config.HF_DATASETS_CACHE
    if datasets.config.HF_HUB_OFFLINE:
        tried = f"offline mode is on (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE), and no copy is cached in {cache}"
    else:  # the hub datasets asks: HF_ENDPOINT, by default https://huggingface.co
        tried = f"{datasets.config.HF_ENDPOINT} did not answer ({error}), and no copy is cached in {cache}"
    return DataError(source, f"cannot load `{name}` from the Hugging Face hub: {tried}", hint=_LOCAL_COPY_HINT)


def _pick_splits(source: str, loaded: dict[str, Any]) -> dict[str, Any]:
    """The train split and the validation and test splits where the dataset has them (others are not used)."""
    picked = {}
    for split, names in SPLIT_NAMES.items():
        if found := next((name for name in names if name in loaded), None):
            picked[split] = loaded[found]
    if "train" not in picked:
        raise DataError(
            source,
            f"has no `train` split (its splits: {', '.join(loaded) or 'none'})",
            hint="pick a dataset or config with a train split",
        )
    return picked


def _pick_column(source: str, features: dict[str, Any], kind: type, role: str) -> str:
    matching = [name for name, feature in features.items() if isinstance(feature, kind)]
    if len(matching) == 1:
        return matching[0]
    if preferred := next((name for name in PREFERRED_COLUMNS[role] if name in matching), None):
        return preferred
    columns = ", ".join(f"`{name}` ({_feature_text(feature)})" for name, feature in features.items())
    if matching:
        problem = f"has {len(matching)} {kind.__name__} columns ({', '.join(matching)}) and none is named `{role}`"
    else:
        problem = f"has no {role} column (a `datasets.{kind.__name__}` feature)"
    raise DataError(source, f"{problem}; its columns: {columns}", hint=_COLUMN_HINTS[role])


_COLUMN_HINTS = {
    "image": "training needs a dataset with one image column (`datasets.Image`)",
    "label": "training needs one class-label column (`datasets.ClassLabel`, which holds the class names); "
    "a dataset with several can be saved with one (`save_to_disk`) and passed as `hf:FOLDER`",
}


def _feature_text(feature: Any) -> str:
    names = getattr(feature, "names", None)
    if names is not None:
        return f"ClassLabel of {len(names)} classes"
    kind = type(feature).__name__
    return f"{kind} {feature.dtype}" if kind == "Value" else kind


def _check_same_features(
    source: str, split: str, rows: Any, image_column: str, label_column: str, features: dict[str, Any]
) -> None:
    for column in (image_column, label_column):
        if rows.features.get(column) != features[column]:
            raise DataError(
                source,
                f"its `{rows.split or split}` split's `{column}` column ({rows.features.get(column)}) differs from "
                f"the train split's ({features[column]})",
                hint="every split must have the same image column and the same class names",
            )


def _labelled(source: str, split: str, hub_source: HubSource) -> HubSource | None:
    """The split, or None for an evaluation split without labels (common on the hub); refuse partial labels."""
    unlabeled = int(np.count_nonzero(hub_source.labels == UNLABELED))
    if unlabeled == 0:
        return hub_source
    if split != "train" and unlabeled == len(hub_source):
        return None
    raise DataError(
        source,
        f"{unlabeled:,} of the {len(hub_source):,} rows of its `{hub_source.split}` split have no label",
        hint="training needs a label on every training row; use a split or config with labels",
    )


def check_every_class_trained(source: str, class_names: tuple[str, ...], labels: np.ndarray) -> None:
    if missing := classes_without_images(class_names, labels):
        raise DataError(
            source,
            f"no usable training images in class {', '.join(f'`{name}`' for name in missing)}",
            hint="every class needs training images",
        )
