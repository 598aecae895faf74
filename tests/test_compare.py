"""`cnn-arch compare`: the static side-by-side table, its formats, and the trained comparison."""

from __future__ import annotations

import json

import pytest

from archspec.compare import summarize_run


def test_flatten_head_against_gap_head(cli):
    result = cli("compare", "flatten-head", "gap-head")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    params = next(i for i, line in enumerate(lines) if line.startswith("params"))
    assert "11,574,090" in lines[params] and "66,602" in lines[params]
    assert lines[params + 1].split() == ["│", "│", "174x", "fewer"]  # 11,574,090 / 66,602 = 173.8, under its value
    share = next(line for line in result.out.splitlines() if line.startswith("dense-head share"))
    assert "99.4%" in share and "0.0%" in share


def test_json_has_every_model_with_its_ratio(cli):
    models = json.loads(cli("compare", "flatten-head", "gap-head", "lenet5", "--format", "json").out)["models"]
    assert [m["name"] for m in models] == ["flatten-head", "gap-head", "lenet5"]
    assert [m["params"] for m in models] == [11_574_090, 66_602, 61_706]
    assert models[0]["params_ratio"] == 1.0
    assert abs(models[1]["params_ratio"] - 66_602 / 11_574_090) < 1e-12
    assert models[0]["findings"] >= 1  # at least the flatten-head finding
    assert all(m["trained"] == {} for m in models)


def test_markdown_table(cli):
    out = cli("compare", "flatten-head", "gap-head", "--format", "markdown").out
    assert out.splitlines()[0] == "| | flatten-head | gap-head |"
    assert "| params | 11,574,090 | 66,602 (174x fewer) |" in out


@pytest.mark.parametrize(
    "value, reference, said",
    [
        (66_602, 11_574_090, "174x fewer"),
        (61_706, 11_574_090, "188x fewer"),
        (1, 2_712, "2,712x fewer"),
        (25_636_712, 11_574_090, "2.22x more"),
        (1_120, 1_131, "0.97% fewer"),
        (122, 100, "22% more"),
        (5, 5, "same"),
    ],
)
def test_ratios_read_as_a_person_says_them(value, reference, said):
    from archspec.compare import ratio

    assert ratio(value, reference) == said


def test_input_override_applies_to_every_model(cli):
    models = json.loads(cli("compare", "flatten-head", "gap-head", "--input", "32x32x1", "--format", "json").out)
    assert [m["params"] for m in models["models"]] == [170_250, 66_026]


def test_needs_two_specs_and_reports_spec_errors(cli, tmp_path):
    one = cli("compare", "gap-head")
    assert one.code == 2 and "at least two specs" in one.err
    bad = tmp_path / "bad.arch"
    bad.write_text("input 8x8x1\nmaxpool 9\n")
    broken = cli("compare", "gap-head", str(bad))
    assert broken.code == 2 and f"{bad}:2:1: error:" in broken.err


def test_summarize_run_reads_best_values_gap_and_speed():
    rows = [
        {"epoch": 1, "train_accuracy": 0.5, "val_accuracy": 0.6, "val_loss": 1.0, "images_per_second": 10.0},
        {"epoch": 2, "train_accuracy": 0.9, "val_accuracy": 0.8, "val_loss": 0.5, "images_per_second": 100.0},
        {"epoch": 3, "train_accuracy": 1.0, "val_accuracy": 0.7, "val_loss": 0.7, "images_per_second": 120.0},
    ]
    trained = summarize_run(rows)
    assert trained["best_val_accuracy"] == 0.8
    assert trained["best_val_loss"] == 0.5
    assert abs(trained["gap"] - 0.3) < 1e-12  # last epoch: 1.0 train vs 0.7 val
    assert trained["images_per_second"] == 110.0  # the first (compiling) epoch is left out


@pytest.mark.slow  # trains two models
def test_trained_comparison_adds_accuracy_and_a_plot(cli, tmp_path):
    tiny = tmp_path / "tiny.arch"
    tiny.write_text("input 8x8x1\nconv 4 3 relu\ngap\ndense 10 softmax\n")
    flat = tmp_path / "flat.arch"
    flat.write_text("input 8x8x1\nconv 4 3 relu\nflatten\ndense 10 softmax\n")
    out = tmp_path / "runs"
    result = cli(
        "compare", str(tiny), str(flat), "--data", "digits", "--epochs", "1", "--out", str(out), "--format", "json"
    )
    assert result.code == 0, result.err
    models = json.loads(result.out)["models"]
    for model in models:
        assert set(model["trained"]) == {
            "best_val_accuracy",
            "best_val_loss",
            "gap",
            "images_per_second",
            "kept_epoch",
            "test_accuracy",
        }
        assert 0.0 <= model["trained"]["best_val_accuracy"] <= 1.0
        assert model["trained"]["kept_epoch"] == 1  # the epoch whose model each run keeps
    assert (out / "compare.png").stat().st_size > 0
    assert f"validation curves: {out / 'compare.png'}" in result.err  # names the PNG it wrote
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["1-tiny", "2-flat"]
