"""What each program of a `cnn-arch train` start costs XLA to compile, alone, on one core.

    python benchmarks/bench_compile_programs.py                                   # gap-head, batch 32
    python benchmarks/bench_compile_programs.py --spec mobilenet-v2 --input 64x64x3
    python benchmarks/bench_compile_programs.py --options '{"xla_cpu_use_fusion_emitters": false}'

A cold start compiles several programs at once in two processes (docs/performance.md, "Time to the
first step"), so their compile times in the run's own log are shares of two busy cores. This runs one
training step with `JAX_DUMP_IR_TO`, then compiles each program's StableHLO again in a fresh process
pinned to one core (XLA's `compile_and_load`, as JAX calls it, with the train step's compiler options
and `--options` on top), a few times each, and prints the fastest and slowest time and the number of
kernels (fusions) XLA made: what a change to a program, or to the options, saves in CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# The programs of a process-per-core start, and of a one-process start, that the first step waits for.
PROGRAMS = ("train_gradients", "train_update", "train_step", "init_model", "init_train_state", "epoch_order")

COMPILE_ONE = r"""
import json, sys, time
import jax, jax.extend
from jax._src import compiler
from jax._src.lib import xla_client as xc
text = open(sys.argv[1]).read()
options = json.loads(sys.argv[2])
backend = jax.extend.backend.get_backend()
devices = xc.DeviceList(tuple(backend.devices()[:1]))
times = []
for _ in range(int(sys.argv[3])):
    compile_options = compiler.get_compile_options(num_replicas=1, num_partitions=1, env_options_overrides=options)
    started = time.perf_counter()
    executable = backend.compile_and_load(text, devices, compile_options)
    times.append(time.perf_counter() - started)
print(json.dumps({"times": times, "kernels": executable.hlo_modules()[0].to_string().count(" fusion(")}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="gap-head")
    parser.add_argument("--input", default="32x32x1")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--options", default="{}", help="XLA compiler options (JSON) on top of the train step's")
    parser.add_argument("--repeats", type=int, default=2, help="compilations of each program (in one process)")
    parser.add_argument("--core", type=int, default=0, help="the core the compilations are pinned to")
    args = parser.parse_args()
    extra = json.loads(args.options)
    with tempfile.TemporaryDirectory(prefix="bench-compile-programs-") as tmp:
        folder = Path(tmp)
        dumps = dump_programs(args, folder)
        print(
            f"{args.spec} at {args.input}, batch {args.batch_size}, on core {args.core}, options {extra or 'as train'}"
        )
        print("| program | compile (s) | kernels |\n|---|---|---|")
        for name, path in dumps.items():
            outcome = compile_alone(path, {**model_options(name, args), **extra}, args)
            times = outcome["times"]
            print(f"| {name} | {min(times):.2f}-{max(times):.2f} | {outcome['kernels']} |", flush=True)
    return 0


def dump_programs(args, folder: Path) -> dict[str, Path]:
    """One training step of the spec on random images (a 10-way head, as `bench_torch_cpu.py` trains
    the templates), its programs' StableHLO written by JAX."""
    from bench_torch_cpu import Model, prepare

    spec, data = prepare("step", Model(args.spec, args.input, args.batch_size, args.batch_size), folder)
    command = [sys.executable, "-m", "cnn_arch", "train", str(spec), "--data", str(data), "--input", args.input]
    command += ["--batch-size", str(args.batch_size), "--epochs", "1", "--val-split", "0", "--test-split", "0"]
    command += ["--summary", "none", "--out", str(folder / "run")]
    env = {**os.environ, "JAX_DUMP_IR_TO": str(folder / "ir"), "CNN_ARCH_CACHE_DIR": str(folder / "cache")}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    found = {}
    for path in sorted((folder / "ir").glob("*_compile.mlir")):
        name = path.name.split("_jit_", 1)[1].removesuffix("_compile.mlir")
        if name in PROGRAMS:
            found.setdefault(name, path)  # every process dumps the same program: one is enough
    return found


def model_options(name: str, args) -> dict:
    """The compiler options `train` gives the program (the model's, the update's or the quick ones)."""
    from archspec.train import compile_cache, steps
    from cnn_arch.cli.common import compile_target

    if name == "train_update":  # a process per core's optimizer
        return dict(compile_cache.MODEL_COMPILE)
    if name in ("train_gradients", "train_step"):
        graphdef = steps.model_graphdef(compile_target(args.spec, args.input))
        return dict(compile_cache.model_options(graphdef) or {})
    return dict(compile_cache.QUICK_CPU_COMPILE)


def compile_alone(path: Path, options: dict, args) -> dict:
    from archspec.train import cores

    # As a process per core compiles: one thread, no loop unrolling.
    env = {**os.environ, "PJRT_NPROC": "1", "XLA_FLAGS": " ".join(cores.PER_CORE_FLAGS.values())}
    command = ["taskset", "-c", str(args.core), sys.executable, "-c", COMPILE_ONE, str(path), json.dumps(options)]
    done = subprocess.run([*command, str(args.repeats)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"compiling {path.name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    raise SystemExit(main())
