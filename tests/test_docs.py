"""Docs that run. In README.md and docs/*.md, a fenced block whose lines start with `$ ` shows commands
and what they print: each page's commands run in order, in a fresh folder (with the repository's
files linked in), and their output (stdout and stderr, as a terminal shows them) must equal the
page's, after `normalize`. In the expected text a line `...` stands for any lines. A fenced block
whose info string names a file (```` ```python file=unet.py ````) writes that file for the commands
after it, as a reader would save it.

A command that takes minutes (training) may end in a visible comment `# not run: REASON`: its options
are still parsed, it is reported as skipped with its reason, and there may be at most NOT_RUN_BUDGET.
Any other `cnn-arch ...` a page shows, in a block or inline, may use only options the command has.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"\s+#\s*not run:\s*(?P<reason>.+)$")
NOT_RUN_BUDGET = 6  # commands shown but not run, over every page (keep it short)
SHELL_TOOLS = {
    "cat",
    "head",
    "tail",
    "ls",
    "echo",
    "printf",
    "diff",
    "wc",
    "grep",
}  # what pages may run beside cnn-arch

# What varies between runs, the same on both sides: durations, clock times, run-folder stamps.
NORMALIZE = [
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s|min)\b"), "<time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<clock>"),
    (re.compile(r"\b(\d{8}-\d{6})\b"), "<stamp>"),
]


class Command:
    def __init__(self, page: Path, line: int, text: str, expected: list[str]) -> None:
        self.page, self.line, self.expected = page, line, expected
        marker = NOT_RUN.search(text)
        self.reason = marker.group("reason").strip() if marker else None
        self.text = text[: marker.start()] if marker else text

    def __repr__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: $ {self.text}"


def shown_commands(page: Path) -> list[Command]:
    """The `$ ` commands of a page's fenced blocks, each with the lines shown under it."""
    commands: list[Command] = []
    fenced = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            continue
        if line.startswith("$ "):
            commands.append(Command(page, number, line[2:].strip(), []))
        elif commands and commands[-1].line < number and _same_block(page, commands[-1].line, number):
            commands[-1].expected.append(line)
    return commands


FILE_BLOCK = re.compile(r"```\w*\s+file=(?P<name>\S+)\s*$")


def written_files(page: Path) -> list[tuple[int, str, str]]:
    """The page's file blocks: (line of the fence, file name, text)."""
    found, current, lines = [], None, []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if current is not None:
            if line.lstrip().startswith("```"):
                found.append((current[0], current[1], "\n".join(lines) + "\n"))
                current, lines = None, []
            else:
                lines.append(line)
            continue
        marker = FILE_BLOCK.match(line.strip())
        if marker:
            current = (number, marker.group("name"))
    return found


def _same_block(page: Path, start: int, end: int) -> bool:
    lines = page.read_text(encoding="utf-8").splitlines()[start : end - 1]
    return not any(line.lstrip().startswith("```") for line in lines)


def normalize(text: str, folder: Path) -> list[str]:
    text = text.replace(str(folder), ".")
    for pattern, replacement in NORMALIZE:
        text = pattern.sub(replacement, text)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(expected: list[str], actual: list[str]) -> bool:
    """`expected` equals `actual`, where a line `...` in `expected` stands for any lines."""
    pattern = "".join(r"(?:.*\n)*?" if line.strip() in ("...", "…") else re.escape(line) + r"\n" for line in expected)
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


def run(command: Command, folder: Path) -> str:
    """Output of a shown command, as a terminal shows it: stdout and stderr in the order written."""
    words = shlex.split(command.text)
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    if words[0] == "cnn-arch" and not re.search(r"[|<>;&]", command.text):
        return _in_process(words[1:], folder, env)
    assert words[0] in {"cnn-arch", *SHELL_TOOLS}, f"{command}: pages run cnn-arch and {SHELL_TOOLS}; else `# not run:`"
    script = Path(sys.executable).parent
    environment = {**os.environ, "NO_COLOR": "1", **env, "PATH": f"{script}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", command.text], cwd=folder, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    return done.stdout.decode("utf-8", "replace")


def _in_process(args: list[str], folder: Path, env: dict) -> str:
    from cnn_arch.cli.app import main

    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    saved = {key: os.environ.get(key) for key in ("NO_COLOR", "COLUMNS", *env)}
    os.environ.update({"NO_COLOR": "1", **env})
    if "COLUMNS" not in env:
        os.environ.pop("COLUMNS", None)
    argv, cwd = sys.argv, Path.cwd()
    try:
        os.chdir(folder)
        sys.argv = ["cnn-arch", *args]
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream), contextlib.suppress(SystemExit):
            main()
    finally:
        os.chdir(cwd)
        sys.argv = argv
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return stream.buffer.getvalue().decode("utf-8", "replace")


