"""JAX's persistent compilation cache in the user cache directory, so that a second run of the same
spec and options loads its compiled steps from disk instead of compiling them again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path

# For functions run once (weight initialization) or once per epoch or checkpoint (data order, the
# finiteness check): XLA:CPU compiles them several times faster without its backend optimizations
# (gap-head's initialization: 2.7 s of CPU to compile, 0.5 s without; it then runs in 18 ms, not 3),
# and a user waits for their compilation, not their run. The train step keeps every optimization.
QUICK_COMPILE = {"xla_backend_optimization_level": 0}
# And on XLA:CPU, without its MLIR fusion emitters (the older emitters generate their code): gap-head's
# initialization compiles in 0.23 s against 0.35-0.43, ResNet-50's in 2.5-2.6 s against 2.9-3.4, to
# bitwise the same weights. Not for the train step: it compiled 0.6 s sooner for the CIFAR-style net
# but trained 2-4% slower, MobileNetV2 about 12% slower (docs/performance.md).
QUICK_CPU_COMPILE = {**QUICK_COMPILE, "xla_cpu_use_fusion_emitters": False}
# For the functions that run the model (the train step, evaluation, prediction, precise BN's
# statistics) on XLA:CPU: its YNNPACK library is given matrix products and reductions but not the
# convolutions, which XLA then runs through Eigen. YNNPACK's convolutions are slower on this
# hardware and thread badly over the cores: a weight gradient 30-55% slower on one core, and a
# gap-head step on one device threaded over 2 cores 12.3-15.0 ms against 23.3-24.2, the CIFAR-style
# net's 50.8-59.0 ms against 75.7-82.7 (docs/performance.md). Taking YNNPACK's reductions away
# as well costs the CIFAR net a third more (its BatchNorm statistics).
MODEL_COMPILE = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
}
# And for a model without grouped (depthwise) convolutions, XLA:CPU's older emitters generate the
# fused loops' code: gap-head's gradients' half compiles on one core in 0.78 s against 1.59, and trains
# faster (a process per core: gap-head 1,351 images/s against 1,215, the CIFAR-style net 648 against
# 616; ResNet-50 as fast). Not for MobileNetV2: the older emitters run its depthwise layers' fused
# loops (the taps' sums, with BatchNorm and ReLU6 inlined) at a fraction of the speed, and it trains
# 12% slower. Not for a process per core's update either: with it, gap-head trained 6% slower and the
# CIFAR-style net 5% (docs/performance.md).
OLDER_EMITTERS = {"xla_cpu_use_fusion_emitters": False}
SUBDIR = "jax"  # beside the decoded-folder cache (`datasets/`) in the same cache directory
# Past this size the least recently used entries are removed when a run starts (`trim`; a gap-head
# train step is about 0.3 MiB, a ResNet-50 one a few MiB), so the user's cache directory does not
# grow without end. Not by JAX's own size limit (`jax_compilation_cache_max_size`): with one, JAX
# takes a file lock around every read of the cache, and a process that finds it held polls every
# 50 ms (`filelock`'s default). A process per core reads the same entries at the same moments, so
# one of them waited 50 ms at most reads: a warm gap-head start took 2.56 s with JAX's limit, 2.36 s
# without (4 interleaved runs each).
MAX_BYTES = 2 * 2**30


def as_xla_flags(options: dict) -> str:
    """Compiler options as the `XLA_FLAGS` of a process whose compilations cnn-arch does not call
    (`--name=value`, booleans in lower case)."""
    return " ".join(f"--{name}={str(value).lower()}" for name, value in options.items())


def model_options(graphdef=None) -> dict | None:
    """The compiler options of the functions that run the model `graphdef` (the train step,
    evaluation, prediction, precise BN's statistics): `MODEL_COMPILE` on the CPU, with
    `OLDER_EMITTERS` unless the model has grouped convolutions; without `graphdef` (a process per
    core's update), `MODEL_COMPILE` alone. Each where this XLA knows the options (they are
    experimental: an XLA without them, or with other values, refuses them when compiling, and gets
    its own defaults here instead); None elsewhere."""
    if graphdef is None or grouped_convolutions(graphdef):
        return _model_options(False)
    return _model_options(True)


@functools.cache
def _model_options(older_emitters: bool) -> dict | None:
    if older_emitters and (options := _cpu_options({**MODEL_COMPILE, **OLDER_EMITTERS}, None)) is not None:
        return options
    return _cpu_options(MODEL_COMPILE, None)


def grouped_convolutions(graphdef) -> bool:
    """Whether a Flax model (its graph definition) has a convolution in more than one group."""
    return any(
        name == "feature_group_count" and getattr(value, "value", 1) not in (1, None)
        for name, value in getattr(graphdef, "attributes", ())
    )


@functools.cache
def quick_options() -> dict:
    """The compiler options of the functions run once or once per epoch: `QUICK_CPU_COMPILE` on the
    CPU where this XLA knows them, `QUICK_COMPILE` elsewhere."""
    return _cpu_options(QUICK_CPU_COMPILE, QUICK_COMPILE)


def _cpu_options(options: dict, otherwise):
    """`options` on the CPU, where this XLA compiles with them; `otherwise` elsewhere."""
    import jax

    if jax.default_backend() != "cpu":
        return otherwise
    return dict(options) if _every_option_known() or _compiles(options) else otherwise


@functools.cache
def _every_option_known() -> bool:
    """Whether this XLA compiles with all of the CPU options above at once, and so with any of them:
    one test compilation instead of one for each set (each 0.015-0.035 s of a cold start, in every
    process, before it traces anything)."""
    return _compiles({**QUICK_CPU_COMPILE, **MODEL_COMPILE, **OLDER_EMITTERS})


def _compiles(options: dict) -> bool:
    import jax
    import numpy as np

    try:
        jax.jit(lambda x: x + 1, compiler_options=options).lower(np.float32(0)).compile()
    except jax.errors.JaxRuntimeError:
        return False
    return True


def default_dir() -> Path:
    """`$CNN_ARCH_CACHE_DIR/jax`, else `$XDG_CACHE_HOME/cnn-arch/jax`, else `~/.cache/cnn-arch/jax`:
    where the data cache lives (`default_cache_dir`), one folder over."""
    from archspec.train.data.folders import default_cache_dir

    return default_cache_dir().parent / SUBDIR


def enable(directory: Path | None = None) -> str | None:
    """Turn the cache on in `directory` (default: `default_dir()`) for every later compilation of
    this process; call before anything is compiled. A cache directory the user chose for JAX itself
    (`JAX_COMPILATION_CACHE_DIR`) is kept. Returns a warning when the directory cannot be written,
    and leaves the cache off: compiling without it is slower, never wrong."""
    import jax

    if jax.config.jax_compilation_cache_dir:
        folder = Path(jax.config.jax_compilation_cache_dir)
    else:
        folder = Path(directory) if directory is not None else default_dir()
        problem = _unwritable(folder)
        if problem is not None:
            return (
                f"the compilation cache {folder} cannot be written ({problem}): every step is compiled afresh; "
                "set CNN_ARCH_CACHE_DIR to a writable folder, or pass --no-compile-cache"
            )
        jax.config.update("jax_compilation_cache_dir", str(folder))
    # JAX caches only compilations that took a second or more by default; the CPU train step of a small
    # model compiles in less, and it is what a second run waits for.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size threshold
    if jax.config.jax_compilation_cache_max_size == -1:  # no limit of the user's own for JAX to keep
        trim(folder)
    return None


def trim(folder: Path, max_bytes: int = MAX_BYTES) -> None:
    """Remove the least recently used files of `folder` until the rest hold `max_bytes` at most.
    Last use is a file's access or modification time, whichever is later (Linux's default `relatime`
    mount updates the access time of a file read since its last change, and once a day). Another
    process may remove the same file, or be reading it: JAX compiles again what it cannot read."""
    try:
        entries = [
            (max(info.st_atime, info.st_mtime), info.st_size, entry.path)
            for entry in os.scandir(folder)
            if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False)
            for info in (entry.stat(follow_symlinks=False),)
        ]
    except OSError:
        return
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            break
        with contextlib.suppress(OSError):
            os.remove(path)
        total -= size


def _unwritable(folder: Path) -> str | None:
    """Why nothing can be written in `folder` (created if missing), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


