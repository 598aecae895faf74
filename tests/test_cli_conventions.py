"""One set of CLI conventions across commands: -h, --output-format (with --format kept), -o/--output
(former names hidden), one default style, one set of training defaults, one meaning of --batch-size,
completion, colour; and the README's command list agrees with the commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archspec.train.config import TrainConfig


def _commands() -> dict:
    """The click commands typer builds, by name: what a user can type."""
    import typer

    from cnn_arch.cli.app import app

    return typer.main.get_command(app).commands


COMMANDS = sorted(_commands())
WRITES_FILES = {"lint", "draw", "export", "import", "new", "train", "compare"}
PRINTS_DATA = {"summarize", "templates", "compare", "rule", "devices", "lint", "evaluate", "predict"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_h_for_help(cli, command):
    result = cli(command, "-h")
    assert result.code == 0 and result.out.startswith("Usage: ") and f"cnn-arch {command} [OPTIONS]" in result.out


@pytest.mark.parametrize("command", COMMANDS)
def test_defaults_are_shown_one_way(cli, command):
    text = " ".join(cli(command, "--help").out.split())
    assert not re.search(r"\((default|Default)[: ]|Default: ", text), "defaults read `[default: X]`"


@pytest.mark.parametrize(
    "args",
    [("summarize", "lenet5"), ("templates",), ("lint", "lenet5"), ("rule", "CA101"), ("compare", "lenet5", "gap-head")],
)
def test_output_format_everywhere_and_format_kept(cli, args):
    new = cli(*args, "--output-format", "json")
    old = cli(*args, "--format", "json")
    assert new.out == old.out and new.out.lstrip()[0] in "[{"
    json.loads(new.out)


def _options(command) -> list:
    return [p for p in command.params if p.param_type_name == "option"]


@pytest.mark.parametrize("name", COMMANDS)
def test_one_name_per_meaning(name):
    command = _commands()[name]
    visible = {o for p in _options(command) if not p.hidden for o in p.opts}
    hidden = {o for p in _options(command) if p.hidden for o in p.opts}
    if name in WRITES_FILES:
        assert any(p.opts == ["-o", "--output"] and not p.hidden for p in _options(command)), name
    assert "-o" not in visible or name in WRITES_FILES, "-o is the file a command writes"
    assert not visible & {"--out", "--output-file"}, "former names stay accepted but hidden"
    assert hidden <= {"--out", "--output-file"}, "only former names are hidden"
    if name in PRINTS_DATA:
        assert "--output-format" in visible, name
    assert ("--format" in visible) <= ("--output-format" in visible), "--format is --output-format's alias"


def test_former_option_names_still_work(cli, tmp_path):
    lint = cli("lint", "lenet5", "--output-file", str(tmp_path / "report.txt"))
    assert lint.code == 1 and "CA" in (tmp_path / "report.txt").read_text()
    code = cli("export", "lenet5", "--to", "keras", "--out", str(tmp_path / "model.py"))
    assert code.code == 0 and "keras" in (tmp_path / "model.py").read_text()
    new = cli("new", "lenet5", str(tmp_path / "mine.arch"))
    assert new.code == 0 and (tmp_path / "mine.arch").is_file()
    both = cli("export", "lenet5", "--to", "keras", "-o", "a.py", "--out", "b.py")
    assert both.code == 2 and "give it once" in both.err


def test_the_readme_lists_every_command_with_its_options():
    """Each command has its `cnn-arch NAME` entry in the README's command list, and every option a
    synopsis there shows is one the command takes."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    listed = readme[readme.index("## Commands") : readme.index("\n## ", readme.index("## Commands") + 1)]
    for name in _commands():
        assert f"`cnn-arch {name}" in listed, f"README's command list lacks `{name}`"
    for synopsis in re.findall(r"`cnn-arch ([a-z]+)([^`]*)`", listed):
        name, rest = synopsis
        if name not in _commands():
            continue
        names = {o for p in _commands()[name].params for o in getattr(p, "opts", ())} | {"-h", "--help"}
        for option in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", rest):
            assert option in names, f"README: `cnn-arch {name}` has no option {option}"


def test_compare_and_train_share_trainconfig_defaults(cli):
    compare = " ".join(cli("compare", "--help").out.split())
    train = " ".join(cli("train", "--help").out.split())
    epochs = TrainConfig.__dataclass_fields__["epochs"].default
    assert f"epochs per model. [default: {epochs};" in compare
    assert f"Passes over the training images. [default: {epochs}]" in train


def test_batch_size_has_one_meaning_and_batch_is_its_alias(cli):
    one = json.loads(cli("summarize", "lenet5", "--batch-size", "64", "--output-format", "json").out)
    other = json.loads(cli("summarize", "lenet5", "--batch", "64", "--output-format", "json").out)
    assert one == other and one["totals"]["batch"] == 64
    assert "--batch-size, --batch" in cli("compare", "--help").out


def test_shell_completion_is_offered(cli):
    from pathlib import Path

    assert "--install-completion" in cli("--help").out
    script = Path(sys.executable).parent / "cnn-arch"  # the console script, as a shell runs it
    out = subprocess.run([str(script), "--show-completion", "bash"], capture_output=True, text=True).stdout
    assert "complete -o default -F _cnn_arch_completion cnn-arch" in out


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, True),
        ({"TERM": "dumb"}, False),
        ({"FORCE_COLOR": "0"}, False),
        ({"NO_COLOR": "1"}, False),
        ({"TERM": "dumb", "FORCE_COLOR": "1"}, True),
    ],
)
def test_colour_follows_term_force_color_and_no_color(monkeypatch, env, expected):
    from cnn_arch.cli.output import use_color

    for name in ("TERM", "FORCE_COLOR", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Terminal:
        def isatty(self):
            return True

    assert use_color(Terminal()) is expected


def test_force_color_zero_prints_no_escapes():
    out = subprocess.run(
        [sys.executable, "-c", "from cnn_arch.cli.app import main; main()", "lint", "lenet5"],
        capture_output=True,
        text=True,
        env={"FORCE_COLOR": "0", "PATH": "", "TERM": "xterm"},
    ).stdout
    assert "CA201" in out and "\x1b[" not in out
