"""benchmarks/bench_cpu_devices.py's per-device BatchNorm (`--per-device-bn`), the experiment that
showed the synchronization of BatchNorm statistics across devices costs nothing measurable: it must
compute what PyTorch's DDP computes without SyncBatchNorm, each device's half of the batch
normalized by its own statistics, or its timing says nothing. The reference is Flax's own
`nnx.BatchNorm` applied to each half, and to the whole batch for the moving statistics."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

BENCHMARK = Path(__file__).parents[1] / "benchmarks" / "bench_cpu_devices.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("bench_cpu_devices", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_per_device_batch_norm_normalizes_each_half_as_flax_does_on_it_alone(monkeypatch):
    x = jnp.asarray(np.random.default_rng(0).normal(2.0, 3.0, (8, 5, 5, 4)), jnp.float32)
    x = x.at[4:].multiply(4.0)  # the halves differ, so per-half and whole-batch statistics differ

    def fresh():
        return nnx.BatchNorm(4, momentum=0.9, rngs=nnx.Rngs(0))

    halves = [fresh()(x[:4], use_running_average=False), fresh()(x[4:], use_running_average=False)]
    whole = fresh()
    synced = whole(x, use_running_average=False)
    # the benchmark patches nnx.BatchNorm; monkeypatch puts Flax's own back after the test
    monkeypatch.setattr(nnx.BatchNorm, "__call__", nnx.BatchNorm.__call__)
    _benchmark()._batch_norm_per_device(2)
    grouped = fresh()
    y = grouped(x, use_running_average=False)

    np.testing.assert_allclose(y, jnp.concatenate(halves), atol=1e-5)
    assert not np.allclose(y, synced, atol=1e-2)  # not the whole batch's normalization
    # the moving statistics take the whole batch's mean and variance, as synchronized BatchNorm's do
    np.testing.assert_allclose(grouped.mean[...], whole.mean[...], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grouped.var[...], whole.var[...], rtol=1e-5)
    # inference uses the moving statistics, unchanged by the patch
    np.testing.assert_allclose(grouped(x, use_running_average=True), whole(x, use_running_average=True), atol=1e-5)


TINY = """input 8x8x1
conv 4 3 padding=same relu
gap
dense 3 softmax
"""


@pytest.mark.slow
def test_two_processes_averaging_in_shared_memory_take_the_whole_batchs_steps(tmp_path):
    """The shared-memory pair (`--why`), whose speed docs/performance.md weighs a process per core
    by, must train as one device does on the whole batch: each process its half, the gradients
    averaged (a model without BatchNorm, so the halves' statistics do not enter)."""
    benchmark = _benchmark()
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    half = {"spec": str(spec), "input": "8x8x1", "batch": 4, "devices": 1, "weights": True}
    whole = benchmark._run({**half, "batch": 8})  # 21 AdamW steps on one device, the whole batch
    alone = benchmark._run(half)  # the same steps on the first half of it only
    cores = (sorted(os.sched_getaffinity(0)) * 2)[:2]
    for split in (False, True):
        workers = benchmark._shared_memory_pair(half, cores, whole["params"], split=split)
        for worker in workers:
            np.testing.assert_allclose(worker["weights"], whole["weights"], atol=1e-5)
            assert not np.allclose(worker["weights"], alone["weights"], atol=1e-3)