def _page_folder(tmp_path: Path) -> Path:
    """A fresh folder that sees the repository's files (`tests/...`, `examples/...`) but keeps what the
    commands write."""
    for entry in ROOT.iterdir():
        if not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shown_commands_print_what_the_page_shows(page, tmp_path):
    import difflib

    folder = _page_folder(tmp_path)
    failures = []
    files = written_files(page)
    for command in shown_commands(page):
        while files and files[0][0] < command.line:  # the files shown above the command, saved
            _, name, text = files.pop(0)
            (folder / name).write_text(text, encoding="utf-8")
        if command.reason is not None:
            continue
        actual = normalize(run(command, folder), folder)
        expected = normalize("\n".join(command.expected), folder)
        assert "Traceback (most recent call last)" not in "\n".join(actual), f"{command}\n" + "\n".join(actual)
        if not matches(expected, actual):
            diff = difflib.unified_diff(expected, actual, "page", "actual", lineterm="")
            failures.append(f"{command}\n" + "\n".join(diff))
    assert not failures, "\n\n".join(failures)


NOT_RUN_COMMANDS = [c for page in PAGES for c in shown_commands(page) if c.reason is not None]


def test_few_commands_are_shown_without_running():
    assert len(NOT_RUN_COMMANDS) <= NOT_RUN_BUDGET, "\n".join(map(repr, NOT_RUN_COMMANDS))


@pytest.mark.parametrize("command", NOT_RUN_COMMANDS, ids=repr)
def test_a_command_shown_without_running_still_parses(command):
    import typer

    from cnn_arch.cli.app import app

    words = shlex.split(command.text)
    assert words[0] == "cnn-arch"
    group = typer.main.get_command(app)
    group.commands[words[1]].make_context(words[1], words[2:], parent=None)  # raises on an unknown option
    pytest.skip(f"not run ({command.reason}): {command}")


COMMAND_INLINE = re.compile(r"cnn-arch ([a-z]+)((?: [^ ]+)*)")
COMMAND_IN_BLOCK = re.compile(
    r"(?:^\s*(?:-\s+)?(?:\$\s+)?|(?:run|entry):\s+|(?:&&|\||;)\s+)cnn-arch ([a-z]+)((?: [^ ]+)*)"
)


def _mentions() -> list[tuple[str, int, str, str]]:
    """Every `cnn-arch NAME ...` in a code block or inline code: (page, line, name, the rest)."""
    found = []
    for page in PAGES:
        fenced = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            spans = [line] if fenced else re.findall(r"`([^`]+)`", line)
            # in a block, a command starts its line (after `$ `, a YAML key or a shell operator); the
            # words `cnn-arch NAME` in a program's output are not one
            pattern = COMMAND_IN_BLOCK if fenced else COMMAND_INLINE
            for span in spans:
                code = span.split("  #")[0]
                for name, rest in pattern.findall(code):
                    found.append((str(page.relative_to(ROOT)), number, name, rest))
    return found


def test_every_option_a_page_shows_exists():
    import typer

    from cnn_arch.cli.app import app

    commands = typer.main.get_command(app).commands
    wrong = []
    for page, line, name, rest in _mentions():
        if name not in commands:
            wrong.append(f"{page}:{line}: no command `cnn-arch {name}`")
            continue
        names = {o for p in commands[name].params for o in (*p.opts, *getattr(p, "secondary_opts", ()))}
        for option in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", rest):
            if option not in names | {"-h", "--help"}:
                wrong.append(f"{page}:{line}: `cnn-arch {name}` has no option {option}")
    assert not wrong, "\n".join(wrong)


def _readme_specs() -> list[tuple[int, str]]:
    """The specs the README's tour shows: fenced blocks that begin with `input` or `def`."""
    specs, block, start = [], None, 0
    for number, line in enumerate((ROOT / "README.md").read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            if block is not None and block and re.match(r"(input|def) ", block[0]):
                specs.append((start, "\n".join(block) + "\n"))
            block, start = ([] if block is None else None), number + 1
        elif block is not None:
            block.append(line)
    return specs


@pytest.mark.parametrize("start, text", _readme_specs(), ids=lambda v: f"line {v}" if isinstance(v, int) else "")
def test_the_readme_teaches_specs_lint_finds_nothing_in(start, text):
    """What a newcomer copies first should be the design lint recommends."""
    from archspec.lint import Settings, lint_source

    assert lint_source(text, f"README.md:{start}", Settings.default()) == []


def test_ci_runs_the_readme_test_command():
    """The README's set-up section holds exactly two commands, and CI (`.ci/run`) runs the second, the
    test command, word for word: a step the README leaves out would fail CI, not a new user only."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```\n(.+?)\n```", section)
    assert len(commands) == 2 and "cnn-arch train" in commands[0] and "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
