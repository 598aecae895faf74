"""Functions for decoding worker processes to run (they import this module by name): stand-ins for
`decode_files` that fail only in a worker (the lead process decodes as usual), so the failure is
real and where it would happen, and one that says which process ran it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from archspec.train.data.images import decode_files


def killed_in_a_worker(paths, input_shape):
    """A worker killed outright, as the out-of-memory killer does (SIGKILL)."""
    if multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return decode_files(paths, input_shape)


def out_of_memory_in_a_worker(paths, input_shape):
    """A worker whose allocation fails (Python's MemoryError, as under a memory limit)."""
    if multiprocessing.parent_process() is not None:
        raise MemoryError
    return decode_files(paths, input_shape)


def where_decoded(name: str) -> tuple[str, str, float]:
    """("worker" or "here", `name`, when it started), after a fiftieth of a second of "decoding" in
    a worker and none here: the lead process then does its chunks (and takes back the ones no worker
    has started) in well under the time a spawned worker needs to start, however fast the machine."""
    started = time.monotonic()  # the system's clock: the same in every process
    in_worker = multiprocessing.parent_process() is not None
    if in_worker:
        time.sleep(0.02)
    return ("worker" if in_worker else "here"), name, started
