"""`cnn-arch lint` and `cnn-arch rule` as a user runs them: the acceptance checks of issue 5, exit
codes, several files and folders, --fix and --diff, settings, and no JAX on the lint path."""

from __future__ import annotations

import subprocess
import sys

import pytest

from archspec import templates


def _copy(tmp_path, template: str, name: str | None = None):
    path = tmp_path / (name or f"{template}.arch")
    path.write_text(templates.path(template).read_text(encoding="utf-8"), encoding="utf-8")
    return path


# --- acceptance -------------------------------------------------------------------------------------


def test_flatten_head_finding_carries_the_numbers(cli):
    result = cli("lint", "flatten-head")
    assert result.code == 1
    (line,) = [line for line in result.out.splitlines() if line.startswith("CA101")]
    for number in ("99.4%", "11,574,090", "72,522", "66,602"):
        assert number in line
    assert " --> flatten-head:12:1" in result.out
    assert result.out.endswith("Found 2 findings (1 fixable with `--unsafe-fixes`).\n")


def test_fix_turns_flatten_head_into_a_gap_head(cli, tmp_path):
    path = _copy(tmp_path, "flatten-head", "mine.arch")
    result = cli("lint", "--fix", "--unsafe-fixes", str(path))
    assert f"Fixed {path}:12:1: CA101 Replace `flatten` with `gap`" in result.out
    assert "(1 fixed, 1 remaining)" in result.out
    assert "# Keras-tutorial CNN" in path.read_text()  # comments are kept
    assert "Total params: 72,522" in cli("summarize", str(path)).out
    assert "CA101" not in cli("lint", str(path)).out


