"""Helpers for the lint tests: fixture sections, linting text with chosen rules."""

from __future__ import annotations

from pathlib import Path

from archspec.lint import RULES, Settings, lint_source

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
SNAPSHOTS = HERE / "snapshots"
SECTION = "# ---"


def sections(path: Path) -> list[tuple[str, str]]:
    """(title, text) for each `# ---` section of a fixture; the text keeps the file's line numbers
    (the other sections become blank lines), so findings and `# bad` markers line up."""
    lines = path.read_text(encoding="utf-8").split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith(SECTION)]
    found = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        text = "\n".join(line if start < i < end else "" for i, line in enumerate(lines))
        found.append((lines[start][len(SECTION) :].strip(), text))
    return found


def marked(text: str, marker: str = "# bad") -> set[int]:
    return {number for number, line in enumerate(text.split("\n"), start=1) if marker in line}


def lint(text: str, *codes: str, threshold: float = 0.5, name: str = "test.arch"):
    """Findings of the given rules (every rule when none is given)."""
    return lint_source(text, name, Settings(frozenset(codes or RULES), threshold))
