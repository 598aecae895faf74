"""Shared pieces of the training tests: a tiny spec, a tiny dataset, and runs of `cnn-arch` in a
subprocess (for what needs a process of its own: signals, kills, several devices or processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Small enough to compile and train in a second, with every kind of state a checkpoint must carry:
# BatchNorm statistics, a dropout RNG stream, optimizer moments.
TINY_SPEC = """\
input 8x8x1
conv 4 3 relu
bn
gap
dropout 0.2
dense 3 softmax
"""


def make_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 grayscale images of 3 classes (horizontal stripes, vertical stripes, a checkerboard), each
    shifted by a random phase and noisy: a 3x3 convolution and global pooling can tell them apart."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    rows, columns = np.indices((8, 8))
    patterns = [rows % 2, columns % 2, (rows + columns) % 2]
    images = np.empty((count, 8, 8), np.uint8)
    for index, label in enumerate(labels):
        stripes = (patterns[label] + rng.integers(2)) % 2
        images[index] = np.clip(stripes * 160 + rng.integers(0, 90, (8, 8)), 0, 255)
    return images, labels.astype(np.int64)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A .npz of 96 training and 30 test images in 3 classes."""
    path = tmp_path_factory.mktemp("data") / "bands.npz"
    x_train, y_train = make_images(96, seed=1)
    x_test, y_test = make_images(30, seed=2)
    np.savez(
        path,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=np.array(["top", "middle", "bottom"]),
    )
    return path


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.arch"
    path.write_text(TINY_SPEC, encoding="utf-8")
    return path


@pytest.fixture
def tiny_config(tiny_data):
    """Makes a TrainConfig of the tiny model on the tiny data: 2 epochs of batch 16 unless changed."""
    from archspec.train.config import TrainConfig

    def make(**changes):
        settings = {
            "spec": "tiny",
            "spec_text": TINY_SPEC,
            "input_shape": (8, 8, 1),
            "data": str(tiny_data),
            "epochs": 2,
            "batch_size": 16,
            "lr": 0.01,
            **changes,
        }
        return TrainConfig(**settings)

    return make


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_data):
    """A run of 10 epochs of the tiny model, shared by the tests that only read it: (folder, outcome)."""
    from archspec.train.config import TrainConfig
    from archspec.train.loop import train_and_evaluate

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    config = TrainConfig(
        spec="tiny", spec_text=TINY_SPEC, input_shape=(8, 8, 1), data=str(tiny_data), epochs=10, batch_size=16, lr=0.05
    )
    return run_dir, train_and_evaluate(config, run_dir)


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment without XLA_FLAGS (JAX reads them at import), plus `extra`."""
    env = {name: value for name, value in os.environ.items() if name != "XLA_FLAGS"}
    env.update(NO_COLOR="1", COLUMNS="200", PYTHONUNBUFFERED="1", **extra)
    return env


def cnn_arch(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """Start `python -m cnn_arch ARGS...`."""
    return subprocess.Popen(
        [sys.executable, "-m", "cnn_arch", *map(str, args)],
        env=env or subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def final_state(run_dir: Path):
    """The model (parameters and evaluation statistics) of the run's latest checkpoint, as numpy arrays."""
    from archspec.train.inference import load_run

    return plain(load_run(run_dir, "last").model)


def plain(tree):
    """Numpy copies of a pytree's arrays, random keys as their raw bits."""
    import jax

    def convert(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        return np.asarray(leaf)

    return jax.tree.map(convert, tree)


def assert_bitwise_equal(a, b) -> None:
    import jax

    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()
