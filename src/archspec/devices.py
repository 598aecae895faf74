"""What JAX runs on (backend, devices, their memory, processes), the warning for a GPU that the
system has but JAX does not use, and the default of one JAX CPU device per usable core. Only
`describe` imports JAX: the rest is cheap."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# XLA's flag for the number of CPU devices, and JAX's variable for its `jax_num_cpu_devices` setting:
# either, set by the user, decides how many CPU devices JAX makes.
HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"
HOST_DEVICES_VARIABLE = "JAX_NUM_CPU_DEVICES"
# From this many trainable parameters `train` uses one CPU device, not one per core (see spread_over_cores).
ONE_DEVICE_FROM = 1_000_000
# glibc's setting (2.35 and later; earlier ones ignore it) that makes its large blocks transparent
# huge pages where the kernel's THP mode is `madvise` (the common default) or `always`.
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"
# cgroup v2's CPU quota ("max 100000" or "200000 100000": quota and period in microseconds).
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
# Module global so that tests can point it elsewhere; NVIDIA's kernel driver creates it.
NVIDIA_DRIVER = Path("/proc/driver/nvidia")
CUDA_EXTRA = "cuda"  # pyproject.toml's extras, following JAX's own (`jax[cuda12]`, `jax[tpu]`)
CUDA_PLUGINS = ("jax-cuda12-plugin", "jax-cuda13-plugin")


@dataclass(frozen=True)
class Device:
    id: int
    platform: str  # cpu, gpu, tpu
    kind: str  # e.g. "NVIDIA H100 80GB HBM3", "TPU v5 lite", "cpu"
    process: int
    memory_limit: int | None  # bytes JAX may use on it (memory_stats' bytes_limit), None where not reported
    memory_in_use: int | None


@dataclass(frozen=True)
class Report:
    jax_version: str
    jaxlib_version: str
    backend: str
    process_index: int
    process_count: int
    devices: tuple[Device, ...]  # every device of every process
    host_memory: int | None  # available host memory: what a CPU device uses
    warning: str | None  # `unused_gpu_warning(backend)`

    def to_json(self) -> dict[str, Any]:
        return {
            "jax": self.jax_version,
            "jaxlib": self.jaxlib_version,
            "backend": self.backend,
            "process_index": self.process_index,
            "process_count": self.process_count,
            "host_memory_available": self.host_memory,
            "devices": [device.__dict__ for device in self.devices],
            "warning": self.warning,
        }


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (taskset, cpusets), capped by a cgroup CPU
    quota (a container given 2 CPUs of a 64-core host gets 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, int(quota) // int(period))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def restart_environment(environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """The environment to restart this process in before it runs XLA:CPU, or None when it needs no
    restart: glibc told to back its large blocks with transparent huge pages (GLIBC_TUNABLES, read
    only when a process starts). XLA:CPU allocates a step's temporary buffers afresh at every step
    and glibc maps large blocks from the system each time, so every step page-faults through them
    one 4 KiB page at a time: 20,000 faults per step of the CIFAR-style net, 93,000 of MobileNetV2
    at 64x64, a quarter to nearly half of their step's CPU time; a few hundred with huge pages.
    None where the C library is not glibc or the user chose the setting."""
    environ = os.environ if environ is None else environ
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):  # not glibc, or not a POSIX system
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if not libc.startswith("glibc") or HUGE_PAGES_TUNABLE.split("=")[0] in tunables:
        return None
    return {**environ, "GLIBC_TUNABLES": ":".join(filter(None, (tunables, HUGE_PAGES_TUNABLE)))}


def spread_over_cores(environ: dict[str, str] | None = None, *, trainable: int | None = None) -> int | None:
    """Ask JAX for one CPU device per usable core, so that `train`, `evaluate` and `predict` split each
    batch over every core, unless `train`'s model has `ONE_DEVICE_FROM` trainable parameters or more:
    then one device, whose convolutions XLA spreads over the cores itself. Call before JAX starts its
    CPU backend (JAX reads XLA_FLAGS then); a device count the user gave (in XLA_FLAGS or
    JAX_NUM_CPU_DEVICES) wins. Returns the count asked for, or None when left as it was.

    Which is faster depends on the model (`benchmarks/bench_cpu_devices.py`, a bare train step on 2
    cores, one device against two): the small models' narrow convolutions hardly gain from XLA's
    threads (gap-head at 64x64x3: 286 ms a step on one device, 168 on two), while two devices pay
    an all-reduce of every gradient and a BatchNorm synchronization per layer, which large models
    do not make up (ResNet-50 at 64x64: 163 ms on one device, 259 on two; MobileNetV2 131 against
    160, ShuffleNetV2 64 against 86, EfficientNet-B0 203 against 237). Measured crossing: between
    170 k trainable parameters (two devices win) and 2.3 M (one wins).

    XLA's thread pools keep their default size (one thread per core): the threads the devices'
    parts of a step run on. One more per device cost a third of gap-head's step (23.5 ms a step
    with 4 threads on 2 cores, 17.4 ms with 2). With no more threads than devices, a loop that runs
    ahead could deadlock XLA in an all-reduce; the loops keep one computation in flight instead
    (`archspec.train.distributed.wait_for`)."""
    environ = os.environ if environ is None else environ
    chosen = _chosen_device_count(environ)
    count = chosen or (1 if trainable is not None and trainable >= ONE_DEVICE_FROM else usable_cores())
    if chosen is not None or count == 1:
        return None
    environ["XLA_FLAGS"] = f"{environ.get('XLA_FLAGS', '')} {HOST_DEVICES_FLAG}={count}".strip()
    return count


def _chosen_device_count(environ) -> int | None:
    """The CPU device count the user set, if any (0 when it cannot be read: JAX will say why)."""
    found = re.search(rf"{HOST_DEVICES_FLAG}=(\S*)", environ.get("XLA_FLAGS", ""))
    text = found.group(1) if found else environ.get(HOST_DEVICES_VARIABLE, "").strip()
    if found is None and not text:
        return None
    return int(text) if text.isdigit() else 0


def visible_gpu(environ: dict[str, str] | None = None) -> str | None:
    """Why the system seems to have an NVIDIA GPU (for the warning), or None when nothing says so."""
    environ = os.environ if environ is None else environ
    cuda = environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if cuda and cuda != "-1":  # "" and "-1" are how users hide every GPU
        return f"CUDA_VISIBLE_DEVICES={cuda} is set"
    path = shutil.which("nvidia-smi", path=environ.get("PATH"))
    if path:
        return f"{path} is on PATH"
    if NVIDIA_DRIVER.exists():
        return f"the NVIDIA driver is loaded ({NVIDIA_DRIVER})"
    return None


def install_command() -> str:
    """The command that installs JAX's CUDA wheels for the JAX installed here."""
    return f"pip install '.[{CUDA_EXTRA}]' (in the cnn-arch folder), or pip install 'jax[cuda12]=={_version('jax')}'"


