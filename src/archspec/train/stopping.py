"""SIGINT and SIGTERM during training: a request to stop after the current step (a second one aborts).

`catch_early` installs the handler the moment `cnn-arch train` starts, before JAX is imported: a
signal that lands while JAX runs a garbage-collection callback is otherwise raised there as a
KeyboardInterrupt, which Python swallows ("Exception ignored in gc callback"), and the run went on
to the end. With the handler in place a signal only sets a flag, which the loop reads at its next
check (before set-up, before the first step, after each step). No JAX here, so that this module
imports in a millisecond.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_early: list[int] = []  # signals received before the loop's own handler took over


def catch_early() -> None:
    """Record SIGINT and SIGTERM from now on (call first thing in the training command)."""

    def handle(number, frame):
        if _early:  # the second one: abort at once, as during training
            sys.stderr.write(f"\nstopped by {signal.Signals(number).name} again: aborted\n")
            os._exit(128 + number)
        _early.append(number)

    for number in STOP_SIGNALS:
        signal.signal(number, handle)


class StopFlag:
    def __init__(self, signal_number: int | None = None) -> None:
        self.signal_number = signal_number

    def requested(self, *, sync_point: bool) -> bool:
        """True when a signal asks to stop. Several processes agree on it at sync points only."""
        import jax

        from archspec.train import cores, distributed

        if (group := cores.current()) is not None:
            # A process per core: each step's exchange tells whether any process got a signal.
            stop = distributed.all_agree(self.signal_number is not None or group.stop) if sync_point else group.stop
            if stop and self.signal_number is None:
                self.signal_number = signal.SIGTERM
            return stop
        if jax.process_count() == 1:
            return self.signal_number is not None
        if not sync_point:
            return False
        stop = distributed.all_agree(self.signal_number is not None)
        if stop and self.signal_number is None:
            self.signal_number = signal.SIGTERM
        return stop


@contextmanager
def stop_signals():
    """Turn SIGINT and SIGTERM into a request to stop after the current step (a second one aborts),
    starting with any signal `catch_early` recorded."""
    flag = StopFlag(_early[0] if _early else None)
    from archspec.train import cores

    if (group := cores.current()) is not None:
        group.flag = flag  # read by each step's exchange
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handle(number, frame):
        if flag.signal_number is not None:
            raise KeyboardInterrupt
        flag.signal_number = number

    previous = {number: signal.signal(number, handle) for number in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
