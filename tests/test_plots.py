"""curves.png and compare.png read at a glance: integer epoch ticks, accuracy in percent, a y label on
every panel, markers, and the run settings in the figure."""

from __future__ import annotations

import json

import pytest

from archspec import plotting
from archspec.compare import plot_validation_curves
from archspec.train.plots import write_curves

ROWS = [
    {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy": 0.5 + e / 20, "val_accuracy": 0.4 + e / 20}
    for e in range(1, 8)
]
CONFIG = {"epochs": 7, "batch_size": 16, "lr": 0.05, "seed": 3, "input_shape": [8, 8, 1], "data": "/tmp/bands.npz"}


@pytest.fixture
def figures(monkeypatch):
    """The figures the plots save, kept open for the test to read (the PNG is still written)."""
    saved = []
    real = plotting.save

    def keep(figure, path, dpi):
        real(figure, path, dpi)
        figure.canvas.draw()  # tick labels are filled in at draw time
        saved.append(figure)

    monkeypatch.setattr(plotting, "save", keep)
    monkeypatch.setattr(plotting.pyplot(), "close", lambda figure: None)
    return saved


def _check_readable(figure, settings: str):
    for axes in figure.axes:
        assert axes.get_ylabel(), "every panel has a y label"
        assert axes.get_xlabel() == "epoch"
        ticks = [t for t in axes.get_xticks() if axes.get_xlim()[0] <= t <= axes.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert all(line.get_marker() not in (None, "None", "") for line in axes.lines)
    accuracy = next(a for a in figure.axes if "accuracy" in a.get_ylabel())
    labels = [t.get_text() for t in accuracy.get_yticklabels() if t.get_text()]
    assert labels and all(label.endswith("%") for label in labels), labels
    assert settings in [t.get_text() for t in figure.texts]


def test_curves_png_is_readable_and_shows_the_run_settings(tmp_path, figures):
    (tmp_path / "config.json").write_text(json.dumps({"config": CONFIG}))
    write_curves(ROWS, tmp_path / "curves.png", title="tiny")
    assert (tmp_path / "curves.png").stat().st_size > 0
    _check_readable(figures[0], "epochs 7 · batch 16 · lr 0.05 · seed 3 · input 8x8x1 · data bands.npz")


def test_compare_png_is_readable_and_shows_the_settings(tmp_path, figures):
    plot_validation_curves([("a", ROWS), ("b", ROWS[:5])], tmp_path / "compare.png", CONFIG)
    figure = figures[0]
    _check_readable(figure, "epochs 7 · batch 16 · lr 0.05 · seed 3 · input 8x8x1 · data bands.npz")
    markers = {line.get_marker() for line in figure.axes[0].lines}
    assert len(markers) == 2  # each model its own marker, not only its colour
