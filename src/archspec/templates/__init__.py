"""The built-in specs, usable by name (`cnn-arch summarize resnet50`); shipped inside the package.

Each file's first line is a `# ` comment: the one-line description `cnn-arch templates` shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TEMPLATE_DIR = Path(__file__).parent
SUFFIX = ".arch"


@dataclass(frozen=True)
class TemplateInfo:
    """A template's description and the counts the tool computes for it at its own input size."""

    name: str
    description: str
    input_shape: tuple[int, ...]
    params: int
    trainable: int
    non_trainable: int
    macs: int


def names() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob(f"*{SUFFIX}"))


def path(name: str) -> Path | None:
    candidate = TEMPLATE_DIR / f"{name}{SUFFIX}"
    return candidate if name and "/" not in name and candidate.is_file() else None


def describe(name: str) -> str:
    """The template's one-line description: its first comment line."""
    return _description(path(name).read_text(encoding="utf-8"))


def catalog() -> list[TemplateInfo]:
    """Every built-in template, compiled to get its parameters and MACs."""
    from archspec.compile import compile_spec

    entries = []
    for name in names():
        text = path(name).read_text(encoding="utf-8")
        typed = compile_spec(text, f"<template {name}>")
        entries.append(
            TemplateInfo(
                name,
                _description(text),
                typed.input_shape,
                typed.params,
                typed.trainable,
                typed.non_trainable,
                typed.macs,
            )
        )
    return entries


def _description(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""