def test_diff_shows_the_one_line_change_and_writes_nothing(cli, tmp_path):
    path = _copy(tmp_path, "flatten-head")
    before = path.read_text()
    result = cli("lint", "--diff", "--unsafe-fixes", str(path))
    assert result.code == 1
    changed = [line for line in result.out.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-flatten", "+gap"]
    assert "Would fix 1 finding (1 remaining)." in result.err
    assert path.read_text() == before


def test_diff_on_a_template_is_allowed_and_clean_diff_exits_0(cli):
    assert cli("lint", "--diff", "--unsafe-fixes", "flatten-head").code == 1
    result = cli("lint", "--diff", "--unsafe-fixes", "gap-head")
    assert (result.code, result.out, result.err) == (0, "", "No fixes available.\n")


def test_gap_head_has_no_flatten_head_finding(cli):
    assert "CA101" not in cli("lint", "gap-head").out


@pytest.mark.parametrize("name", templates.names())
def test_every_template_lints(cli, name):
    result = cli("lint", name, "--select", "ALL")
    assert result.code in (0, 1), result.err
    assert result.err == ""


# --- exit codes and targets ---------------------------------------------------------------------------


def test_clean_spec_exits_0(cli, tmp_path):
    path = tmp_path / "clean.arch"
    path.write_text("input 16\ndense 10 softmax\n")
    result = cli("lint", str(path))
    assert (result.code, result.out) == (0, "All checks passed!\n")


def test_spec_error_is_printed_and_the_other_files_still_linted(cli, tmp_path):
    bad = tmp_path / "bad.arch"
    bad.write_text("input 16\ndenze 10 softmax\n")
    good = _copy(tmp_path, "flatten-head")
    result = cli("lint", str(bad), str(good), "--output-format", "concise")
    assert result.code == 2
    assert f"{bad}:2:1: error: unknown layer `denze`" in result.err and "did you mean `dense`?" in result.err
    assert f"{good}:12:1: CA101" in result.out
    assert result.out.endswith(
        "Found 2 findings (1 fixable with `--unsafe-fixes`). 1 spec could not be checked (see the errors above).\n"
    )


def test_missing_file_exits_2(cli, tmp_path):
    result = cli("lint", str(tmp_path / "nope.arch"))
    assert result.code == 2 and "no such file" in result.err
    assert result.out == "Found 0 findings. 1 spec could not be checked (see the errors above).\n"


def test_folder_lints_every_arch_file_under_it(cli, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / ".hidden").mkdir()
    _copy(tmp_path / "a", "flatten-head", "one.arch")
    _copy(tmp_path, "gap-head", "two.arch")
    _copy(tmp_path / ".hidden", "flatten-head", "skipped.arch")
    (tmp_path / "notes.txt").write_text("not a spec")
    result = cli("lint", str(tmp_path), "--output-format", "concise", "--select", "CA1,CA5")
    files = sorted({line.split(":")[0] for line in result.out.splitlines()[:-1]})
    assert files == [str(tmp_path / "a" / "one.arch"), str(tmp_path / "two.arch")]
    assert result.out.endswith("Found 3 findings (1 fixable with `--unsafe-fixes`).\n")


def test_empty_folder_warns(cli, tmp_path):
    result = cli("lint", str(tmp_path))
    assert (result.code, result.out) == (0, "All checks passed!\n")
    assert "warning: no .arch files under" in result.err


def test_fix_on_a_template_points_to_new(cli):
    result = cli("lint", "--fix", "flatten-head")
    assert result.code == 2
    assert "`flatten-head` is a built-in template" in result.err
    assert "cnn-arch new flatten-head" in result.err


def test_fix_everything_exits_0(cli, tmp_path):
    path = tmp_path / "s.arch"
    path.write_text("input 16\ndense 1 softmax  # binary\n")
    result = cli("lint", "--fix", "--unsafe-fixes", str(path))
    assert result.code == 0
    assert path.read_text() == "input 16\ndense 1 sigmoid  # binary\n"
    assert result.out.endswith("Found 1 finding (1 fixed, 0 remaining).\n")


def test_fix_applies_safe_fixes_only_and_says_which_are_unsafe(cli, tmp_path):
    path = _copy(tmp_path, "flatten-head")
    before = path.read_text()
    result = cli("lint", "--fix", str(path))
    assert path.read_text() == before  # CA101's fix removes 99% of the parameters: unsafe
    assert "CA101 Dense head" in result.out  # no `[*]`: --fix alone would not repair it
    assert result.out.endswith("Found 2 findings (1 fixable with `--unsafe-fixes`).\n")
    assert cli("lint", "--diff", str(path)).err == "No fixes available (1 can be enabled with `--unsafe-fixes`).\n"
    result = cli("lint", "--unsafe-fixes", str(path))
    assert "CA101 [*] Dense head" in result.out and result.out.endswith("Found 2 findings (1 fixable).\n")
    result = cli("lint", "--fix", "--unsafe-fixes", str(path))
    assert "CA101 Replace `flatten` with `gap` (unsafe fix)" in result.out


def test_removing_a_repeated_relu_is_safe_a_repeated_tanh_is_not(cli, tmp_path):
    path = tmp_path / "s.arch"
    path.write_text("input 16\ndense 8 relu relu\ndense 8 tanh tanh\ndense 2 softmax\n")
    result = cli("lint", "--fix", "--select", "CA402", str(path))
    assert path.read_text() == "input 16\ndense 8 relu\ndense 8 tanh tanh\ndense 2 softmax\n"
    assert "CA402 Remove the repeated `relu`\n" in result.out  # safe: no "(unsafe fix)"
    assert result.out.endswith("Found 2 findings (1 fixed, 1 remaining; 1 more fixable with `--unsafe-fixes`).\n")


def test_unsafe_fixes_from_pyproject_and_the_flag_overrides_it(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.cnn-arch.lint]\nunsafe-fixes = true\n")
    path = _copy(tmp_path, "flatten-head")
    assert "CA101 [*]" in cli("lint", str(path)).out
    assert "CA101 [*]" not in cli("lint", "--no-unsafe-fixes", str(path)).out


@pytest.mark.parametrize(
    "args, message",
    [
        (("--select", "CA8"), "unknown rule selector `CA8`"),
        (("--input", "12x"), "--input must look like HxWxC"),
        (("--dense-share-threshold", "2"), "2.0 is not in the range"),
    ],
)
def test_usage_errors_exit_2(cli, args, message):
    result = cli("lint", "flatten-head", *args)
    assert result.code == 2 and message in result.err


# --- settings ----------------------------------------------------------------------------------------


def test_flags_select_ignore_and_threshold(cli):
    assert cli("lint", "flatten-head", "--select", "CA5").out.count("CA101") == 0
    assert cli("lint", "flatten-head", "--ignore", "CA101").out.count("CA101 ") == 0
    assert "CA202" in cli("lint", "lenet5", "--extend-select", "CA202").out
    assert "CA101" not in cli("lint", "flatten-head", "--dense-share-threshold", "0.995").out


def test_input_override(cli):
    result = cli("lint", "flatten-head", "--input", "32x32x3", "--select", "CA101")
    assert "61.4% of the parameters: 170,826 params now, 72,522 with `gap`" in result.out  # gap: any size


def test_pyproject_settings_apply_and_flags_override_them(cli, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.cnn-arch.lint]\nignore = ["CA101"]\n')
    (tmp_path / "models").mkdir()
    path = _copy(tmp_path / "models", "flatten-head")
    monkeypatch.chdir(tmp_path / "models")
    assert "CA101" not in cli("lint", str(path)).out
    assert "CA101" not in cli("lint", "flatten-head").out  # a template: config from the working folder
    assert "CA101" in cli("lint", str(path), "--extend-select", "CA101").out
    other = tmp_path / "other.toml"
    other.write_text('[tool.cnn-arch.lint]\nselect = ["CA101"]\n')
    assert cli("lint", str(path), "--config", str(other), "--output-format", "concise").out.startswith(
        f"{path}:12:1: CA101"
    )


def test_broken_config_exits_2_before_any_output(cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.cnn-arch.lint]\nselct = ["CA1"]\n')
    path = _copy(tmp_path, "flatten-head")
    result = cli("lint", str(path))
    assert (result.code, result.out) == (2, "")
    assert "unknown setting `selct`" in result.err and "did you mean `select`?" in result.err


# --- cnn-arch rule ---------------------------------------------------------------------------------------


def test_rule_prints_its_docs(cli):
    result = cli("rule", "CA101")
    assert result.code == 0
    assert result.out.startswith("# flatten-dense-head (CA101)\n\nFix is available: Replace `flatten` with `gap`.")
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert heading in result.out
    assert cli("rule", "bias-before-batchnorm").out.startswith("# bias-before-batchnorm (CA302)")


def test_rule_all_lists_every_rule(cli):
    from archspec.lint import RULES

    lines = cli("rule", "--all").out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == list(RULES)
    assert "[*]" in lines[1] and "opt-in" in next(line for line in lines if line.startswith("CA202"))


def test_unknown_rule_suggests_one(cli):
    result = cli("rule", "CA1O1")
    assert result.code == 2
    assert "unknown rule `CA1O1`" in result.err and "did you mean `CA101`?" in result.err


# --- start-up ------------------------------------------------------------------------------------------


def test_lint_never_imports_jax():
    code = (
        "import sys\n"
        "from cnn_arch.cli.app import main\n"
        "sys.argv = ['cnn-arch', 'lint', 'flatten-head']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'optax')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "[]"
