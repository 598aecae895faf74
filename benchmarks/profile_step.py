"""Where a train step's time goes on the CPU, by XLA kernel kind.

    python benchmarks/profile_step.py --spec mobilenet-v2 --input 64x64x3 --batch 32

A bare train step (the loss's gradient and `optax.adamw`, as `bench_cpu_devices.py` times it) on one
JAX CPU device threaded over the cores, compiled with the options `train` gives the model's functions
(`compile_cache.model_options(graphdef)`) plus `xla_cpu_enable_xprof_traceme`, so that XLA:CPU records each
kernel it runs. `--steps` steps run under `jax.profiler.trace`, and its Perfetto trace is read back:
kernel time per step, summed over XLA's threads, grouped by the kernel's name without its number
(`pad_slice_fusion.136` -> `pad_slice_fusion`; `ynn_fusion` is YNNPACK's, `dot` Eigen's). The first
line gives the step's wall time under the profiler, which slows a step (MobileNetV2's 64 ms step took
119 ms), so read the shares, not the milliseconds.

Eigen's kernels (`convolution`, `dot`) run asynchronously on XLA's pool: the trace times their launch
and whatever part ran on the launching thread, not the rest (gap-head's convolutions: 0.2 ms of a
15 ms step). The table marks them; their figures are lower bounds, and the gap between the wall time
and the other kernels is theirs. MobileNetV2 has no XLA convolution left (`archspec.gradients`).

The process restarts itself with glibc's huge pages, as `cnn-arch train` does
(`archspec.devices.restart_environment`): without them the page faults of the step's temporaries
change which kernels cost the most (docs/performance.md, the depthwise weight gradient).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
WALL = "ThunkExecutor::Execute (wait for completion)"
# Eigen's kernels, run asynchronously: only part of their time is in the trace.
PARTLY_TIMED = ("convolution", "dot")
# Events of the runtime and of Python around the kernels, not kernels themselves.
NOT_KERNELS = re.compile(r"Thunk|PjRt|Pjit|Slinky|^\$|^end: |ParseArguments|Dispatch|Handle inputs|Allocate")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="mobilenet-v2", help="a template name or a spec file (default mobilenet-v2)")
    parser.add_argument("--input", default="64x64x3")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="steps traced, after 3 untraced (default 5)")
    parser.add_argument("--top", type=int, default=20, help="kernel kinds listed (default 20)")
    args = parser.parse_args()
    from archspec.devices import restart_environment

    environ = restart_environment()
    if environ is not None:
        os.execve(sys.executable, [sys.executable, *sys.argv], environ)
    rows, wall = profile(args.spec, args.input, args.batch, args.steps)
    if not rows:
        print("the trace holds no kernel events: this XLA does not record them", file=sys.stderr)
        return 1
    print(table(rows, wall, args.top))
    return 0


def profile(spec: str, input_shape: str, batch: int, steps: int) -> tuple[dict[str, tuple[float, int]], float]:
    """{kernel kind: (ms a step summed over threads, kernels a step)} and the step's wall ms."""
    import jax
    from bench_cpu_devices import _bare_state, _bare_step
    from flax import nnx

    from archspec.flax_model import build_model
    from archspec.train import compile_cache
    from cnn_arch.cli.common import compile_target

    typed = compile_target(spec, input_shape)
    graphdef, params, rest = nnx.split(build_model(typed, seed=0), nnx.Param, ...)
    state = _bare_state({"batch": batch}, typed, nnx.to_pure_dict(params), nnx.to_pure_dict(rest))
    options = {**(compile_cache.model_options(graphdef) or {}), "xla_cpu_enable_xprof_traceme": True}
    jitted = _bare_step(graphdef, options)
    for _ in range(3):
        state[:2] = jitted(*state)
    jax.block_until_ready(state[0])
    with tempfile.TemporaryDirectory(prefix="profile-step-") as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            for _ in range(steps):
                state[:2] = jitted(*state)
            jax.block_until_ready(state[0])
        trace = next(Path(folder).rglob("*perfetto_trace.json.gz"))
        events = json.loads(gzip.decompress(trace.read_bytes()))
    events = events["traceEvents"] if isinstance(events, dict) else events
    time: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    wall = 0.0
    for event in events:
        if event.get("ph") != "X" or "dur" not in event:
            continue
        name = event["name"]
        if name == WALL:
            wall += event["dur"]
        elif not NOT_KERNELS.search(name):
            kind = re.sub(r"\.\d+$", "", name)
            time[kind] += event["dur"]
            count[kind] += 1
    rows = {kind: (time[kind] / steps / 1000, count[kind] // steps) for kind in time}
    return rows, wall / steps / 1000


def table(rows: dict[str, tuple[float, int]], wall: float, top: int) -> str:
    total = sum(ms for ms, _ in rows.values())
    # XLA records no wait when the step ran through on the calling thread (on one core, say)
    step = f"{wall:.1f} ms under the profiler" if wall else "its wall time not recorded"
    lines = [
        f"step: {step}; kernels: {total:.1f} ms a step summed over XLA's threads",
        "",
        "| kernel kind | ms a step | share | kernels a step |",
        "|---|---|---|---|",
    ]
    for kind, (ms, number) in sorted(rows.items(), key=lambda item: -item[1][0])[:top]:
        mark = "*" if kind in PARTLY_TIMED else ""
        lines.append(f"| {kind}{mark} | {ms:.2f} | {100 * ms / total:.1f}% | {number} |")
    if any(kind in PARTLY_TIMED for kind in rows):
        lines += ["", "* Eigen's, asynchronous: the trace holds only part of its time (a lower bound)"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
