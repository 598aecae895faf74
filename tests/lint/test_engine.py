"""The engine: `# noqa`, rule selection by code prefix, settings from pyproject.toml, and how
findings inside macros and repeats are reported."""

from __future__ import annotations

import pytest

from archspec.errors import PathError, UserError
from archspec.lint import RULES
from archspec.lint.config import Options, Selection, check_selector, find_config, load_config, resolve, settings
from archspec.lint.engine import noqa_codes
from tests.conftest import spec
from tests.lint.support import lint

HEAD = spec("""
    input 64x64x3
    conv 32 3 relu
    maxpool 2
    flatten
    dense 64 relu
    dense 10 softmax
""")

DEFAULTS = {code for code, r in RULES.items() if r.default}


# --- noqa --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "comment, suppressed",
    [
        ("# noqa", True),
        ("# noqa: CA101", True),
        ("#noqa:CA101,CA501", True),
        ("# NOQA: ca101", True),
        ("# noqa: CA501", False),
        ("# no qa", False),
        ("# a demo  # noqa: CA101", True),
        ("# a demo, noqa: CA101", False),  # as in ruff, `noqa` must open a comment
    ],
)
def test_noqa_on_the_reported_line(comment, suppressed):
    text = HEAD.replace("flatten\n", f"flatten  {comment}\n")
    assert bool(lint(text, "CA101")) is not suppressed


def test_noqa_codes_parsing():
    assert noqa_codes("conv 64 3 relu") is None
    assert noqa_codes("gap  # noqa") == frozenset()
    assert noqa_codes("gap  # noqa: CA101, CA501") == {"CA101", "CA501"}


def test_noqa_inside_a_def_body_silences_every_expansion():
    text = spec("""
        def block(f):
            conv f 3 padding=same bn relu  # noqa: CA302
        input 32x32x3
        block 16
        block 32
        gap
        dense 10 softmax
    """)
    assert lint(text, "CA302") == []


# --- selection --------------------------------------------------------------------------------------


def test_default_selection_leaves_out_opt_in_rules():
    assert resolve([]) == DEFAULTS
    assert "CA202" not in DEFAULTS and "CA101" in DEFAULTS


@pytest.mark.parametrize(
    "layer, expected",
    [
        (Selection(select=("CA1",)), {"CA101", "CA102", "CA103", "CA104", "CA105"}),
        (Selection(select=("CA101", "CA5")), {"CA101", "CA501", "CA502", "CA503"}),
        (Selection(select=("ALL",)), set(RULES)),
        (Selection(select=("ALL",), ignore=("CA1", "CA2")), {c for c in RULES if c[2] not in "12"}),
        (Selection(select=("CA1",), ignore=("CA1",)), set()),  # a tie: ignore wins
        (Selection(select=("CA101",), ignore=("CA1",)), {"CA101"}),  # the more specific selector wins
        (Selection(ignore=("CA1",), extend_select=("CA103",)), DEFAULTS - {"CA101", "CA102", "CA104", "CA105"}),
        (Selection(extend_select=("CA202",)), DEFAULTS | {"CA202"}),
    ],
)
def test_selection_by_prefix(layer, expected):
    assert resolve([layer]) == expected


def test_command_line_layer_overrides_the_config_layer():
    from_file = Selection(ignore=("CA101",))
    assert "CA101" not in resolve([from_file])
    assert "CA101" in resolve([from_file, Selection(extend_select=("CA101",))])
    assert resolve([from_file, Selection(select=("CA101",))]) == {"CA101"}


def test_unknown_selector_suggests_a_code():
    assert check_selector(" ca1 ") == "CA1"
    with pytest.raises(UserError, match="unknown rule selector `CA1011`") as error:
        check_selector("CA1011")
    assert "CA101" in error.value.hint


def test_threshold_precedence():
    assert settings(Options(), Options()).dense_share_threshold == 0.5
    assert settings(Options(dense_share_threshold=0.9), Options()).dense_share_threshold == 0.9
    assert settings(Options(dense_share_threshold=0.9), Options(dense_share_threshold=0.2)).dense_share_threshold == 0.2


def test_threshold_moves_the_flatten_head_finding():
    assert lint(HEAD, "CA101", threshold=0.99)  # the head holds 99.96%
    assert not lint(HEAD, "CA101", threshold=0.9999)


# --- pyproject.toml -----------------------------------------------------------------------------------


def test_nearest_pyproject_with_a_cnn_arch_table_wins(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.cnn-arch.lint]\nignore = ["CA5"]\n')
    inner = tmp_path / "models" / "small"
    inner.mkdir(parents=True)
    (tmp_path / "models" / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no cnn-arch table: skipped
    assert find_config(inner) == tmp_path / "pyproject.toml"
    options = load_config(find_config(inner))
    assert options.selection.ignore == ("CA5",)
    (inner / "pyproject.toml").write_text("[tool.cnn-arch]\n")  # a table without lint settings
    assert find_config(inner) == inner / "pyproject.toml"
    assert load_config(inner / "pyproject.toml") == Options()


def test_config_values(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.cnn-arch.lint]\nselect = ["CA1", "ca302"]\nextend-select = ["CA202"]\ndense-share-threshold = 0.8\n'
    )
    options = load_config(path)
    assert options.selection == Selection(select=("CA1", "CA302"), extend_select=("CA202",))
    assert options.dense_share_threshold == 0.8


@pytest.mark.parametrize(
    "body, message",
    [
        ('selct = ["CA1"]', "unknown setting `selct`"),
        ('select = "CA1"', "must be a list of rule codes"),
        ('select = ["CA8"]', "unknown rule selector `CA8`"),
        ("dense-share-threshold = 2", "must be a number from 0 to 1"),
        ("select = [", "is not valid TOML"),
    ],
)
def test_config_mistakes_name_the_file(tmp_path, body, message):
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.cnn-arch.lint]\n{body}\n")
    with pytest.raises(PathError, match=message) as error:
        load_config(path)
    assert error.value.path == str(path)


def test_explicit_config_needs_the_table(tmp_path):
    path = tmp_path / "lint.toml"
    path.write_text("[tool.other]\n")
    with pytest.raises(PathError, match=r"has no \[tool.cnn-arch.lint\] table"):
        load_config(path, explicit=True)


# --- macros and repeats ----------------------------------------------------------------------------------

BLOCKS = spec("""
    def block(f):
        conv f 3 padding=same bn relu
    input 32x32x3
    block 16
    block 32
    block 64
    gap
    dense 10 softmax
""")


def test_a_def_body_finding_is_reported_once_with_its_call_site():
    (finding,) = lint(BLOCKS, "CA302")
    assert finding.span.line == 2
    assert finding.notes[0] == "in expansion of `block 16` at line 4"
    assert finding.notes[1].startswith("found in all 3 expansions of this line")
    assert "16 fewer params here, 112 over its 3 expansions" in finding.help
    assert finding.fix is not None  # true for every call: one edit in the def fixes them all


def test_no_fix_when_the_finding_holds_for_some_expansions_only():
    text = spec("""
        input 32x32x3
        conv 32 3 padding=same x2
        bn
        gap
        dense 10 softmax
    """)
    (finding,) = lint(text, "CA302")
    assert finding.fix is None
    assert "no automatic fix" in finding.notes[-1]
