"""`cnn-arch train` pauses Python's garbage collector while it starts (`archspec.train.collector`): the
collection must come back at the first step, or a long run would keep every cycle of garbage it
makes, and a collector its caller turned off stays off."""

from __future__ import annotations

import gc

import pytest

from archspec.train import collector
from archspec.train.loop import train_and_evaluate

pytestmark = pytest.mark.slow  # trains the tiny model in-process


@pytest.fixture
def collector_on():
    yield
    collector.resume()
    gc.enable()


def test_the_collector_paused_for_the_start_runs_again_from_the_first_step(
    tiny_config, tmp_path, collector_on, monkeypatch
):
    from archspec.train import setup

    during_start = []
    prepare = setup.prepare

    def watched(*args, **kwargs):
        during_start.append(gc.isenabled())
        return prepare(*args, **kwargs)

    monkeypatch.setattr("archspec.train.loop.prepare", watched)
    collector.pause()
    train_and_evaluate(tiny_config(epochs=1), tmp_path / "run")
    assert during_start == [False]
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off(tiny_config, tmp_path, collector_on):
    gc.disable()
    collector.pause()
    train_and_evaluate(tiny_config(epochs=1), tmp_path / "run")
    assert not gc.isenabled()
