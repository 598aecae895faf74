"""One JAX CPU device per core, or one device for all of them? One training step (forward, backward,
AdamW) of a spec, timed as the batch split over one JAX CPU device per core in one process (what
`train` does for a model under 1 M trainable parameters), the whole batch on one device whose
convolutions XLA threads over the cores (what it does for a larger one), half the batch on one
device pinned to one core, two such processes at once (one per core: what the hardware allows), and
the all-reduce of the gradients alone (an array of the model's parameter count summed over the
devices).

    python benchmarks/bench_cpu_devices.py                               # resnet50 64x64x3, batch 16
    python benchmarks/bench_cpu_devices.py --spec gap-head --input 32x32x1 --batch 32
    python benchmarks/bench_cpu_devices.py --spec benchmarks/specs/cifar-bn.arch --input 32x32x3 --batch 64 --per-device-bn

`--per-device-bn` times the two devices in one process once more with each BatchNorm layer's batch
statistics computed over each device's half of the batch ("ghost" batch norm, as PyTorch's DDP does
unless told otherwise) instead of over the whole batch: the step then holds one all-reduce (the
gradients and the moving statistics together) instead of one per BatchNorm layer and direction.

`--why` times what tells the two devices in one process from the two processes: the two devices
each running its own one-device step on its half of the batch at once, with nothing exchanged; and
two processes, one per core, that do exchange their gradients, through shared memory (each
process's BatchNorm statistics its own): a gradient step in each, the gradients averaged on the host
(by each process whole, then again with each process averaging its own half of the values), then
the optimizer's update.

A bare step (`jax.jit` of the loss's gradient and `optax.adamw`): no data feeding, no metrics, so
the differences are the runtime's. Linux only (`taskset`). Figures: the median of 20 steps, in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)
DEVICES_FLAG = "--xla_force_host_platform_device_count"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="resnet50", help="a template name or a spec file (default resnet50)")
    parser.add_argument("--input", default="64x64x3")
    parser.add_argument("--batch", type=int, default=16, help="the whole batch, split over the devices (default 16)")
    parser.add_argument("--per-device-bn", action="store_true", help="also time per-device BatchNorm statistics")
    parser.add_argument("--why", action="store_true", help="also time what explains two devices' cost")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("needs two cores")
    job = {"spec": args.spec, "input": args.input}
    together = _run({**job, "batch": args.batch, "devices": 2})
    threaded = _run({**job, "batch": args.batch, "devices": 1, "threaded": True})
    alone = _run({**job, "batch": args.batch // 2, "devices": 1}, core=cores[0])
    pair = [_start({**job, "batch": args.batch // 2, "devices": 1}, core=core) for core in cores[:2]]  # both at once
    pair = [json.loads(process.communicate()[0].splitlines()[-1]) for process in pair]
    reduce = _run({**job, "batch": args.batch, "devices": 2, "all_reduce_only": True})
    ghost = _run({**job, "batch": args.batch, "devices": 2, "per_device_bn": True}) if args.per_device_bn else None
    print(
        f"{args.spec} {args.input}, batch {args.batch}, {together['params']:,} parameters; load {os.getloadavg()[0]:.2f}"
    )
    print(f"  2 devices in one process, batch {args.batch}:           {together['ms']:8.1f} ms a step")
    print(f"  1 device threaded over the cores, batch {args.batch}:     {threaded['ms']:8.1f} ms a step")
    print(f"  1 device on one core, batch {args.batch // 2}:                 {alone['ms']:8.1f} ms a step")
    slowest = max(p["ms"] for p in pair)
    print(f"  2 processes at once, one per core, batch {args.batch // 2} each: {slowest:8.1f} ms a step (the slower)")
    print(f"  all-reduce of {together['params']:,} floats over 2 devices: {reduce['ms']:8.1f} ms")
    if ghost:
        print(f"  2 devices, BatchNorm statistics per device:  {ghost['ms']:8.1f} ms a step")
    if args.why:
        independent = _run({**job, "batch": args.batch // 2, "devices": 2, "independent": True})
        half = {**job, "batch": args.batch // 2, "devices": 1}
        shared = max(worker["ms"] for worker in _shared_memory_pair(half, cores[:2], together["params"]))
        split = max(worker["ms"] for worker in _shared_memory_pair(half, cores[:2], together["params"], split=True))
        print(f"  2 devices, a one-device step each at once, batch {args.batch // 2} each: {independent['ms']:8.1f} ms")
        print(f"  2 processes exchanging gradients through shared memory: {shared:8.1f} ms a step (the slower)")
        print(f"  the same, each process averaging half of the values:  {split:8.1f} ms a step (the slower)")
    return 0


def _shared_memory_pair(job: dict, cores: list[int], parameters: int, *, split: bool = False) -> list[dict]:
    """The two workers' results (`ms` a step) of two processes, one per core, each with its half of
    the batch, averaging their gradients in shared memory: each process the whole gradient, or
    (`split`) each its own half of the values into a shared mean."""
    from multiprocessing import shared_memory

    block = shared_memory.SharedMemory(create=True, size=SLOTS_AT + 3 * parameters * 4)
    try:
        block.buf[:SLOTS_AT] = bytes(SLOTS_AT)
        where = {"name": block.name, "size": 2, "split": split}
        jobs = [{**job, "shared_memory": {**where, "rank": rank}} for rank in range(2)]
        pair = [_start(each, core=core) for each, core in zip(jobs, cores)]
        outputs = [process.communicate()[0] for process in pair]
        if any(process.returncode for process in pair):
            raise SystemExit(f"a shared-memory worker failed for {job}")
        return [json.loads(output.splitlines()[-1]) for output in outputs]
    finally:
        block.close()
        block.unlink()


def _start(job: dict, core: int | None = None) -> subprocess.Popen:
    from archspec.devices import restart_environment

    environ = restart_environment() or os.environ  # glibc's huge pages, as `train` runs
    flags = f"{os.environ.get('XLA_FLAGS', '')} {DEVICES_FLAG}={job['devices']}".strip()  # the user's flags too
    env = {**environ, "PYTHONPATH": SRC, "XLA_FLAGS": flags}
    if job["devices"] == 1 and not job.get("threaded"):
        env["XLA_FLAGS"] += " --xla_cpu_multi_thread_eigen=false"
    command = [sys.executable, __file__, "--worker", json.dumps(job)]
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def _run(job: dict, core: int | None = None) -> dict:
    process = _start(job, core)
    output, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"the worker failed for {job}")
    return json.loads(output.splitlines()[-1])


def _worker(job: dict) -> dict:
    import jax
    import numpy as np
    from flax import nnx
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from archspec.flax_model import build_model
    from cnn_arch.cli.common import compile_target

    if job.get("per_device_bn"):
        _batch_norm_per_device(len(jax.devices()))
    typed = compile_target(job["spec"], job["input"])
    graphdef, params, rest = nnx.split(build_model(typed, seed=0), nnx.Param, ...)
    params, rest = nnx.to_pure_dict(params), nnx.to_pure_dict(rest)
    count = sum(leaf.size for leaf in jax.tree.leaves(params))
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P("batch"))
    if job.get("shared_memory"):
        return _shared_memory_worker(job, typed, graphdef, params, rest)
    if job.get("independent"):  # each device its own one-device step on its own half, nothing exchanged
        steps = [jax.device_put(_bare_state(job, typed, params, rest), device) for device in jax.devices()]
        step = _bare_step(graphdef)

        def both():
            for state in steps:
                state[:2] = step(*state)
            return [state[0] for state in steps]

        return {"ms": _median_ms(both), "params": count}
    if job.get("all_reduce_only"):
        array = jax.device_put(np.ones((len(jax.devices()), count), np.float32), split)
        step = jax.jit(
            jax.shard_map(lambda a: jax.lax.psum(a, "batch"), mesh=mesh, in_specs=P("batch"), out_specs=P("batch"))
        )
        return {"ms": _median_ms(lambda: step(array)), "params": count}

    params, opt, x, y, rest = _bare_state(job, typed, params, rest)
    state = [
        *jax.device_put((params, opt), replicated),
        *jax.device_put((x, y), split),
        jax.device_put(rest, replicated),
    ]
    step = _bare_step(graphdef)

    def one():
        state[:2] = step(*state)
        return state[0]

    return {"ms": _median_ms(one), "params": count, **_weights(job, state[0])}


def _weights(job: dict, params) -> dict:
    """The parameters after the timed steps, flattened, when the job asks (a test's comparison)."""
    from jax.flatten_util import ravel_pytree

    return {"weights": ravel_pytree(params)[0].tolist()} if job.get("weights") else {}


SLOTS_AT = 64  # the shared block: each rank's step count (8 bytes each), then a gradient slot per rank


def _bare_state(job: dict, typed, params, rest) -> list:
    """[params, optimizer state, images, labels, model state] for a one-device bare step."""
    import numpy as np
    import optax

    rng = np.random.default_rng(0)
    x = rng.random((job["batch"], *typed.input_shape), np.float32)
    y = rng.integers(0, typed.output_shape[-1], job["batch"])
    return [params, optax.adamw(1e-3).init(params), x, y, rest]


def _loss(graphdef, params, rest, x, y):
    import optax
    from flax import nnx

    model = nnx.merge(graphdef, params, rest)
    return optax.softmax_cross_entropy_with_integer_labels(model(x, train=True, logits=True), y).mean()


def _bare_step(graphdef, compiler_options: dict | None = None):
    """The jitted step: (params, opt, x, y, rest) -> (params, opt). XLA's defaults unless
    `compiler_options` are given, so that XLA_FLAGS can choose (the fusion-set comparisons)."""
    import jax
    import optax

    tx = optax.adamw(1e-3)

    def step(params, opt, x, y, rest):
        updates, opt = tx.update(jax.grad(_loss, argnums=1)(graphdef, params, rest, x, y), opt, params)
        return optax.apply_updates(params, updates), opt

    return jax.jit(step, compiler_options=compiler_options)


def _shared_memory_worker(job: dict, typed, graphdef, params, rest) -> dict:
    """One rank of a two-process data-parallel step whose gradients meet in shared memory: the
    gradient under `jax.jit`, the ranks' gradients averaged on the host once every rank has written
    its own (a spinning barrier on the ranks' step counts), then the optimizer's update under `jax.jit`."""
    import os as _os
    from multiprocessing import resource_tracker, shared_memory

    import jax
    import numpy as np
    import optax
    from jax.flatten_util import ravel_pytree

    where = job["shared_memory"]
    rank, size = where["rank"], where["size"]
    block = shared_memory.SharedMemory(name=where["name"])
    resource_tracker.unregister(block._name, "shared_memory")  # the parent removes it
    flat, unravel = ravel_pytree(params)
    counts = np.ndarray((size,), np.int64, buffer=block.buf)
    slots = np.ndarray((size + 1, flat.size), np.float32, buffer=block.buf, offset=SLOTS_AT)  # the last: the mean
    share = slice(rank * flat.size // size, (rank + 1) * flat.size // size)
    # this rank's part of the whole batch (the batch of `size` ranks), as a data-parallel step splits it
    params, opt, x, y, rest = _bare_state({**job, "batch": job["batch"] * size}, typed, params, rest)
    x, y = (array[rank * job["batch"] : (rank + 1) * job["batch"]] for array in (x, y))
    tx = optax.adamw(1e-3)
    gradient = jax.jit(lambda p: ravel_pytree(jax.grad(_loss, argnums=1)(graphdef, p, rest, x, y))[0])

    @jax.jit
    def update(params, opt, mean):
        updates, opt = tx.update(unravel(mean), opt, params)
        return optax.apply_updates(params, updates), opt

    state, phase = [params, opt], [0]

    def wait_for_all():
        phase[0] += 1
        counts[rank] = phase[0]
        while (counts < phase[0]).any():
            _os.sched_yield()

    def one():
        slots[rank] = np.asarray(gradient(state[0]))
        wait_for_all()
        if where.get("split"):  # this rank's share of the mean; the update reads the whole mean
            np.mean(slots[:size, share], axis=0, out=slots[size, share])
            wait_for_all()
            mean = slots[size]
        else:
            mean = slots[:size].mean(0)
            wait_for_all()  # every rank has read the slots before any writes the next step's
        state[:] = update(*state, mean)  # the next step's writes come after its gradient, so after this
        return state[0]

    return {"ms": _median_ms(one), "params": int(flat.size), **_weights(job, state[0])}


def _batch_norm_per_device(groups: int) -> None:
    """Make every `nnx.BatchNorm` in training normalize each of `groups` equal slices of the batch
    (one per device under the batch sharding) by that slice's own statistics; the moving statistics
    are updated with the whole batch's mean and variance, computed from the slices' sums."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    plain = nnx.BatchNorm.__call__

    def grouped(self, x, use_running_average=None, *, mask=None):
        if use_running_average or groups == 1:
            return plain(self, x, use_running_average=use_running_average, mask=mask)
        sliced = x.reshape(groups, x.shape[0] // groups, *x.shape[1:])
        axes = tuple(range(1, sliced.ndim - 1))
        mean, square = sliced.mean(axes, keepdims=True), (sliced * sliced).mean(axes, keepdims=True)
        whole_mean = mean.mean(0).reshape(-1)
        whole_var = square.mean(0).reshape(-1) - whole_mean * whole_mean
        for stat, value in ((self.mean, whole_mean), (self.var, whole_var)):
            stat[...] = jax.lax.stop_gradient(self.momentum * stat[...] + (1 - self.momentum) * value)
        y = (sliced - mean) * jax.lax.rsqrt(jnp.maximum(square - mean * mean, 0.0) + self.epsilon)
        y = y * self.scale[...] if self.scale is not None else y
        y = y + self.bias[...] if self.bias is not None else y
        return y.reshape(x.shape)

    nnx.BatchNorm.__call__ = grouped


def _median_ms(function, steps: int = 20) -> float:
    import jax

    jax.block_until_ready(function())
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        jax.block_until_ready(function())
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


if __name__ == "__main__":
    sys.exit(main())
