"""Running a function over chunks of work in worker processes, results in order, with a worker that
dies (killed, out of memory) turned into one clear DataError."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from archspec.errors import DataError

WORKERS_VARIABLE = "CNN_ARCH_DECODE_WORKERS"
# Chunks submitted ahead of the one being collected, per worker: enough that no worker waits while
# the main process copies a result out, few enough that finished results never pile up in memory.
CHUNKS_AHEAD_PER_WORKER = 3


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which `taskset` and cgroup cpusets set,
    not the machine's count), or `$CNN_ARCH_DECODE_WORKERS` when set."""
    if (override := os.environ.get(WORKERS_VARIABLE, "").strip()).isdigit() and int(override) > 0:
        return int(override)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def map_in_order(function: Callable[..., Any], chunks: Iterable[tuple], *, workers: int, source: str) -> Iterator[Any]:
    """Yield `function(*chunk)` for each chunk, in order: in this process when `workers` is 1, else in
    `workers` spawned processes (`function` must be a module-level function, chunks picklable).

    Raises:
        DataError: a worker process died (killed by a signal, such as the out-of-memory killer's).
        MemoryError: a worker ran out of memory (re-raised here, as it would be without workers).
    """
    if workers <= 1:
        for chunk in chunks:
            yield function(*chunk)
        return
    # Spawned, not forked: the caller has usually imported JAX, whose threads make fork unsafe.
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_leave_signals_to_parent)
    remaining = iter(chunks)
    pending: deque[Future] = deque()
    processes: dict = {}
    try:
        while True:
            # Keep the window full, then collect the oldest chunk.
            for chunk in remaining:
                pending.append(executor.submit(function, *chunk))
                if len(pending) >= CHUNKS_AHEAD_PER_WORKER * workers:
                    break
            if not pending:
                return
            # Kept only to name the signal that killed a worker (the pool forgets its processes).
            processes = processes or dict(getattr(executor, "_processes", None) or {})
            result = pending.popleft().result()
            yield result
    except BrokenProcessPool:
        # Once the pool is down every worker has been waited for, so each one's exit code is known.
        executor.shutdown(wait=True, cancel_futures=True)
        raise _worker_died(source, processes) from None
    finally:
        # Chunks not started are dropped; those running finish in well under a second.
        executor.shutdown(wait=True, cancel_futures=True)


def _leave_signals_to_parent() -> None:
    """Ctrl-C reaches the whole process group: the parent decides whether to stop (training finishes
    loading, then stops before the first step), so a worker must not die of it mid-chunk."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_died(source: str, processes: dict) -> DataError:
    codes = [process.exitcode for process in processes.values() if process.exitcode]
    # The pool sends SIGTERM to the workers left when one dies: the first death is another code.
    codes.sort(key=lambda code: code == -signal.SIGTERM)
    how = ""
    if codes and codes[0] < 0:
        name = _signal_name(-codes[0])
        how = f" (killed by {name}" + (", which the out-of-memory killer sends)" if name == "SIGKILL" else ")")
    elif codes:
        # Python prints the worker's own error (such as a script without a `__main__` guard).
        how = f" (exit status {codes[0]}; its error is printed above)"
    return DataError(
        source,
        f"a process decoding the images stopped before it finished{how}",
        hint=f"if memory is short, use a smaller --input or fewer images; {WORKERS_VARIABLE}=1 decodes "
        "in the main process only",
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