def unused_gpu_warning(backend: str, environ: dict[str, str] | None = None) -> str | None:
    """A warning when the system shows a GPU but JAX runs on `backend` "cpu"; None otherwise, and
    when the user chose the CPU (JAX_PLATFORMS without cuda or gpu)."""
    environ = os.environ if environ is None else environ
    if backend != "cpu":
        return None
    platforms = environ.get("JAX_PLATFORMS", "").strip().lower()
    if platforms and not any(name in platforms for name in ("cuda", "gpu")):
        return None
    reason = visible_gpu(environ)
    if reason is None:
        return None
    plugins = [name for name in CUDA_PLUGINS if _version(name) is not None]
    if plugins:  # installed, yet JAX fell back to the CPU: the driver or the wheels do not fit
        return (
            f"a GPU seems present ({reason}) but JAX runs on CPU although {plugins[0]} is installed: "
            "JAX could not start it (see its warning above; `nvidia-smi` shows the driver's CUDA version, "
            "which must be at least the wheels')"
        )
    return f"a GPU seems present ({reason}) but JAX runs on CPU: JAX's CUDA wheels are not installed. Fix: {install_command()}"


def describe() -> Report:
    """The backend and every device JAX sees (imports JAX)."""
    import jax

    from archspec.train.data.memory import available_host_memory

    devices = []
    for device in jax.devices():
        stats = (_memory_stats(device) or {}) if device.process_index == jax.process_index() else {}
        devices.append(
            Device(
                device.id,
                device.platform,
                device.device_kind,
                device.process_index,
                stats.get("bytes_limit"),
                stats.get("bytes_in_use"),
            )
        )
    backend = jax.default_backend()
    return Report(
        jax.__version__,
        _version("jaxlib") or "?",
        backend,
        jax.process_index(),
        jax.process_count(),
        tuple(devices),
        available_host_memory(),
        unused_gpu_warning(backend),
    )


def _memory_stats(device) -> dict | None:
    try:
        return device.memory_stats()
    except Exception:  # some backends (CPU in older jaxlibs) raise instead of returning None
        return None


def _version(distribution: str) -> str | None:
    from importlib import metadata  # here: 18 ms, and the module is imported by every command

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
