"""A process per core: how `cnn-arch train` uses every core of a CPU for the models that one process
cannot spread over them well.

One XLA:CPU process does not use two cores as well as two processes do (docs/performance.md, "A
process per core"): two devices in one process serialize on YNNPACK's reductions and share one pool
of threads, and one device threaded over the cores threads the small layers poorly. So on a Linux
x86-64 CPU host, `train` forks one process per usable core before JAX starts (`start`), each with
one JAX device running its kernels on one thread, and pinned to its core from its first step. Every
process holds the same weights; each computes the gradient of its own part of every batch, the parts
are summed in shared memory (`Group.sum`), and each applies the same averaged update. Evaluation and
precise BatchNorm statistics are split the same way.

- Rank 0 is the process the user started: it alone prints, writes the run folder and checkpoints.
  The others (forked from it once the spec was read, so they start at no cost) write nothing; their
  standard output goes nowhere and their standard error to a file rank 0 reports from if they die.
- The start is shared out: every process runs the same programs (the rank is an argument), and where
  the persistent compilation cache is on, one process compiles each while the others wait for it
  and load it from the cache (`per_core.compiled_once`).
- The exchange is a spinning barrier on per-rank counters in a `/dev/shm` block: a few microseconds,
  where JAX's own multi-process collectives (gloo over TCP) take 4 ms each. Each rank sums its own
  share of the values, so the work of the sum is split too. Stores become visible in program order
  on x86-64 (TSO), which the barrier relies on: other architectures keep one process.
- A process that dies is noticed inside the spinning wait: rank 0 checks its children, the others
  their parent. Rank 0 stops with a message naming the process; the others exit.
- BatchNorm normalizes each process's part of the batch by its own statistics (as PyTorch's DDP
  without SyncBatchNorm does); the moving statistics are averaged over the processes every step.

No JAX here, and numpy only when an exchange is made: the command imports this module before it
checks that the `train` extra is installed, and before JAX starts.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# `CNN_ARCH_PROCESS_PER_CORE=0` keeps training in one process (its devices as `spread_over_cores` says).
SWITCH = "CNN_ARCH_PROCESS_PER_CORE"
# Up to this many trainable parameters a run takes a process per core; above it one process whose
# convolutions XLA threads (ResNet-50's 25.6 M: its gradients are 100 MB to exchange every step).
UP_TO = 10_000_000
SHARED_MEMORY = Path("/dev/shm")
# The XLA_FLAGS of each process (`_per_core_flags`), by name: one thread for its kernels, and no
# loop unrolling by LLVM. A cold start waits for the sum of both processes' compilations
# (docs/performance.md, "Time to the first step"), most of which is LLVM's: without unrolling,
# gap-head's gradients' half compiles on one core in 1.70-2.09 s against 2.38-2.79, and a cold gap-head
# start took 4.17-4.21 s against 4.58-4.62. The steps run as fast (gap-head 1,168 images/s against
# 1,134, the CIFAR net 630 against 639, MobileNetV2 270 against 269; interleaved runs), with other
# float results. Not for one process threaded over the cores: ResNet-50 trained 6% slower without
# unrolling (50.2 against 53.3 images/s).
PER_CORE_FLAGS = {
    "xla_cpu_multi_thread_eigen": "--xla_cpu_multi_thread_eigen=false",
    "xla_backend_extra_options": "--xla_backend_extra_options=xla_cpu_disable_loop_unrolling",
}
MAX_RANKS = 8
HEADER = 2 * 8 * MAX_RANKS  # bytes before a block's slots: each rank's phase counter, then its flag (int64)
LIVENESS_SECONDS = 0.05  # how often a waiting process checks that the others live
SPIN_SECONDS, NAP_SECONDS = 0.005, 0.0002  # a wait spins this long, then sleeps this long between looks


class PeerLost(Exception):
    """Another process of the run died: this one cannot go on. `exit_code` 1."""

    exit_code = 1
    nothing_saved = False


@dataclass
class Group:
    rank: int
    size: int
    cores: tuple[int, ...]  # the core of each rank
    leader: int  # rank 0's pid
    children: dict[int, int] = field(default_factory=dict)  # rank 0: pid -> rank
    deaths: dict[int, str] = field(default_factory=dict)  # rank 0: pid -> how it died
    logs: Path | None = None  # the folder of the others' standard error
    blocks: dict[str, _Block] = field(default_factory=dict)
    stop: bool = False  # a stop signal reached some process by the last step's exchange
    flag: object = None  # this process's `stopping.StopFlag` while it trains
    pinned: bool = False
    flags: str = ""  # XLA_FLAGS, PJRT_NPROC and the CPU affinity before `start`
    threads: str | None = None
    affinity: frozenset[int] = frozenset()

    @property
    def name(self) -> str:
        return f"cnn-arch-{self.leader}"

    def sum(self, purpose: str, values, dtype="float32"):
        """`values` (1-D) summed over every process; every process must call it, in the same order."""
        return self.sum_and_any(purpose, values, False, dtype)[0]

    def sum_and_any(self, purpose: str, values, flag: bool, dtype="float32") -> tuple:
        """`values` summed over every process, and whether any process's `flag` is true."""
        import numpy as np

        values = np.asarray(values).reshape(-1)
        key = f"{purpose}-{values.size}-{np.dtype(dtype).name}"
        if key not in self.blocks:
            self.blocks[key] = _Block(self, key, values.size, dtype)
        return self.blocks[key].sum(values, flag)

    def barrier(self) -> None:
        self.sum("barrier", [0.0])

    def forget(self, purpose: str) -> None:
        """Unmap and remove the blocks of `purpose`, which no process uses again (once any process
        has its sum, every process has mapped the block; /dev/shm frees it when the last unmaps it)."""
        for key in [key for key in self.blocks if key.startswith(f"{purpose}-")]:
            self.blocks.pop(key).close(unlink=True)

    def pin(self) -> None:
        """Keep this process on its own core from now on (its first step): until then, during the
        start, each process may use every core, so that one's compilation and another's tracing
        overlap where they can."""
        if not self.pinned:
            # Every thread: an affinity set for pid 0 holds for the calling thread alone, and XLA's
            # threads, started with the backend, would go on running on every core.
            for thread in _threads():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(thread, {self.cores[self.rank]})
            self.pinned = True

    def announce(self, what: str) -> None:
        """Tell the others that `what` is done (a file they look for: no process waits here)."""
        (SHARED_MEMORY / f"{self.name}-done-{what}").touch()

    def await_announcement(self, what: str) -> None:
        """Wait, asleep, until a process announces `what` (checking that the others live)."""
        path = SHARED_MEMORY / f"{self.name}-done-{what}"
        while not path.exists():
            self.check_alive()
            time.sleep(0.005)

    def check_alive(self) -> None:
        """Raise `PeerLost` when another process of the run has died."""
        if self.rank:
            if os.getppid() != self.leader:
                raise PeerLost("rank 0 of the run ended")
            return
        for pid, rank in list(self.children.items()):
            if pid not in self.deaths:  # reaped once (two threads may look: the loop's and a compilation's)
                with contextlib.suppress(ChildProcessError):
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        self.deaths[pid] = self._death(rank, pid, status)
            if pid in self.deaths:
                raise PeerLost(self.deaths[pid])

    def _death(self, rank: int, pid: int, status: int) -> str:
        how = (
            f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
            if os.WIFSIGNALED(status)
            else f"exited with code {os.waitstatus_to_exitcode(status)}"
        )
        text = f"the training process on core {self.cores[rank]} (pid {pid}, one of {self.size}) {how}"
        # What it wrote before it failed (a killed process wrote nothing about it).
        tail = _tail(self.logs / f"{rank}.log") if self.logs and not os.WIFSIGNALED(status) else ""
        return f"{text}; its last words:\n{tail}" if tail else text

    def close(self, *, wait: bool = True) -> None:
        """Rank 0: end the other processes (they have nothing to save; given 2 s to end by themselves
        when `wait`, after a run that went well) and remove the shared blocks."""
        for block in self.blocks.values():
            block.close(unlink=self.rank == 0)
        self.blocks.clear()
        if self.rank:
            return
        deadline = time.monotonic() + (2.0 if wait else 0.0)
        for pid in list(self.children):
            if pid not in self.deaths and not _ended(pid, deadline):
                _kill(pid)
            self.children.pop(pid, None)
        for path in SHARED_MEMORY.glob(f"{self.name}-*"):  # blocks only the others had reached too
            path.unlink(missing_ok=True)
        _remove_logs(self.logs)


