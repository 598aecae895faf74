"""Walking a dataset folder: its splits, class folders and files, with the problems found without
decoding anything (bad symlinks, unlistable or empty class folders)."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from archspec.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
SPLITS = ("train", "val", "test")
_IGNORED_NAMES = frozenset({"Thumbs.db", "desktop.ini", "__MACOSX"})


@dataclass(frozen=True)
class ImageFile:
    relative: str  # posix path from the dataset root, as shown to the user
    path: Path
    label: int


@dataclass(frozen=True)
class FolderListing:
    class_names: tuple[str, ...]
    files: dict[str, list[ImageFile]]  # split name -> files
    bad: list[tuple[str, str]]  # (relative path, reason), found without decoding
    empty: list[str]  # class folders without a single file, as "test/dogs/"

    @property
    def file_count(self) -> int:
        return sum(len(files) for files in self.files.values())


def list_folder(source: str, root: Path) -> FolderListing:
    """List the dataset folder `root`; raise DataError when its layout cannot be a dataset."""
    bad: list[tuple[Path, str]] = []
    top = _sub_folders(root, root, bad)
    if "train" in top:
        unexpected = sorted(set(top) - set(SPLITS))
        if unexpected:
            raise DataError(
                source,
                f"unexpected folder `{unexpected[0]}` next to `train/`",
                hint="a dataset with splits holds only train/, val/ and test/, each with one sub-folder per class",
            )
        classes_by_split = {split: _sub_folders(top[split], root, bad) for split in SPLITS if split in top}
    else:
        classes_by_split = {"train": top}
    class_names = _agree_on_classes(source, root, classes_by_split)
    files = {
        split: [
            ImageFile(path.relative_to(root).as_posix(), path, label)
            for label, name in enumerate(class_names)
            for path in _walk_files(classes[name], root, bad)
        ]
        for split, classes in classes_by_split.items()
    }
    empty = _empty_class_folders(root, class_names, classes_by_split, files)
    shown = [(path.relative_to(root).as_posix(), reason) for path, reason in bad]
    return FolderListing(class_names, files, shown, empty)


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


def _empty_class_folders(
    root: Path,
    class_names: tuple[str, ...],
    classes_by_split: dict[str, dict[str, Path]],
    files: dict[str, list[ImageFile]],
) -> list[str]:
    empty = []
    for split, classes in classes_by_split.items():
        labels_present = {file.label for file in files[split]}
        empty += [
            classes[name].relative_to(root).as_posix() + "/"
            for label, name in enumerate(class_names)
            if label not in labels_present
        ]
    return empty


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
