"""Running a function over chunks of work in worker processes, results in order, with a worker that
dies (killed, out of memory) turned into one clear DataError."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from archspec.errors import DataError

WORKERS_VARIABLE = "CNN_ARCH_DECODE_WORKERS"
# Chunks given to each worker process ahead of the one being collected: enough that it never waits
# for work, few enough that a chunk it has not started can still be taken back at the end.
CHUNKS_AHEAD_PER_WORKER = 3
HELD_PER_WORKER = 8


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which `taskset` and cgroup cpusets set,
    not the machine's count), or `$CNN_ARCH_DECODE_WORKERS` when set."""
    if (override := os.environ.get(WORKERS_VARIABLE, "").strip()).isdigit() and int(override) > 0:
        return int(override)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


class Pool:
    """`workers` decoding processes for `map_in_order`: this one and `workers - 1` spawned ones,
    started by `start()` or by the first map, and stopped by `close()` (use `pool(...)`). With
    `workers` 1 nothing is started."""

    def __init__(self, workers: int, source: str) -> None:
        self.workers = workers
        self._source = source
        self._executor: ProcessPoolExecutor | None = None
        # Kept only to name the signal that killed a worker (the executor forgets its processes).
        self._processes: dict = {}

    def start(self) -> None:
        """Start the worker processes now, without waiting for them (each takes a few tenths of a
        second to import numpy and Pillow)."""
        if self._executor is not None or self.workers <= 1:
            return
        # Spawned, not forked: the caller has usually imported JAX, whose threads make fork unsafe.
        context = multiprocessing.get_context("spawn")
        spawned = self.workers - 1
        self._executor = ProcessPoolExecutor(spawned, mp_context=context, initializer=_start_worker)
        with _interrupts_held():
            # The executor starts a process per task submitted while none is idle: one each.
            for _ in range(spawned):
                self._executor.submit(_ready)
        self._processes = dict(getattr(self._executor, "_processes", None) or {})

    def map_in_order(self, function: Callable[..., Any], chunks: Iterable[tuple]) -> Iterator[Any]:
        """Yield `function(*chunk)` for each chunk, in order (`function` must be a module-level
        function, and the chunks picklable, when there are workers).

        This process decodes too: a chunk of its own whenever the oldest one is not back yet. So the
        workers' start-up costs nothing (this process works meanwhile), and at the end it takes back
        the chunks a worker has not started rather than wait for them.

        Raises:
            DataError: a worker process died (killed by a signal, such as the out-of-memory killer's).
            MemoryError: a worker ran out of memory (re-raised here, as it would be without workers).
        """
        if self.workers <= 1:
            for chunk in chunks:
                yield function(*chunk)
            return
        self.start()
        assert self._executor is not None
        work = list(chunks)
        ahead = CHUNKS_AHEAD_PER_WORKER * (self.workers - 1)
        # Chunks this process may hold done, waiting for an older one from a worker: a bound on the
        # memory they take, loose enough that it never waits while a worker is slower or starting.
        held = HELD_PER_WORKER * (self.workers - 1)
        sent: dict[int, Future] = {}  # chunk index -> its future, until yielded
        done_here: dict[int, Any] = {}  # chunk index -> this process's result, until yielded
        next_in = 0  # the first chunk neither sent nor done here
        try:
            for next_out in range(len(work)):
                while True:
                    while next_in < len(work) and len(sent) < ahead:
                        sent[next_in] = self._executor.submit(function, *work[next_in])
                        next_in += 1
                    if next_out in done_here or sent[next_out].done():
                        break
                    if next_in < len(work) and len(done_here) < held:
                        done_here[next_in] = function(*work[next_in])
                        next_in += 1
                    elif next_in == len(work) and (taken := _take_back(sent, after=next_out)) is not None:
                        done_here[taken] = function(*work[taken])  # the end: no new chunk is left
                    else:
                        break  # nothing left to do here: wait for the oldest
                if next_out in done_here:
                    yield done_here.pop(next_out)
                else:
                    yield sent.pop(next_out).result()
        except BrokenProcessPool:
            # Once the pool is down every worker has been waited for, so each one's exit code is known.
            self.close()
            raise _worker_died(self._source, self._processes) from None
        finally:
            for future in sent.values():  # chunks not started are dropped
                future.cancel()

    def close(self) -> None:
        """Stop the workers (chunks running finish first, in well under a second)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def pool(workers: int, source: str) -> Iterator[Pool]:
    """A `Pool` of `workers` processes, closed on leaving (also on an error or Ctrl-C)."""
    workers_pool = Pool(workers, source)
    try:
        yield workers_pool
    finally:
        workers_pool.close()


def _take_back(sent: dict[int, Future], after: int) -> int | None:
    """The newest chunk after `after` that no worker has started (cancelled here, to be done by the
    caller), or None."""
    for index in sorted(sent, reverse=True):
        if index > after and sent[index].cancel():
            del sent[index]
            return index
    return None


def _ready() -> None:
    """A first task per worker: submitting it is what starts the worker."""


@contextmanager
def _interrupts_held():
    """SIGINT blocked (held, not ignored) in this thread while workers are started. A blocked signal
    mask survives fork and exec, so each worker starts with SIGINT held until its initializer ignores
    it: Ctrl-C reaches the whole process group, and the parent decides whether to stop (training
    finishes loading, then stops before the first step); a worker must not die of it, not even while
    it imports numpy. The parent loses nothing: another of its threads takes the signal, or it is
    delivered when the mask is restored."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_worker() -> None:
    # Ignored from here on: a Ctrl-C held since the worker started is dropped with it (see above).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        # A pool's workers outlive a parent killed outright (by the out-of-memory killer, say),
        # waiting for work forever; this one exits with it.
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(parent_sentinel: int) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(1)


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
