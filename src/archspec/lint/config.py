"""Lint settings: which rules run (`select`, `ignore`, `extend-select` by code or code prefix, as in
ruff) and rule options, read from `[tool.cnn-arch.lint]` in the nearest `pyproject.toml` (or an
explicit `--config` file) and overridden by command-line flags.

```toml
[tool.cnn-arch.lint]
select = ["CA"]              # every rule; "CA1" selects CA101..CA199; "ALL" also works
ignore = ["CA501"]
extend-select = ["CA202"]    # add to the default set instead of replacing it
dense-share-threshold = 0.6  # CA101 fires above this share of parameters in the dense head
unsafe-fixes = true          # `--fix` also applies fixes that change the trained network
exclude = ["generated/*"]    # glob patterns skipped when walking folders (replaces the defaults)
extend-exclude = ["old/*"]   # more patterns, on top of `exclude`
per-file-ignores = { "experiments/*.arch" = ["CA2"] }  # rules skipped for files matching a glob
extend = "../base.toml"      # inherit another config file's settings; this file's win
```

Patterns are relative to the config file's folder and match a file's path or any folder above it.

Each layer (the config file, then the command line) starts from the rules the previous layer chose:
`select` replaces them, `extend-select` adds, `ignore` removes. Within a layer the most specific
selector wins (`ignore = ["CA1"]` with `extend-select = ["CA101"]` keeps CA101); on a tie, `ignore` wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from archspec.errors import PathError, UserError
from archspec.head import DENSE_SHARE_THRESHOLD
from archspec.lint.engine import RULES, Settings
from archspec.text import did_you_mean

SECTION = "[tool.cnn-arch.lint]"
KEYS = (
    "select",
    "ignore",
    "extend-select",
    "dense-share-threshold",
    "unsafe-fixes",
    "exclude",
    "extend-exclude",
    "per-file-ignores",
    "extend",
)
# Folders never walked unless `exclude` replaces this list (ruff skips the same kind of folders).
DEFAULT_EXCLUDE = (".git", ".venv", "venv", "node_modules", "build", "dist", "runs", "__pycache__")


class Selection(NamedTuple):
    """One layer of rule selection. `select=None` keeps what earlier layers chose."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()


class Options(NamedTuple):
    """Settings from one source (a config file or the command line); None means "not given here"."""

    selection: Selection = Selection()
    dense_share_threshold: float | None = None
    unsafe_fixes: bool | None = None
    exclude: tuple[str, ...] | None = None  # None: DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (glob, selectors)
    root: Path | None = None  # the config file's folder: patterns are relative to it
    inherited: tuple[Selection, ...] = ()  # selections of the files `extend` reaches, oldest first

    @property
    def excluded(self) -> tuple[str, ...]:
        return (*(DEFAULT_EXCLUDE if self.exclude is None else self.exclude), *self.extend_exclude)


def matches(path: Path, patterns: tuple[str, ...], root: Path | None) -> bool:
    """Whether `path` (or a folder above it) matches one of the glob patterns, relative to `root`."""
    from fnmatch import fnmatch

    resolved = path.resolve()
    try:
        relative = resolved.relative_to((root or Path.cwd()).resolve()).as_posix()
    except ValueError:
        relative = resolved.as_posix()
    parts = relative.split("/")
    candidates = ["/".join(parts[: k + 1]) for k in range(len(parts))] + parts
    return any(fnmatch(c, p.rstrip("/")) for p in patterns for c in candidates)


def check_selector(selector: str) -> str:
    """Normalize a selector (`ca1` → `CA1`); raise `UserError` when it matches no rule."""
    code = selector.strip().upper()
    if code == "ALL" or any(c.startswith(code) for c in RULES):
        return code
    hint = did_you_mean(code, RULES) or "see `cnn-arch rule --all` for the rule codes"
    raise UserError(f"unknown rule selector `{selector.strip()}`", hint=hint)


def _specificity(code: str, selectors: tuple[str, ...]) -> int:
    """Length of the longest selector matching `code` (ALL counts as 0); -1 when none does."""
    best = -1
    for selector in selectors:
        if selector == "ALL":
            best = max(best, 0)
        elif code.startswith(selector):
            best = max(best, len(selector))
    return best


def resolve(layers: list[Selection]) -> frozenset[str]:
    """The rule codes selected by `layers`, applied in order on top of the default rules."""
    enabled = set(Settings.default().codes)
    for layer in layers:
        positive = (*(layer.select or ()), *layer.extend_select)
        chosen = set()
        for code in RULES:
            plus, minus = _specificity(code, positive), _specificity(code, layer.ignore)
            if plus > minus or (minus < 0 and layer.select is None and code in enabled):
                chosen.add(code)
        enabled = chosen
    return frozenset(enabled)


