"""One set of CLI conventions across commands: -h, --output-format (with --format kept), -o/--out,
one default style, one set of training defaults, one meaning of --batch-size, completion, colour."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from archspec.train.config import TrainConfig

COMMANDS = ["summarize", "templates", "new", "lint", "rule", "train", "evaluate", "predict", "compare", "server"]


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


def test_o_writes_files_and_folders(cli):
    for command in ("lint", "compare", "train"):
        assert re.search(r"-o, --(out|output-file)\b", cli(command, "--help").out), command


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
