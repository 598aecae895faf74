"""Run folders as `cnn-arch train` leaves them, made without training: for the tests of what reads a
run (export, evaluate, predict), which need its layout and a model, not a trained one. Compiling a
ResNet-50 train step to make one took most of a minute."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np


def untrained_run(run_dir: Path, spec_text: str, name: str, input_shape, class_names, *, seed: int = 0) -> Path:
    """A run folder of `spec_text` holding its initial weights as the best checkpoint, with random
    BatchNorm statistics (means around 0, variances 0.5 to 2) so that inference uses real ones."""
    import jax

    from archspec.compile import compile_spec
    from archspec.train import compile_cache, run, steps
    from archspec.train.checkpoint import Checkpoints
    from archspec.train.config import TrainConfig

    config = TrainConfig(spec=name, spec_text=spec_text, input_shape=tuple(input_shape), epochs=1)
    nothing = np.zeros(0, np.int32)
    dataset = types.SimpleNamespace(
        source="untrained", fingerprint="untrained", class_names=tuple(class_names), skipped=(),
        y_train=nothing, y_val=nothing, y_test=nothing,
    )  # fmt: skip
    run_dir.mkdir(parents=True)
    run.create(run_dir, config, dataset)
    typed = compile_spec(spec_text, name, tuple(input_shape))
    # compiled as `train` compiles it: one function, where op by op a ResNet-50 compiled 128 (15 s)
    model = jax.jit(lambda: steps.init_model(typed, seed=seed), compiler_options=compile_cache.quick_options())()
    rng = np.random.default_rng(seed)

    def statistic(path, value):
        key = getattr(path[-1], "key", "")
        if key == "mean":
            return rng.normal(0.0, 0.5, np.shape(value)).astype(np.float32)
        if key == "var":
            return rng.uniform(0.5, 2.0, np.shape(value)).astype(np.float32)
        return value

    model = model._replace(model_state=jax.tree_util.tree_map_with_path(statistic, model.model_state))
    checkpoints = Checkpoints(run_dir)
    try:
        checkpoints.save(0, {"model": model._asdict()}, {"epoch": 0, "step": 0}, best=True)
        checkpoints.wait()
    finally:
        checkpoints.close()
    return run_dir
