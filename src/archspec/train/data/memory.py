"""How much memory the host has left, and the refusal of a dataset that would not fit in it: checked
before the big arrays are allocated, so that the user gets the numbers instead of a MemoryError."""

from __future__ import annotations

import os
from pathlib import Path

from archspec.errors import DataError
from archspec.summary import human_bytes

# Module globals so that tests can point them at files of their own.
PROC_MEMINFO = Path("/proc/meminfo")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# (limit, usage, statistics file, reclaimable page-cache entry) for cgroup v2, then v1.
SMALLER_HINT = "use a smaller --input (or `input` line in the spec), or fewer images"
_CGROUP_FILES = (
    ("memory.max", "memory.current", "memory.stat", "inactive_file"),
    ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes", "memory/memory.stat", "total_inactive_file"),
)


def available_host_memory() -> int | None:
    """Bytes of memory this process can still allocate, or None where the host does not say.

    Linux: `MemAvailable` of /proc/meminfo, lowered to what a cgroup memory limit (a container's)
    leaves. Elsewhere: the free physical pages `os.sysconf` reports, where it reports them.
    """
    known = [amount for amount in (_meminfo_available(), _cgroup_headroom()) if amount is not None]
    if known:
        return min(known)
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_decoded_size(source: str, count: int, input_shape: tuple[int, int, int]) -> None:
    """Refuse `count` uint8 images of `input_shape` when they would not fit in the host's memory.

    Raises:
        DataError: with the size, the memory available and a hint.
    """
    height, width, channels = input_shape
    needed = count * height * width * channels
    available = available_host_memory()
    if available is None or needed <= available:
        return
    raise DataError(
        source,
        f"the decoded dataset would take {human_bytes(needed)} ({count:,} images of {height}x{width}x{channels}), "
        f"more than the {human_bytes(available)} of memory available",
        hint=SMALLER_HINT,
    )


def check_read_size(source: str, needed: int, what: str) -> None:
    """Refuse reading `needed` bytes of `what` when they would not fit in the host's memory."""
    available = available_host_memory()
    if available is not None and needed > available:
        raise DataError(
            source,
            f"reading {what} would take {human_bytes(needed)}, more than the {human_bytes(available)} of memory available",
            hint="store the images as uint8 (a quarter of float32), or split the file",
        )


def _meminfo_available() -> int | None:
    try:
        for line in PROC_MEMINFO.read_text().splitlines():
            name, _, value = line.partition(":")
            if name == "MemAvailable":
                return int(value.split()[0]) * 1024  # the file says kB and means KiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> int | None:
    """What the cgroup's memory limit leaves, counting reclaimable page cache as free (as `docker stats` does)."""
    for limit_name, usage_name, stat_name, cache_entry in _CGROUP_FILES:
        try:
            limit_text = (CGROUP_ROOT / limit_name).read_text().strip()
            usage = int((CGROUP_ROOT / usage_name).read_text())
        except (OSError, ValueError):
            continue
        # v2 says "max" for no limit; v1 says a number near 2**63.
        if limit_text == "max" or int(limit_text) >= 2**62:
            return None
        return max(0, int(limit_text) - usage + _stat_entry(CGROUP_ROOT / stat_name, cache_entry))
    return None


def _stat_entry(path: Path, entry: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == entry:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0
