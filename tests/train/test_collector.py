"""`cnn-arch train` pauses Python's garbage collector while it starts (`archspec.train.collector`): the
collection must come back at the first step, or a long run would keep every cycle of garbage it
makes, without walking the start's objects again, and a collector its caller turned off stays off."""

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
    gc.unfreeze()  # this test process's objects back in its collections


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
    # What the start made is left out of later collections (they walked it all: 0.1 s at the first
    # step), and garbage made since is collected.
    assert gc.get_freeze_count() > 10_000
    cycle = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


def test_a_collector_the_caller_turned_off_stays_off(tiny_config, tmp_path, collector_on):
    gc.disable()
    collector.pause()
    train_and_evaluate(tiny_config(epochs=1), tmp_path / "run")
    assert not gc.isenabled()
