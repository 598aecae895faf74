"""How far apart one device and several end: the same run (spec, data, seed, batches) on 1 and on 2
CPU devices (XLA host devices), compared weight by weight and by accuracy.

    python benchmarks/devices_drift.py                 # gap-head (BatchNorm) and lenet5, 15 epochs each
    python benchmarks/devices_drift.py --specs gap-head --epochs 5

Data parallelism changes only the order of the float additions (each device sums its half of the
batch, then the halves are added); a model without BatchNorm stays within float rounding, but with
BatchNorm and Adam the rounding is amplified step after step (Adam divides by the square root of
small second moments), so after a few hundred steps the weights differ measurably. Prints, per spec:
the steps, the largest difference of any weight relative to that tensor's largest value, and the
test accuracy of both runs' kept models.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RUN = r"""
import json, sys
import jax, numpy as np
from archspec.train.config import TrainConfig
from archspec.train.loop import train_and_evaluate
from cnn_arch.cli.common import read_target

folder, spec, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
name, text = read_target(spec)
config = TrainConfig(spec=name, spec_text=text, input_shape=(16, 16, 1), epochs=epochs, batch_size=32)
outcome = train_and_evaluate(config, folder + "/run")
np.savez(folder + "/params.npz", *[np.asarray(leaf) for leaf in jax.tree.leaves(outcome.state.params)])
print(json.dumps({"devices": jax.device_count(), "steps": int(outcome.state.step),
                  "test": outcome.results["test"]["accuracy"]}))
"""


def run(folder: Path, spec: str, epochs: int, devices: int) -> tuple[dict, list[np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(folder), spec, str(epochs)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"{spec} on {devices} devices failed:\n{done.stderr[-3000:]}")
    saved = np.load(folder / "params.npz")
    return json.loads(done.stdout.splitlines()[-1]), [saved[f"arr_{i}"] for i in range(len(saved.files))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=["gap-head", "lenet5"])
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; digits at 16x16, batch 32")
    with tempfile.TemporaryDirectory() as folder:
        for spec in args.specs:
            one, weights_one = run(Path(folder) / f"{spec}-1", spec, args.epochs, 1)
            two, weights_two = run(Path(folder) / f"{spec}-2", spec, args.epochs, 2)
            relative = max(
                float(np.abs(a - b).max() / max(float(np.abs(a).max()), 1e-12))
                for a, b in zip(weights_one, weights_two, strict=True)
            )
            print(
                f"{spec}: {one['steps']} steps; largest weight difference {relative:.2e} of its tensor's largest "
                f"value; test accuracy {one['test']:.2%} on 1 device, {two['test']:.2%} on 2"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
