"""Data parallelism: a run sharded over 4 devices matches the single-device run, and two processes
joined by jax.distributed train in lockstep. Each needs fresh processes (JAX reads its device flags
and joins a cluster only once)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_SPEC, subprocess_env

pytestmark = pytest.mark.slow  # trains in several processes

SETTINGS = {
    "spec": "tiny",
    "spec_text": TINY_SPEC,
    "input_shape": [8, 8, 1],
    "epochs": 3,
    "batch_size": 8,
    "lr": 0.05,
    "augment": ["flip", "crop"],
}

SHARDED_VS_SINGLE = """
import json, sys
import jax, numpy as np
from archspec.train.config import TrainConfig
from archspec.train.distributed import make_mesh
from archspec.train.loop import train_and_evaluate

settings, out = json.loads(sys.argv[1]), sys.argv[2]
config = TrainConfig.from_json(settings)
single = train_and_evaluate(config, out + "/single", mesh=make_mesh(jax.devices()[:1]))
sharded = train_and_evaluate(config, out + "/sharded", mesh=make_mesh())

def values(state):  # parameters and BatchNorm statistics (not the RNG streams)
    return [leaf for leaf in jax.tree.leaves((state.params, state.model_state))
            if jax.numpy.issubdtype(leaf.dtype, jax.numpy.floating)]

pairs = list(zip(values(single.state), values(sharded.state)))
print(json.dumps({
    "devices": [len(pairs[0][0].sharding.device_set), len(pairs[0][1].sharding.device_set)],
    "largest_difference": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs),
    "largest_value": max(float(np.max(np.abs(np.asarray(a)))) for a in jax.tree.leaves(single.state.params)),
    "accuracy": [single.results["test"]["accuracy"], sharded.results["test"]["accuracy"]],
}))
"""

ONE_OF_TWO_PROCESSES = """
import json, sys
import jax, numpy as np
from archspec.train import distributed
from archspec.train.config import TrainConfig
from archspec.train.loop import train_and_evaluate

settings, out, port, process_id = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
distributed.join(distributed.Cluster(f"127.0.0.1:{port}", 2, process_id))
outcome = train_and_evaluate(TrainConfig.from_json(settings), out + "/run")
leaves = [np.asarray(leaf.addressable_data(0)) for leaf in jax.tree.leaves(outcome.state.params)]
np.savez(f"{out}/params-{process_id}.npz", *leaves)
print(json.dumps({"devices": jax.device_count(), "local": jax.local_device_count(), "step": int(outcome.state.step)}))
"""


def run_python(code: str, *args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_sharded_over_four_devices_matches_one_device(tmp_path, tiny_data):
    settings = json.dumps({**SETTINGS, "data": str(tiny_data)})
    env = subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=4")
    process = run_python(SHARDED_VS_SINGLE, settings, str(tmp_path), env=env)
    output, err = process.communicate(timeout=240)
    assert process.returncode == 0, err
    report = json.loads(output.splitlines()[-1])
    assert report["devices"] == [1, 4]
    # Same batches, same random draws: only the order of float additions differs.
    assert report["largest_difference"] <= 1e-4 * max(1.0, report["largest_value"])
    assert report["accuracy"][0] == report["accuracy"][1]


def test_two_processes_train_in_lockstep(tmp_path, tiny_data):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    settings = json.dumps({**SETTINGS, "data": str(tiny_data)})
    processes = [
        run_python(ONE_OF_TWO_PROCESSES, settings, str(tmp_path), port, str(index), env=subprocess_env())
        for index in range(2)
    ]
    outputs = [process.communicate(timeout=240) for process in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err
    reports = [json.loads(output.splitlines()[-1]) for output, _ in outputs]
    assert reports[0] == reports[1] == {"devices": 2, "local": 1, "step": 30}
    first, second = (np.load(tmp_path / f"params-{index}.npz") for index in range(2))
    assert len(first.files) == len(second.files) > 0
    for name in first.files:
        assert first[name].tobytes() == second[name].tobytes()
    # One run folder, written by process 0 alone.
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["epoch"] for row in rows] == [1, 2, 3]