def settings(file_options: Options, cli_options: Options, path: Path | None = None) -> Settings:
    """Combine the config file's options with the command line's (which win); `per-file-ignores`
    matching `path` come last."""
    threshold = cli_options.dense_share_threshold
    if threshold is None:
        threshold = file_options.dense_share_threshold
    if threshold is None:
        threshold = DENSE_SHARE_THRESHOLD
    unsafe = cli_options.unsafe_fixes if cli_options.unsafe_fixes is not None else file_options.unsafe_fixes
    layers = [*file_options.inherited, file_options.selection, cli_options.selection]
    if path is not None:
        for pattern, codes in file_options.per_file_ignores:
            if matches(path, (pattern,), file_options.root):
                layers.append(Selection(ignore=codes))
    return Settings(resolve(layers), threshold, bool(unsafe))


def selectors(values: list[str] | None) -> tuple[str, ...]:
    """Selectors from repeated and/or comma-separated flags: `--select CA1,CA3 --select CA501`."""
    return tuple(check_selector(part) for value in values or () for part in value.split(",") if part.strip())


# --- config files --------------------------------------------------------------------------------


def find_config(start: Path) -> Path | None:
    """The nearest `pyproject.toml` with a `[tool.cnn-arch]` table, from `start` up to the root."""
    folder = start.resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if path.is_file() and "cnn-arch" in _read_toml(path).get("tool", {}):
            return path
    return None


def load_config(path: Path, *, explicit: bool = False, _seen: tuple[Path, ...] = ()) -> Options:
    """Options from the `[tool.cnn-arch.lint]` table of a TOML file, on top of the file its `extend`
    names; errors name the file."""
    if path.resolve() in _seen:
        raise PathError(str(path), "`extend` goes round in a circle back to this file")
    data = _read_toml(path)
    table = data.get("tool", {}).get("cnn-arch", {}).get("lint")
    if table is None:
        if explicit:
            raise PathError(str(path), f"has no {SECTION} table")
        return Options()
    if not isinstance(table, dict):
        raise PathError(str(path), f"{SECTION} must be a table")
    for key in table:
        if key not in KEYS:
            hint = did_you_mean(key, KEYS) or f"known settings: {', '.join(KEYS)}"
            raise PathError(str(path), f"unknown setting `{key}` in {SECTION}", hint=hint)
    try:
        selection = Selection(
            select=_codes(table, "select") if "select" in table else None,
            ignore=_codes(table, "ignore"),
            extend_select=_codes(table, "extend-select"),
        )
    except UserError as error:
        raise PathError(str(path), error.message, hint=error.hint) from None
    threshold = table.get("dense-share-threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise PathError(str(path), f"`dense-share-threshold` must be a number from 0 to 1, got {threshold!r}")
        threshold = float(threshold)
    unsafe = table.get("unsafe-fixes")
    if unsafe is not None and not isinstance(unsafe, bool):
        raise PathError(str(path), f"`unsafe-fixes` must be true or false, got {unsafe!r}")
    exclude = _patterns(path, table, "exclude") if "exclude" in table else None
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise PathError(str(path), '`per-file-ignores` must be a table of glob = ["CODES"]')
    try:
        per_file_ignores = tuple((str(glob), _codes(per_file, glob)) for glob in per_file)
    except UserError as error:
        raise PathError(str(path), error.message, hint=error.hint) from None
    own = Options(
        selection,
        threshold,
        unsafe,
        exclude,
        _patterns(path, table, "extend-exclude"),
        per_file_ignores,
        path.resolve().parent,
    )
    base_name = table.get("extend")
    if base_name is None:
        return own
    if not isinstance(base_name, str):
        raise PathError(str(path), f"`extend` must be the path of another TOML file, got {base_name!r}")
    base = load_config(path.parent / base_name, explicit=True, _seen=(*_seen, path.resolve()))
    return Options(
        selection,
        threshold if threshold is not None else base.dense_share_threshold,
        unsafe if unsafe is not None else base.unsafe_fixes,
        exclude if exclude is not None else base.exclude,
        (*base.extend_exclude, *own.extend_exclude),
        (*base.per_file_ignores, *per_file_ignores),
        own.root,
        (*base.inherited, base.selection),
    )


def _patterns(path: Path, table: dict, key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PathError(str(path), f'`{key}` must be a list of glob patterns, like ["generated/*"]')
    return tuple(value)


def _codes(table: dict, key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f'`{key}` must be a list of rule codes, like ["CA1", "CA302"]')
    return tuple(check_selector(v) for v in value)


def _read_toml(path: Path) -> dict:
    import tomllib

    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise PathError(str(path), "no such file") from None
    except OSError as error:
        raise PathError(str(path), error.strerror or str(error)) from None
    except tomllib.TOMLDecodeError as error:
        raise PathError(str(path), f"is not valid TOML: {error}") from None
