"""`cnn-arch train`, `evaluate` and `predict` as a user runs them: output, exit codes, user errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_images
from PIL import Image

from tests.conftest import one_cpu_device

pytestmark = pytest.mark.slow  # every test here trains (or reads) a model through the CLI


@pytest.fixture
def trained(finished_run):
    return finished_run[0]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Two PNG files (a horizontal-stripes image and a vertical one) and a text file posing as an image."""
    folder = tmp_path_factory.mktemp("images")
    x, _ = make_images(2, seed=5)
    paths = []
    for index, label in enumerate(("top", "middle")):
        path = folder / f"{label}.png"
        # Another mode, converted back on reading. The size stays: any resize blurs the 1-pixel stripes
        # the classes differ by into another class's image (resizing is tested with the data loader).
        Image.fromarray(x[index]).convert("RGB").save(path)
        paths.append(str(path))
    (folder / "notes.png").write_text("not an image")
    return paths, str(folder / "notes.png")


def test_the_trained_run_exports_to_onnx_with_predicts_probabilities(cli, tmp_path, trained):
    from tests.interop.test_onnx_export import round_trip

    x, _ = make_images(4, seed=6)
    round_trip(cli, trained, tmp_path, x[..., None])


def test_train_prints_the_summary_an_epoch_table_and_the_results(cli, tmp_path, tiny_spec, tiny_data):
    out = tmp_path / "run"
    result = cli(
        "train", str(tiny_spec), "--data", str(tiny_data), "--epochs", "2", "--batch-size", "16", "--out", str(out)
    )
    assert result.code == 0, result.err
    assert "Total params" in result.out  # the summary comes first, then the lint findings
    from archspec.lint import Settings, lint_source

    findings = lint_source(tiny_spec.read_text(), str(tiny_spec), Settings.default())
    assert findings and all(finding.code in result.out for finding in findings)
    # One line each (the concise format), with the count and where to see them in full.
    assert f"{len(findings)} lint finding" in result.out and f"(details: cnn-arch lint {tiny_spec})" in result.out
    assert sum(line.startswith(f"{tiny_spec}:") for line in result.out.splitlines()) == len(findings)
    assert result.out.index(findings[0].code) < result.out.index("Training on")
    assert f"{one_cpu_device()}: 86 train / 10 val / 30 test images, 3 classes" in result.out
    lines = result.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("epoch"))
    assert [lines[header + n].split()[0] for n in (1, 2)] == ["1", "2"]
    # The last line names the kept epoch, why it was kept, and the test accuracy.
    last = lines[-1]
    assert last.startswith("Model: epoch ") and "lowest validation loss" in last
    assert "test accuracy" in last and "on 30 images (the data's test split)" in last
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "metrics.jsonl",
        "curves.png",
        "results.json",
        "checkpoints",
        "best",
    }


