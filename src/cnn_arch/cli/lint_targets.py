"""What `cnn-arch lint` checks: spec files, folders walked for `*.arch` (skipping `exclude` patterns and
what `.gitignore` ignores), built-in templates and stdin (`-`), each with its config file's options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

STDIN = "-"


class Target(NamedTuple):
    """A spec to lint: a file (`path`), a template or stdin (`path` None), its text, or why it cannot be read."""

    name: str
    path: Path | None
    text: str = ""
    error: Exception | None = None
    config_folder: Path | None = None  # where to look for its pyproject.toml (stdin: --stdin-filename's)


def targets(
    paths: list[str],
    config: Path | None,
    exclude: tuple[str, ...],
    respect_gitignore: bool,
    stdin_filename: str | None,
) -> list[Target]:
    from archspec import templates
    from archspec.errors import UserError
    from archspec.interop import readers
    from archspec.lint import config as lint_config
    from archspec.parse import read_spec_stream
    from cnn_arch.cli.common import read_target

    found: list[Target] = []
    seen: set[str] = set()
    for spec in paths:
        if spec == STDIN:
            name = stdin_filename or STDIN
            folder = Path(stdin_filename).parent if stdin_filename else Path.cwd()
            try:
                text = read_spec_stream(getattr(sys.stdin, "buffer", sys.stdin), "stdin")
            except UserError as error:
                found.append(Target(name, None, error=error, config_folder=folder))
                continue
            found.append(Target(name, None, text, config_folder=folder))
            continue
        folder = Path(spec)
        if spec and folder.is_dir():  # Path("") is the current folder; an empty argument is a mistake
            options = _config(folder, config)
            skip = (*options.excluded, *exclude)
            files = [f for f in _walk(folder, respect_gitignore) if not lint_config.matches(f, skip, options.root)]
            if not files:
                sys.stderr.write(f"warning: no {templates.SUFFIX} files under {spec}\n")
            names = [str(f) for f in files]
        else:
            names = [spec]
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            is_template = not Path(name).exists() and templates.path(name) is not None
            reader = readers.reader_for(name)
            if reader is not None and not reader.text:  # a binary model file: its reader opens it
                found.append(Target(name, Path(name)))
                continue
            try:
                _, text = read_target(name)
            except UserError as error:
                found.append(Target(name, Path(name), error=error))
                continue
            found.append(Target(name, None if is_template else Path(name), text))
    return found


def _config(folder: Path, config: Path | None):
    from archspec.lint import config as lint_config

    if config is not None:
        return lint_config.load_config(config, explicit=True)
    path = lint_config.find_config(folder)
    return lint_config.load_config(path) if path else lint_config.Options()


def options(found: list[Target], config: Path | None) -> list:
    """Each target's config-file options: from `--config`, else from the nearest pyproject.toml above
    the spec (above the working folder for a template)."""
    from archspec.lint import config as lint_config

    if config is not None:
        return [lint_config.load_config(config, explicit=True)] * len(found)
    by_folder: dict[Path, lint_config.Options] = {}
    chosen = []
    for target in found:
        folder = target.config_folder or (target.path.parent if target.path is not None else Path.cwd())
        folder = folder.resolve()
        if folder not in by_folder:
            path = lint_config.find_config(folder)
            by_folder[folder] = lint_config.load_config(path) if path else lint_config.Options()
        chosen.append(by_folder[folder])
    return chosen


# --- walking folders -------------------------------------------------------------------------------


def _walk(folder: Path, respect_gitignore: bool) -> list[Path]:
    """Every `*.arch` file under `folder`, sorted, skipping hidden folders and (unless told otherwise)
    what the `.gitignore` files from the repository root down ignore."""
    from archspec import templates

    rules = _ancestor_gitignores(folder) if respect_gitignore else []
    found = []
    for file in sorted(folder.rglob(f"*{templates.SUFFIX}")):
        if not file.is_file() or any(part.startswith(".") for part in file.relative_to(folder).parts):
            continue
        if respect_gitignore:
            local = [_read_gitignore(d) for d in _folders_between(folder, file.parent)]
            if _ignored(file, [*rules, *(r for r in local if r)]):
                continue
        found.append(file)
    return found


def _folders_between(top: Path, bottom: Path) -> list[Path]:
    relative = bottom.relative_to(top)
    return [top.joinpath(*relative.parts[:k]) for k in range(len(relative.parts) + 1)]


def _ancestor_gitignores(folder: Path) -> list:
    """The `.gitignore` files above `folder`, up to the repository root (the folder holding `.git`)."""
    found = []
    for parent in folder.resolve().parents:
        rules = _read_gitignore(parent)
        if rules:
            found.append(rules)
        if (parent / ".git").exists():
            break
    return list(reversed(found))


def _read_gitignore(folder: Path):
    try:
        lines = (folder / ".gitignore").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    patterns = [line.rstrip() for line in lines if line.strip() and not line.startswith("#")]
    return (folder.resolve(), patterns) if patterns else None


def _ignored(file: Path, rules: list) -> bool:
    """gitignore semantics for the common cases: later patterns win, `!` re-includes, a trailing `/`
    matches folders only, a pattern with a `/` is anchored at its file's folder."""
    from fnmatch import fnmatch

    ignored = False
    path = file.resolve()
    for base, patterns in rules:
        try:
            parts = path.relative_to(base).parts
        except ValueError:
            continue
        for raw in patterns:
            negate = raw.startswith("!")
            pattern = raw[1:] if negate else raw
            folder_only = pattern.endswith("/")
            pattern = pattern.rstrip("/")
            anchored = "/" in pattern
            pattern = pattern.lstrip("/")
            # candidate paths: each folder above the file (and the file itself unless folders only)
            ends = range(1, len(parts)) if folder_only else range(1, len(parts) + 1)
            for end in ends:
                candidate = "/".join(parts[:end]) if anchored else parts[end - 1]
                if fnmatch(candidate, pattern) or (anchored and fnmatch(candidate, pattern + "/**")):
                    ignored = not negate
                    break
    return ignored
