"""Where the Keras source reader finds the modules a file imports: the file's own folder (a
script's `import blocks` is `blocks.py` beside it, as Python puts a script's folder first on its
path) and the package the file belongs to (`from .blocks import x`, or `from mypkg.blocks import x`
inside `mypkg/`). Nothing is imported: this only finds files. Other installed packages are not
opened (the reader models Keras itself, and numerical libraries are not model code)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    """Where a file sits: its dotted module name (None for a script outside any package), the
    folder its absolute imports start from, and the top-level package it belongs to."""

    name: str | None
    folder: Path  # the file's own folder
    root: Path | None  # the folder holding its top-level package
    top: str | None  # that package's name


def home_of(path: Path) -> Home:
    """The module name and package of file `path`, from the `__init__.py` files above it."""
    folder = path.parent
    parts = [] if path.name == "__init__.py" else [path.stem]
    package = folder
    while (package / "__init__.py").is_file():
        parts.insert(0, package.name)
        package = package.parent
    if package == folder and path.name != "__init__.py":  # a script, not in a package
        return Home(None, folder, None, None)
    return Home(".".join(parts), folder, package, parts[0])


def package_of(home: Home, path: Path) -> str | None:
    """The package a module's relative imports start from (its own name for a package)."""
    if home.name is None:
        return None
    return home.name if path.name == "__init__.py" else home.name.rpartition(".")[0]


def find_module(dotted: str, roots: list[Path]) -> tuple[Path, Path | None] | None:
    """The file of module `dotted` under one of `roots` ((file, package folder or None)), or None."""
    parts = dotted.split(".")
    for root in roots:
        base = root.joinpath(*parts)
        if (base / "__init__.py").is_file():
            return base / "__init__.py", base
        if base.with_suffix(".py").is_file() and all(
            (root.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts))
        ):
            return base.with_suffix(".py"), None
    return None


def roots_for(main: Home, dotted: str) -> list[Path]:
    """Where absolute module `dotted` may be read from, for code of the file whose home is `main`:
    the file's folder (any module beside a script), and its own top-level package."""
    roots = [main.folder] if main.name is None else []
    if main.root is not None and dotted.split(".")[0] == main.top:
        roots.append(main.root)
    return roots
