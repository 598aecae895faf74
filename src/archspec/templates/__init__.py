"""The built-in specs, usable by name (`cnn-arch summarize resnet50`); shipped inside the package."""

from __future__ import annotations

from pathlib import Path

TEMPLATE_DIR = Path(__file__).parent
SUFFIX = ".arch"


def names() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob(f"*{SUFFIX}"))


def path(name: str) -> Path | None:
    candidate = TEMPLATE_DIR / f"{name}{SUFFIX}"
    return candidate if name and "/" not in name and candidate.is_file() else None


def describe(name: str) -> str:
    """The template's one-line description: its first comment line."""
    for line in path(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""
