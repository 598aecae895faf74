"""The persistent compilation cache of `cnn-arch train`: where it lives, that a second run loads its
train step from it (and trains bitwise the same model), and that it never stops a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import assert_bitwise_equal, cnn_arch, final_state, subprocess_env
from data_helpers import noise_rgb, save

from archspec import devices
from archspec.train import compile_cache
from tests.conftest import PER_CORE


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"CNN_ARCH_CACHE_DIR": "/data/cache", "XDG_CACHE_HOME": "/xdg"}, "/data/cache/jax"),
        ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/cnn-arch/jax"),
        ({}, "~/.cache/cnn-arch/jax"),
    ],
    ids=["CNN_ARCH_CACHE_DIR", "XDG_CACHE_HOME", "home"],
)
def test_the_cache_lives_beside_the_data_cache(monkeypatch, variables, expected):
    for name in ("CNN_ARCH_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    from archspec.train.data.folders import default_cache_dir

    assert compile_cache.default_dir() == Path(expected).expanduser()
    assert compile_cache.default_dir().parent == default_cache_dir().parent


@pytest.fixture
def no_cache_yet():
    """This process as one where nothing set a cache directory (an in-process `cli("train", ...)` of
    another test may have)."""
    import jax

    before = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    yield
    jax.config.update("jax_compilation_cache_dir", before)


def test_an_unwritable_cache_directory_is_a_warning_and_leaves_the_cache_off(tmp_path, no_cache_yet):
    import jax

    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    warning = compile_cache.enable(blocker / "jax")
    assert warning is not None and str(blocker / "jax") in warning and "cannot be written" in warning
    assert "--no-compile-cache" in warning
    assert jax.config.jax_compilation_cache_dir is None


def test_the_cache_keeps_its_most_recently_used_entries_within_its_size(tmp_path):
    import os

    folder = tmp_path / "jax"
    folder.mkdir()
    for age, name in enumerate(["newest", "recent", "old", "oldest"]):
        entry = folder / f"{name}-cache"
        entry.write_bytes(b"x" * 1000)
        os.utime(entry, (1_000_000 - age * 100, 1_000_000 - age * 100))  # (access, modification)
    read_lately = folder / "oldest-cache"  # written first, read since: kept before the written-later
    os.utime(read_lately, (1_000_000 - 50, 1_000_000 - 300))
    (folder / ".lockfile").write_bytes(b"")

    compile_cache.trim(folder, max_bytes=2500)
    assert sorted(path.name for path in folder.iterdir()) == [".lockfile", "newest-cache", "oldest-cache"]
    compile_cache.trim(folder, max_bytes=2500)  # within its size: nothing more goes
    assert len(list(folder.iterdir())) == 3
    compile_cache.trim(tmp_path / "missing")  # no folder: nothing to do, no error


def test_jax_reads_the_cache_without_a_lock(tmp_path, no_cache_yet):
    # JAX's own size limit takes a file lock around every read, which the processes of a run
    # polled for every 50 ms (docs/performance.md): the limit is kept by `trim` instead.
    import jax

    assert compile_cache.enable(tmp_path / "jax") is None
    assert jax.config.jax_compilation_cache_max_size == -1


@pytest.fixture
def run(tmp_path, tiny_spec, tiny_data):
    """Runs `cnn-arch train` on the tiny model with a cache directory: (run folder, stdout, stderr)."""

    def start(name: str, cache: Path, *extra: str, per_core: bool = False):
        out = tmp_path / name
        env = subprocess_env(CNN_ARCH_CACHE_DIR=str(cache), JAX_LOG_COMPILES="1", **(PER_CORE if per_core else {}))
        args = ("train", tiny_spec, "--data", tiny_data, "--epochs", 2, "--batch-size", 16, "--out", out, *extra)
        process = cnn_arch(*args, env=env)
        output, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        return out, output, err

    return start


@pytest.mark.slow
def test_a_second_run_loads_its_train_step_from_the_cache_and_trains_the_same_model(tmp_path, run):
    cache = tmp_path / "cache"
    first, output, err = run("first", cache, per_core=True)
    entries = {path.name.split("-")[0] for path in (cache / "jax").glob("*-cache")}
    # JAX's own threshold (1 s) would leave the small CPU steps out: every one of them is kept. The
    # tiny model trains in a process per core on a multi-core CPU: its step is in two halves there.
    steps = [f"jit_{name}" for name in _step_names(output)]
    assert {*steps, "jit_epoch_order", "jit_evaluate"} <= entries
    # The first run compiles (a process per core: rank 0 the gradients' half, and it loads the
    # update's half, which the other process compiled, from the cache).
    assert f"Persistent compilation cache hit for '{steps[0]}'" not in err

    second, output, err = run("second", cache, per_core=True)
    assert all(f"Persistent compilation cache hit for '{step}'" in err for step in steps)
    assert "Compiled the train step in" in output
    assert_bitwise_equal(final_state(second), final_state(first))


@pytest.mark.slow
def test_the_cache_is_never_a_reason_to_stop(tmp_path, run):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    _, _, err = run("unwritable", blocker)
    assert f"warning: the compilation cache {blocker / 'jax'} cannot be written" in err
    assert "Traceback" not in err

    off = tmp_path / "unused-cache"
    _, _, err = run("off", off, "--no-compile-cache")
    assert not off.exists() and "Persistent compilation cache" not in err


@pytest.mark.slow
@pytest.mark.parametrize("start", ["in-memory", "streamed", "init-from"])
def test_the_train_step_compiles_once_before_the_first_epoch(tmp_path, tiny_spec, start):
    """The compile time printed is the whole of it: epoch 1 compiles nothing more (JAX logs every
    compile). A run whose data is on the device compiles its step on a thread of its own while it
    prepares, for the shapes of its arguments (after the weights, from `--init-from`): the loop's
    first call must find that executable."""
    for i in range(48):
        save(tmp_path / "d" / ("top", "middle", "bottom")[i % 3] / f"{i}.png", noise_rgb(i, size=12))
    memory = ("--data-memory", "1KB") if start == "streamed" else ()
    env = subprocess_env(CNN_ARCH_CACHE_DIR=str(tmp_path / "cache"), JAX_LOG_COMPILES="1", **PER_CORE)
    args = ("train", tiny_spec, "--data", tmp_path / "d", "--epochs", 2, "--batch-size", 16, *memory)
    if start == "init-from":
        first = cnn_arch(*args, "--out", tmp_path / "first", "--no-compile-cache", env=env)
        assert first.communicate(timeout=300) and first.returncode == 0
        args = (*args, "--init-from", tmp_path / "first")
    process = cnn_arch(*args, "--out", tmp_path / "run", "--no-compile-cache", env=env)
    output, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert ("data: streaming" in output) == (start == "streamed")
    assert "Compiled the train step in" in output
    # A process per core (the data in memory, 2 cores) compiles the step's two halves; one process
    # (streamed data) the whole step.
    assert (_step_names(output) == ("train_gradients", "train_update")) == (start != "streamed" and CORES > 1)
    # The data order compiles beside the step (in a process per core, by one process alone).
    for name in (*_step_names(output), "epoch_order"):
        assert err.count(f"Compiling jit({name})") == 1, err


CORES = devices.usable_cores()


def _step_names(output: str) -> tuple[str, ...]:
    """The jitted functions of a train step, by the run header: a process per core splits it in two."""
    return ("train_gradients", "train_update") if "one per core" in output else ("train_step",)


def _compiled_convolution(options):
    """The compiled text of a 3x3 convolution's forward pass and both gradients."""
    import jax
    import numpy as np
    from jax import lax

    def loss(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")).sum()

    x, w = np.ones((2, 8, 8, 32), np.float32), np.ones((3, 3, 32, 32), np.float32)
    return jax.jit(jax.grad(loss, argnums=(0, 1)), compiler_options=options).lower(x, w).compile().as_text()


def _ynn_convolutions(text: str) -> int:
    """How many convolutions of the compiled text XLA:CPU handed to YNNPACK."""
    return sum("__ynn_fusion" in line and "conv_general_dilated" in line for line in text.splitlines())


def test_the_model_runs_its_convolutions_outside_ynnpack_on_the_cpu():
    # YNNPACK's convolutions are the slow ones here (docs/performance.md): the model's functions
    # leave them to XLA. Were an upgraded jaxlib to ignore or refuse the option, this fails.
    assert _ynn_convolutions(_compiled_convolution(None)) > 0  # XLA's default: YNNPACK's
    options = compile_cache.model_options()
    assert options == compile_cache.MODEL_COMPILE
    assert _ynn_convolutions(_compiled_convolution(options)) == 0


def test_an_xla_that_refuses_the_option_compiles_with_its_defaults(monkeypatch):
    monkeypatch.setattr(compile_cache, "MODEL_COMPILE", {"xla_cpu_experimental_ynn_fusion_type": "NO_SUCH_TYPE"})
    for cached in (compile_cache._model_options, compile_cache._every_option_known, compile_cache.quick_options):
        cached.cache_clear()
    try:
        assert compile_cache.model_options() is None
        assert compile_cache.quick_options() == compile_cache.QUICK_CPU_COMPILE  # the others are still taken
    finally:
        for cached in (compile_cache._model_options, compile_cache._every_option_known, compile_cache.quick_options):
            cached.cache_clear()


def test_the_quick_options_give_the_weights_xla_s_own_emitters_give():
    # The one-off functions compile without XLA:CPU's MLIR fusion emitters (faster to compile): a
    # seed must still give bitwise the weights it gave before. Were an upgraded jaxlib to round the
    # initializers' arithmetic differently there, this fails.
    import functools

    import jax
    import numpy as np

    from archspec import templates
    from archspec.compile import compile_spec
    from archspec.train import steps

    assert compile_cache.quick_options() == compile_cache.QUICK_CPU_COMPILE  # on the CPU, this XLA takes them
    typed = compile_spec(templates.path("gap-head").read_text(), "gap-head", (32, 32, 1))
    weights = [
        jax.tree.leaves(jax.jit(functools.partial(steps.init_model, typed, seed=3), compiler_options=options)())
        for options in (compile_cache.QUICK_COMPILE, compile_cache.quick_options())
    ]
    assert len(weights[0]) > 4
    keys = [jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) for leaf in weights[0]]  # dropout streams
    plain = [[jax.random.key_data(leaf) if key else leaf for leaf, key in zip(w, keys)] for w in weights]
    assert all(np.array_equal(a, b) for a, b in zip(*plain, strict=True))


@pytest.mark.parametrize(
    ("layer", "older"),
    [("conv 8 3", True), ("dwconv 3", False), ("sepconv 8 3", False), ("conv 8 3 groups=4", False)],
)
def test_a_model_without_grouped_convolutions_compiles_with_the_older_emitters(layer, older):
    # XLA:CPU's older emitters compile gap-head's step in half the time and run it faster, but run a
    # depthwise layer's fused loops several times slower (MobileNetV2 12% slower, docs/performance.md).
    # Were Flax to keep a convolution's groups where this does not look, MobileNetV2 would lose that
    # unnoticed: this fails instead.
    from archspec.compile import compile_spec
    from archspec.train import steps

    typed = compile_spec(f"input 16x16x8\n{layer}\ngap\ndense 2\n", "spec", (16, 16, 8))
    options = compile_cache.model_options(steps.model_graphdef(typed))
    assert options == (
        {**compile_cache.MODEL_COMPILE, **compile_cache.OLDER_EMITTERS} if older else compile_cache.MODEL_COMPILE
    )
    assert compile_cache.model_options() == compile_cache.MODEL_COMPILE  # the optimizer's, which has no model
