"""Python's cyclic garbage collector, paused while `cnn-arch train`, `evaluate` and `predict` start.

Importing JAX and Flax, building the model and tracing its functions allocate hundreds of thousands of
objects, which keep triggering collections that walk every object alive: in a `perf` profile of a warm
gap-head start, the collector took 16% of the CPU time (`gc_collect_main`, `visit_decref`,
`visit_reachable`). The start makes little garbage that only the collector can free, so the command
pauses it from its start (`cnn_arch.cli.start`) until its loop begins: `train`'s first step, a
streamed evaluation's first batch. `predict` and an evaluation in memory end after one compiled call
each, so they run paused to the end.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Stop automatic collections until `resume` (a no-op where they were already off)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Turn automatic collections back on, if `pause` turned them off, with every object alive now
    frozen (`gc.freeze`): left out of every later collection. Otherwise the first collections walk
    all of them once more: in a warm gap-head start, each process's first collection after its first
    step took 0.08-0.10 s, the next 0.07-0.10 s, and two full ones later 0.10-0.13 s each. What the
    start left in reference cycles is then never collected (a few MB at most; see the module's
    docstring)."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False