class _Block:
    """A shared-memory block of one exchange: the phase counters, a slot per rank, the sum."""

    def __init__(self, group: Group, key: str, length: int, dtype) -> None:
        import numpy as np

        self.group, self.length = group, length
        itemsize = np.dtype(dtype).itemsize
        size = HEADER + (group.size + 1) * max(length, 1) * itemsize
        self.path = SHARED_MEMORY / f"{group.name}-{key}"
        # Every rank creates or opens the same file and sizes it alike: no rank waits for another here.
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(descriptor, size)
            self.map = mmap.mmap(descriptor, size)
        finally:
            os.close(descriptor)
        self.counts = np.ndarray((group.size,), np.int64, buffer=self.map)
        self.flags = np.ndarray((group.size,), np.int64, buffer=self.map, offset=8 * MAX_RANKS)
        self.slots = np.ndarray((group.size + 1, max(length, 1)), dtype, buffer=self.map, offset=HEADER)
        start, stop = (group.rank * length // group.size, (group.rank + 1) * length // group.size)
        self.share = slice(start, stop)
        self.phase = 0

    def sum(self, values, flag: bool) -> tuple:
        import numpy as np

        group = self.group
        if self.length:
            self.slots[group.rank, : self.length] = values
        self.flags[group.rank] = flag
        self._arrive(self.phase + 1)
        # Read before this rank arrives again: no rank writes its next flag or slot until every rank has.
        flagged = bool(self.flags.any())
        if self.length:  # this rank's share of the sum; the others sum theirs
            np.sum(self.slots[: group.size, self.share], axis=0, out=self.slots[group.size, self.share])
        self._arrive(self.phase + 2)
        self.phase += 2
        # Copied out: a rank may write its next slot as soon as every rank has passed this phase.
        return self.slots[group.size, : self.length].copy(), flagged

    def _arrive(self, phase: int) -> None:
        self.counts[self.group.rank] = phase
        started = time.monotonic()
        check_at = started + LIVENESS_SECONDS
        while (self.counts < phase).any():
            now = time.monotonic()
            # Spin a while (a step's exchange waits well under a millisecond), then sleep between
            # looks: a process waiting out another's compilation or checkpoint leaves the CPU to it.
            if now - started < SPIN_SECONDS:
                os.sched_yield()
            else:
                time.sleep(NAP_SECONDS)
            if now > check_at:
                self.group.check_alive()
                check_at = now + LIVENESS_SECONDS

    def close(self, *, unlink: bool) -> None:
        self.counts = self.flags = self.slots = None
        with contextlib.suppress(BufferError):  # a view is still held: the mapping goes with the process
            self.map.close()
        if unlink:
            self.path.unlink(missing_ok=True)


_group: Group | None = None
# Set by the `cnn-arch` program itself (`cnn_arch.cli.start`): only a process that is the command, not
# one that calls its code (a test runner, a notebook), may fork.
allowed = False


def current() -> Group | None:
    """This process's group, None when it trains alone."""
    return _group


def rank() -> int:
    return _group.rank if _group is not None else 0


def wanted(trainable: int, batch_size: int, environ=None, *, cluster: bool = False) -> tuple[int, ...]:
    """The cores to run a process on each, or () to train in one process: a Linux x86-64 host, 2 to
    `MAX_RANKS` usable cores, a model under `UP_TO` trainable parameters, and no device count,
    cluster, GPU or `CNN_ARCH_PROCESS_PER_CORE=0` from the user. As many of the cores as split the
    batch evenly."""
    from archspec import devices

    environ = os.environ if environ is None else environ
    if (
        not allowed
        or cluster
        or environ.get(SWITCH, "").strip() == "0"
        or sys.platform != "linux"
        or platform.machine() not in ("x86_64", "AMD64")
        or not SHARED_MEMORY.is_dir()
        or trainable >= UP_TO
        or devices._chosen_device_count(environ) is not None
        or environ.get("JAX_PLATFORMS", "cpu").split(",")[0] not in ("", "cpu")
        or devices.visible_gpu(environ) is not None
    ):
        return ()
    try:
        cores = sorted(os.sched_getaffinity(0))[: devices.usable_cores()]
    except OSError:
        return ()
    if len(cores) > MAX_RANKS:  # measured on 2 cores; a block per exchange grows with the ranks
        return ()
    count = max(n for n in range(1, len(cores) + 1) if batch_size % n == 0)
    return tuple(cores[:count]) if count > 1 else ()


def start(cores: tuple[int, ...]) -> Group:
    """Fork a process for each core after the first and return this process's group; each process
    (this one too) is pinned to its core at its first step (`Group.pin`). Call before JAX starts,
    with no other thread running."""
    global _group
    import tempfile

    leader, logs = os.getpid(), Path(tempfile.mkdtemp(prefix="cnn-arch-ranks-"))
    before = {
        "flags": os.environ.get("XLA_FLAGS", ""),
        "threads": os.environ.get("PJRT_NPROC"),
        "affinity": frozenset(os.sched_getaffinity(0)),
    }
    children: dict[int, int] = {}
    for rank_ in range(1, len(cores)):
        pid = os.fork()
        if pid == 0:
            _become(rank_, cores, leader, logs)
            _group = Group(rank_, len(cores), cores, leader, logs=logs, **before)
            return _group
        children[pid] = rank_
    _per_core_flags()
    _group = Group(0, len(cores), cores, leader, children=children, logs=logs, **before)
    return _group


def _become(rank_: int, cores, leader: int, logs: Path) -> None:
    """The forked process: silent (standard error kept for rank 0 to report)."""
    _per_core_flags()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    log = os.open(logs / f"{rank_}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 2)
    os.close(log)


def _per_core_flags() -> None:
    """XLA:CPU set up for a process of its own on one core, before its backend starts; a setting the
    user gave in XLA_FLAGS or PJRT_NPROC is kept.

    - One thread for its kernels, whatever cores the process may run on: PJRT's thread pools are
      sized once, from `PJRT_NPROC` or else the CPU affinity at the backend's start, and a process
      that starts on every core and is pinned later would share its core among as many threads (10%
      slower steps, and reductions split otherwise: other float results).
    - Its kernels compiled without LLVM's loop unrolling (`PER_CORE_FLAGS`)."""
    os.environ.setdefault("PJRT_NPROC", "1")
    for name, flag in PER_CORE_FLAGS.items():
        if name not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def run_other(work) -> None:
    """In a process of rank 1 or more: run `work` and exit, never returning into the caller's code
    (the command's). Exit code 0 when it returned, 1 otherwise; what went wrong is written to the
    log rank 0 reports from (a traceback only for what is not a user's or a run's expected end)."""
    from archspec.errors import UserError

    code = 1
    try:
        work()
        code = 0
    except PeerLost:
        pass
    except UserError as error:
        sys.stderr.write(error.render() + "\n")
    except BaseException as error:
        if hasattr(error, "exit_code"):  # the loop's Stopped: Interrupted, Diverged
            sys.stderr.write(f"{error}\n")
        elif not isinstance(error, KeyboardInterrupt):
            import traceback

            traceback.print_exc()
    finally:
        try:
            sys.stderr.flush()
            if _group is not None and os.getppid() != _group.leader:  # rank 0 is gone: nobody else will
                _group.close()
                for path in SHARED_MEMORY.glob(f"{_group.name}-*"):
                    path.unlink(missing_ok=True)
                _remove_logs(_group.logs)
        finally:
            os._exit(code)


def end(*, wait: bool = True) -> None:
    """Rank 0, when the run is over (`wait`: give the others 2 s to end by themselves) or failed:
    the others are ended, the shared blocks removed."""
    global _group
    if _group is not None:
        _group.close(wait=wait)
        _group = None


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return "\n".join(f"  {line}" for line in text.splitlines()[-lines:])


def _threads() -> list[int]:
    """This process's threads (Linux's /proc), or [0] (the calling thread) where they cannot be read."""
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def _ended(pid: int, deadline: float) -> bool:
    """Whether child `pid` ended (and was reaped) by `deadline`."""
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _remove_logs(folder: Path | None) -> None:
    if folder is None:
        return
    for log in folder.glob("*.log"):
        log.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


class AloneInstead(Exception):
    """The run cannot take a process per core (its data is streamed from disk, which each process would
    read whole): rank 0 starts the command again in one process (`again_alone`), the others exit."""


def again_alone(argv: list[str]) -> None:
    """Rank 0: end the others and run `cnn-arch ARGV...` afresh in one process, unpinned."""
    group = _group
    end()
    environ = {**os.environ, SWITCH: "0"}
    if group is not None:
        environ["XLA_FLAGS"] = group.flags
        environ["PJRT_NPROC"] = group.threads or ""
        os.sched_setaffinity(0, group.affinity)
    for name in ("XLA_FLAGS", "PJRT_NPROC"):
        if not environ.get(name):
            environ.pop(name, None)
    os.execve(sys.executable, [sys.executable, "-m", "cnn_arch", *argv], environ)