def test_evaluate_scores_every_split_with_the_best_checkpoint(cli, trained):
    result = cli("evaluate", str(trained), "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["checkpoint"] == "best"
    assert {split: metrics["images"] for split, metrics in report["splits"].items()} == {
        "train": 86,
        "val": 10,
        "test": 30,
    }
    results = json.loads((trained / "results.json").read_text())
    assert report["splits"]["test"]["accuracy"] == pytest.approx(results["test"]["accuracy"])
    # Which epoch the model is, and why it was kept: results.json's reason.
    kept = f"epoch {results['epoch']} of 10, {results['kept_because']}"
    assert report["kept"] == kept and results["kept_because"].startswith("the lowest validation loss (")

    table = cli("evaluate", str(trained))
    assert table.code == 0
    assert table.out.splitlines()[0] == f"{trained} on {results_data(trained)}: best checkpoint, {kept}"
    assert [line.split()[0] for line in table.out.splitlines()[2:]] == ["train", "val", "test"]


def results_data(run_dir) -> str:
    return json.loads((run_dir / "config.json").read_text())["config"]["data"]


def test_evaluate_refuses_data_with_other_classes(cli, trained, tmp_path):
    other = tmp_path / "other.npz"
    x, y = make_images(12, seed=4)
    np.savez(other, x_train=x, y_train=y % 2)
    result = cli("evaluate", str(trained), "--data", str(other))
    assert result.code == 2
    assert "has classes 2 (0, 1), but the model was trained on 3 (top, middle, bottom)" in result.err


def test_predict_shows_the_top_classes_with_probabilities(cli, trained, images):
    paths, _ = images
    result = cli("predict", str(trained), *paths, "--top-k", "2")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == paths[0] and lines[3] == paths[1]
    assert lines[1].split()[0] == "top" and lines[4].split()[0] == "middle"
    assert all(line.strip().endswith("%") for line in lines[1:3] + lines[4:6])

    results = json.loads((trained / "results.json").read_text())
    assert (
        result.err == f"model: {trained}, best checkpoint, epoch {results['epoch']} of 10, {results['kept_because']}\n"
    )

    everything = json.loads(cli("predict", str(trained), paths[0], "--format", "json").out)
    probabilities = [entry["probability"] for entry in everything[0]["top"]]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("predict", "{run}", "{text}"), "notes.png: error: cannot be used: holds text, not image data"),
        (("predict", "{run}", "missing.png"), "missing.png: error: no such image file"),
        (("evaluate", "no-such-run"), "no-such-run: error: no such run folder"),
        (("evaluate", "{images}"), "is not a training run (no config.json)"),
    ],
)
def test_evaluate_and_predict_user_errors(cli, trained, images, arguments, message):
    text = images[1]
    folder = str(text).rsplit("/", 1)[0]
    result = cli(*(a.format(run=trained, text=text, images=folder) for a in arguments))
    assert result.code == 2
    assert message in result.err and "Traceback" not in result.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--augment", "blur"), "`--augment` must be one of flip, crop; got `blur`"),
        (("--batch-size", "1000"), "`--batch-size` (=1000) is larger than the 86 training images"),
        (("--val-split", "1.5"), "`--val-split` (=1.5) must be at least 0 and below 1"),
        (("--input", "9x9x1", "--epochs", "0"), "`--epochs` (=0) must be a whole number, at least 1"),
        (("--coordinator", "localhost:1234"), "missing --num-processes, --process-id"),
        (("--resume",), "no run of"),
    ],
)
def test_train_user_errors_exit_2_with_a_message(cli, tmp_path, tiny_spec, tiny_data, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    result = cli("train", str(tiny_spec), "--data", str(tiny_data), *arguments)
    assert result.code == 2
    assert message in result.err and "Traceback" not in result.err


def test_train_stops_with_exit_1_when_the_loss_diverges(cli, tmp_path, tiny_spec, tiny_data):
    result = cli(
        "train",
        str(tiny_spec),
        "--data",
        str(tiny_data),
        "--batch-size",
        "16",
        "--optimizer",
        "sgd",
        "--lr",
        "1e30",
        "--schedule",
        "constant",
        "--warmup-epochs",  # the first step's learning rate is 0: a good checkpoint before the blow-up
        "1",
        "--checkpoint-every",
        "1",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.code == 1
    assert "training diverged: the loss or a gradient became NaN or infinite in epoch 1" in result.err
    assert "hint: lower --lr" in result.err
    # The hint's command starts again from the last good checkpoint, which exists.
    command = next(line.strip() for line in result.err.splitlines() if "--init-from" in line)
    assert command.startswith(f"cnn-arch train {tiny_spec} --data {tiny_data} --input 8x8x1 --init-from ")
    checkpoint = command.split("--init-from ")[1].split()[0]
    assert (tmp_path / "run" / "checkpoints").is_dir() and checkpoint.startswith(str(tmp_path / "run" / "checkpoints"))


def test_resume_with_another_setting_is_refused(cli, trained, tiny_spec, tiny_data):
    result = cli("train", str(tiny_spec), "--data", str(tiny_data), "--out", str(trained), "--resume", "--lr", "0.1")
    assert result.code == 2
    assert "cannot resume" in result.err and "--lr: 0.05 → 0.1" in result.err