class Compiling:
    """A jitted function traced and lowered for `arguments` (shapes, dtypes and shardings suffice)
    now, on the calling thread, and compiled (or loaded from the cache) on a thread of its own:
    XLA's compiler does not hold Python's lock, so the run goes on preparing meanwhile. `jax.jit`
    keeps the executable, so the first call with real arguments compiles nothing. `also` (name ->
    a lowered function's `compile`) compile beside it, each on a thread of its own; where the jitted
    function lowers to a process per core's halves (`per_core._Lowered`), they join its share-out
    instead, so that no process compiles what another compiles."""

    def __init__(self, jitted, *arguments, also: dict | None = None) -> None:
        import threading
        import time

        self._started = time.monotonic()
        lowered = jitted.lower(*arguments)
        self._error: BaseException | None = None
        self._seconds = 0.0
        jobs = [lowered.compile]
        if also and hasattr(lowered, "share"):
            lowered.share(also)
        elif also:
            jobs += list(also.values())
        self._threads = [
            threading.Thread(target=self._compile, args=(job,), name="compile", daemon=True) for job in jobs
        ]
        for thread in self._threads:
            thread.start()

    def _compile(self, compile_job) -> None:
        import time

        try:
            compile_job()
        except BaseException as error:  # handed to the thread that waits
            self._error = error
        self._seconds = max(self._seconds, time.monotonic() - self._started)

    def wait(self) -> float:
        """The seconds from the tracing's start to the last compiled function; raises what compiling raised."""
        self.close()
        if self._error is not None:
            raise self._error
        return self._seconds

    def close(self) -> None:
        """Wait for the compilation and drop its outcome: a run that stops before its first step does
        not leave XLA compiling while the interpreter shuts down."""
        for thread in self._threads:
            thread.join()


def compile_ahead(prepared) -> float:
    """Compile the train step for the run's own arguments before the first epoch starts (loaded from
    the cache when it holds it) and return the seconds it took: the first epoch's time is then the
    training's alone. `jax.jit` keeps the executable, so the loop's first call compiles nothing.
    Tracing and lowering, which no cache removes, are counted here too. A run whose data is on the
    device started its compilation, and its data order's, in `prepare` (`Compiling`) and waits for
    them here; a streamed run's step is compiled for the shapes of the batches it will be given."""
    import time

    import numpy as np

    started = time.monotonic()
    fns, state = prepared.fns, prepared.state
    if getattr(prepared, "images", None) is not None:
        if prepared.compiling is not None:  # the step and the data order
            return prepared.compiling.wait()
        order = fns.epoch_order(state.key, np.int32(0))  # compiled now, as the loop will call it
        batch = (prepared.images, prepared.labels, order)
    else:
        batch = prepared.feed.batch_shapes()
    fns.train_step.lower(state, prepared.totals, *batch).compile()
    return time.monotonic() - started
