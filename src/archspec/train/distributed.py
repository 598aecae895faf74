"""Data parallelism: one mesh with a `batch` axis over every JAX device, on one host or several.

Parameters, optimizer state and the (small) datasets are replicated on every device; each batch is
split along the `batch` axis. Several hosts join through `jax.distributed.initialize`, which must run
before anything else touches JAX's devices. Every process runs the same program on the same data
and computes the same replicated state; process 0 alone writes the run folder's files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from archspec.errors import UserError

BATCH_AXIS = "batch"

# Launchers that start one process per host and tell JAX where the others are (jax.distributed
# reads their variables itself when called without arguments): name -> variable holding the count.
CLUSTER_SIZE_VARIABLES = {"Slurm": "SLURM_NTASKS", "Open MPI": "OMPI_COMM_WORLD_SIZE"}


@dataclass(frozen=True)
class Cluster:
    """How this process joins a multi-process run: explicit coordinates or a detected launcher."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    launcher: str | None = None  # "Slurm", "Open MPI": detected from the environment


def find_cluster(coordinator: str | None, num_processes: int | None, process_id: int | None) -> Cluster | None:
    """The cluster to join, from the options (or their `JAX_*` variables) or a launcher; None if alone.

    Raises:
        UserError: the options are incomplete or inconsistent.
    """
    given = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    if any(value is not None for value in given.values()):
        missing = [name for name, value in given.items() if value is None]
        if missing:
            raise UserError(
                f"multi-process training needs {', '.join(given)}; missing {', '.join(missing)}",
                hint="pass all three (the same --coordinator HOST:PORT and --num-processes on "
                "every host, --process-id 0..N-1), or none to train on this host only",
            )
        if ":" not in coordinator:
            raise UserError(f"`--coordinator` must be HOST:PORT (process 0's address), got `{coordinator}`")
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise UserError(
                f"`--process-id` (={process_id}) must be between 0 and `--num-processes` - 1 (={num_processes - 1})"
            )
        return Cluster(coordinator, num_processes, process_id) if num_processes > 1 else None
    for launcher, variable in CLUSTER_SIZE_VARIABLES.items():
        if int(os.environ.get(variable, "1") or 1) > 1:
            return Cluster(launcher=launcher)
    return None


def join(cluster: Cluster) -> None:
    """Start `jax.distributed` for `cluster`. Must run before any other JAX call touches devices."""
    import jax

    # CPU processes exchange collectives through gloo; GPUs and TPUs bring their own.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(cluster.coordinator, cluster.num_processes, cluster.process_id)
    except Exception as error:
        where = cluster.coordinator or cluster.launcher
        raise UserError(
            f"cannot join the multi-process run at {where}: {error}",
            hint="check that every process got the same --coordinator and --num-processes, "
            "and that process 0 is reachable at that address",
        ) from None


def make_mesh(devices=None):
    """A 1-D mesh over `devices` (default: every device of every process) named `batch`."""
    import jax
    from jax.sharding import Mesh

    return Mesh(np.array(devices if devices is not None else jax.devices()), (BATCH_AXIS,))


def mesh_for_batch(batch_size: int):
    """The mesh a run of `batch_size` trains on: every device; but on one CPU host, the most devices
    that split the batch evenly (one per core by default: batch 32 on 3 cores trains on 2 of them),
    where an accelerator's idle devices would be a surprise and a batch that does not split is an error."""
    import jax

    devices = jax.devices()
    if jax.process_count() == 1 and devices[0].platform == "cpu":
        count = max(n for n in range(1, len(devices) + 1) if batch_size % n == 0)
        devices = devices[:count]
    return make_mesh(devices)


def replicated(mesh):
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh, leading: int = 0):
    """Split the axis after `leading` unsharded axes along `batch`."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec(*([None] * leading), BATCH_AXIS))


def wait_for(tree) -> None:
    """Block until `tree`'s arrays are computed. A loop that dispatches a computation over several
    devices per turn calls it on the last one's result (or on what it consumes) before dispatching
    the next, so that one is in flight. Unpaced, JAX lets the loop run up to 32 computations ahead
    of XLA:CPU, whose dispatch then holds one of its threads waiting for a device; with as many
    threads as devices (XLA's default on a CPU host) another device's part of a collective waits for
    a thread forever and XLA aborts (gap-head, 3 epochs beside two CPU hogs: 4 runs in 12 aborted,
    none in 12 paced)."""
    import jax

    jax.block_until_ready(tree)


def to_host(tree):
    """Numpy copies of replicated arrays, read from this process's own devices (no communication)."""
    import jax

    return jax.tree.map(
        lambda array: np.asarray(array.addressable_data(0) if isinstance(array, jax.Array) else array), tree
    )


def is_primary() -> bool:
    """Whether this process writes the run folder and reports: process 0 of a multi-process run,
    rank 0 of a process per core (`archspec.train.cores`)."""
    import jax

    from archspec.train import cores

    return jax.process_index() == 0 and cores.rank() == 0


def several_processes() -> bool:
    """Whether other processes train beside this one (JAX's multi-process run, or a process per core),
    so that decisions that lead to an exchange must be taken alike."""
    import jax

    from archspec.train import cores

    return jax.process_count() > 1 or cores.current() is not None


def all_agree(flag: bool) -> bool:
    """True when `flag` is true on any process: a collective, so every process must call it."""
    import jax

    from archspec.train import cores

    if (group := cores.current()) is not None:
        return bool(group.sum("agree", np.array([float(flag)]))[0] > 0)
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.array([flag]))))


def barrier(name: str) -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    import jax

    from archspec.train import cores

    if (group := cores.current()) is not None:
        group.barrier()
    elif jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
