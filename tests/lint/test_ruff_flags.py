"""The flags, settings and output formats a ruff user types out of habit, and unchecked specs in every
output format."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ElementTree

import pytest

FLAT = "input 16\ndense 1 softmax\n"  # one CA103 finding (an unsafe fix), line 2 col 9
BROKEN = "input 16\ndenze 10 softmax\n"  # does not compile: unknown layer at 2:1


@pytest.fixture
def specs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flat.arch").write_text(FLAT)
    (tmp_path / "broken.arch").write_text(BROKEN)
    return tmp_path


# --- item 2: a spec that is not checked is visible in every format ---------------------------------


def test_unchecked_spec_is_an_error_annotation_on_github(cli, specs):
    result = cli("lint", "broken.arch", "flat.arch", "--output-format", "github")
    assert result.code == 2
    first = result.out.splitlines()[0]
    assert first.startswith("::error file=broken.arch,line=2,col=1,title=spec error::unknown layer `denze`")
    assert "::warning file=flat.arch,line=2,col=9" in result.out


def test_unchecked_spec_is_a_sarif_result_and_a_tool_notification(cli, specs):
    import jsonschema

    from tests.lint.test_output import sarif_schema

    log = json.loads(cli("lint", "broken.arch", "--output-format", "sarif").out)
    schema = sarif_schema()
    assert not list(jsonschema.validators.validator_for(schema)(schema).iter_errors(log))
    run = log["runs"][0]
    [result] = run["results"]
    assert result["level"] == "error" and "unknown layer `denze`" in result["message"]["text"]
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert "denze" in invocation["toolExecutionNotifications"][0]["message"]["text"]


def test_unchecked_spec_in_json_and_concise(cli, specs):
    items = json.loads(cli("lint", "broken.arch", "--output-format", "json").out)
    assert items[0]["code"] is None and items[0]["severity"] == "error" and items[0]["location"]["row"] == 2
    concise = cli("lint", "broken.arch", "--output-format", "concise")
    assert concise.out.startswith("broken.arch:2:1: error: unknown layer `denze`")
    missing = cli("lint", "nope.arch", "--output-format", "json")
    assert missing.code == 2 and json.loads(missing.out)[0]["filename"] == "nope.arch"


# --- item 3: ruff's flags -------------------------------------------------------------------------


def test_stdin_with_a_file_name(cli, specs, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(FLAT))
    result = cli("lint", "-", "--stdin-filename", "model.arch", "--output-format", "concise")
    assert result.code == 1 and result.out.startswith("model.arch:2:9: CA103")


def test_stdin_fix_prints_the_fixed_spec(cli, specs, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(FLAT))
    result = cli("lint", "-", "--fix", "--unsafe-fixes")
    assert result.out == "input 16\ndense 1 sigmoid\n" and result.code == 0
    assert "Fixed -:2:9: CA103" in result.err


def test_exit_zero_and_exit_non_zero_on_fix(cli, specs):
    assert cli("lint", "flat.arch", "--exit-zero").code == 0
    assert cli("lint", "broken.arch", "--exit-zero").code == 2  # an unchecked spec is still an error
    result = cli("lint", "flat.arch", "--fix", "--unsafe-fixes", "--exit-non-zero-on-fix")
    assert result.code == 1 and (specs / "flat.arch").read_text() == "input 16\ndense 1 sigmoid\n"
    assert cli("lint", "flat.arch", "--fix", "--unsafe-fixes", "--exit-non-zero-on-fix").code == 0  # nothing left


def test_quiet_drops_the_closing_line_and_silent_prints_nothing(cli, specs):
    quiet = cli("lint", "flat.arch", "-q", "--output-format", "concise")
    assert quiet.out.startswith("flat.arch:2:9: CA103") and "Found" not in quiet.out and quiet.code == 1
    silent = cli("lint", "flat.arch", "broken.arch", "-s")
    assert (silent.out, silent.err, silent.code) == ("", "", 2)


def test_statistics_counts_findings_per_rule(cli, specs):
    (specs / "flat2.arch").write_text(FLAT)
    result = cli("lint", "flat.arch", "flat2.arch", "--statistics", "--unsafe-fixes")
    assert result.out.splitlines()[0].split() == ["2", "CA103", "[*]", "single-unit-softmax"]
    assert cli("lint", "flat.arch", "--statistics").out.splitlines()[0].split() == ["1", "CA103", "single-unit-softmax"]
    rows = json.loads(cli("lint", "flat.arch", "--statistics", "--output-format", "json").out)
    assert rows == [{"code": "CA103", "name": "single-unit-softmax", "count": 1, "fixable": False}]


def test_show_fixes_lists_what_fix_would_do(cli, specs):
    out = cli("lint", "flat.arch", "--show-fixes", "--unsafe-fixes").out
    assert "Fixes available:\n  flat.arch:2:9: CA103 Replace `softmax` with `sigmoid` (unsafe fix)" in out
    assert "Fixes available" not in cli("lint", "flat.arch", "--show-fixes").out  # unsafe ones need the flag


def test_output_file_gets_the_report_and_stdout_stays_empty(cli, specs):
    result = cli("lint", "flat.arch", "--output-format", "json", "-o", "report/lint.json")
    assert result.out == "" and result.code == 1
    assert json.loads((specs / "report" / "lint.json").read_text())[0]["code"] == "CA103"


def test_extend_ignore_and_noqa_with_spaces(cli, specs):
    assert cli("lint", "flat.arch", "--extend-ignore", "CA103").code == 0
    (specs / "noqa.arch").write_text("input 16\ndense 1 softmax  # noqa: CA101 CA103\n")
    assert cli("lint", "noqa.arch").code == 0


def test_unused_noqa_is_reported_and_fixed(cli, specs):
    (specs / "noqa.arch").write_text("input 16\ndense 1 softmax  # noqa: CA103, CA301, CA999\n")
    result = cli("lint", "noqa.arch", "--extend-select", "CA901", "--output-format", "concise")
    assert "noqa.arch:2:18: CA901 [*] Unused `noqa` directive (unused: CA301; unknown: CA999)" in result.out
    cli("lint", "noqa.arch", "--extend-select", "CA901", "--fix")
    assert (specs / "noqa.arch").read_text() == "input 16\ndense 1 softmax  # noqa: CA103\n"


def test_exclude_and_gitignore_when_walking_folders(cli, specs):
    for folder in ("generated", "kept", "ignored"):
        (specs / "tree" / folder).mkdir(parents=True)
        (specs / "tree" / folder / "m.arch").write_text(FLAT)
    (specs / "tree" / ".gitignore").write_text("ignored/\n")

    def linted(*args):
        out = cli("lint", "tree", "--output-format", "concise", "-q", *args).out
        return sorted({line.split(":")[0] for line in out.splitlines()})

    assert linted("--exclude", "generated") == ["tree/kept/m.arch"]
    assert linted("--exclude", "generated", "--no-respect-gitignore") == ["tree/ignored/m.arch", "tree/kept/m.arch"]


def test_config_exclude_per_file_ignores_and_extend(cli, specs):
    (specs / "base.toml").write_text('[tool.cnn-arch.lint]\nextend-select = ["CA202"]\nextend-exclude = ["old"]\n')
    (specs / "pyproject.toml").write_text(
        '[tool.cnn-arch.lint]\nextend = "base.toml"\nper-file-ignores = { "tree/tests/*" = ["CA103"] }\n'
    )
    for folder in ("old", "tests", "src"):
        (specs / "tree" / folder).mkdir(parents=True)
        (specs / "tree" / folder / "m.arch").write_text("input 16\ndense 3 softmax\ndense 1 softmax\n")
    out = cli("lint", "tree", "--output-format", "concise", "-q").out
    codes = {(line.split(":")[0], line.split()[1]) for line in out.splitlines()}
    assert codes == {
        ("tree/src/m.arch", "CA103"),
        ("tree/src/m.arch", "CA202"),  # inherited from base.toml
        ("tree/tests/m.arch", "CA202"),  # CA103 ignored for tree/tests/*
    }


def test_extend_in_a_circle_is_a_clear_error(cli, specs):
    (specs / "pyproject.toml").write_text('[tool.cnn-arch.lint]\nextend = "pyproject.toml"\n')
    result = cli("lint", "flat.arch")
    assert result.code == 2 and "goes round in a circle" in result.err


def test_watch_lints_again_after_a_change(cli, specs, monkeypatch):
    import threading
    import time

    monkeypatch.setenv("CNN_ARCH_WATCH_ROUNDS", "2")

    def edit():
        time.sleep(0.6)
        (specs / "flat.arch").write_text("input 16\ndense 2 softmax\n")

    editor = threading.Thread(target=edit)
    editor.start()
    result = cli("lint", "flat.arch", "--watch", "--output-format", "concise")
    editor.join()
    assert result.out.count("Linting 1 files") == 2
    assert "CA103" in result.out and result.out.rstrip().endswith("Watching for changes…")
    assert "All checks passed!" in result.out  # the second round saw the fixed spec


# --- more formats --------------------------------------------------------------------------------


def test_json_lines_is_the_json_items_one_per_line(cli, specs):
    lines = cli("lint", "flat.arch", "broken.arch", "--output-format", "json-lines").out.splitlines()
    items = [json.loads(line) for line in lines]
    assert [i["code"] for i in items] == [None, "CA103"]
    assert items[1]["fix"]["applicability"] == "unsafe"


def test_junit_is_xml_with_a_failure_per_finding(cli, specs):
    root = ElementTree.fromstring(cli("lint", "flat.arch", "broken.arch", "--output-format", "junit").out)
    assert (root.get("failures"), root.get("errors")) == ("1", "1")
    assert "softmax" in root.find(".//failure").get("message")
    assert "denze" in root.find(".//error").get("message")


def test_gitlab_code_quality(cli, specs):
    issues = json.loads(cli("lint", "flat.arch", "--output-format", "gitlab").out)
    [issue] = issues
    assert issue["check_name"] == "CA103" and issue["location"] == {
        "path": "flat.arch",
        "lines": {"begin": 2, "end": 2},
    }
    assert len(issue["fingerprint"]) == 32 and issue["severity"] == "minor"


def test_pylint_and_grouped(cli, specs):
    pylint = cli("lint", "flat.arch", "--output-format", "pylint").out
    assert pylint.startswith("flat.arch:2: [CA103] ")
    grouped = cli("lint", "flat.arch", "broken.arch", "--output-format", "grouped").out
    assert "broken.arch:\n  2:1 error: unknown layer `denze`" in grouped
    assert "flat.arch:\n  2:9 CA103 `softmax` over 1 unit" in grouped


def test_rule_as_json(cli):
    rule = json.loads(cli("rule", "CA101", "--output-format", "json").out)
    assert rule["code"] == "CA101" and rule["fix"] == "unsafe" and "## What it does" in rule["explanation"]
    assert json.loads(cli("rule", "CA901", "--output-format", "json").out)["fix"] == "safe"
    every = json.loads(cli("rule", "--all", "--output-format", "json").out)
    assert [r["code"] for r in every][:2] == ["CA101", "CA102"] and len(every) > 10


# --- fits the terminal ----------------------------------------------------------------------------


def test_lint_messages_wrap_at_80_columns(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = cli("lint", "flatten-head").out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "\n    params now, 72,522 with `gap`" in out  # the message goes on, indented
    monkeypatch.setenv("COLUMNS", "200")
    assert "11,574,090 params now, 72,522 with `gap`" in cli("lint", "flatten-head").out


def test_rule_all_fits_80_columns(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    lines = cli("rule", "--all").out.splitlines()
    assert max(len(line) for line in lines) <= 80
    codes = [line.split()[0] for line in lines[1:] if line[:1].strip()]
    assert codes == list(__import__("archspec.lint", fromlist=["RULES"]).RULES)
