"""Peak memory (RSS) of a training process with PyTorch installed against the same without it.

    python benchmarks/bench_train_rss.py              # 2 runs of each, interleaved (about 4 minutes on 2 cores)
    python benchmarks/bench_train_rss.py --runs 3

Runs `cnn-arch train gap-head --data digits --input 32x32x1 --epochs 1` in fresh processes, alternately
as installed ("torch importable") and with PyTorch hidden (a `torch` package first on the path that
raises ImportError, as if it were not installed), and prints each process's peak resident memory
(`wait4`'s ru_maxrss) and wall time, then the medians and their ratio. The target: within 20%.
Nothing in `train` should import PyTorch; tensorboardX did (for the event files), +1 GB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Without the compilation cache: every run compiles, so the first is not heavier than the rest.
COMMAND = [
    "train",
    "gap-head",
    "--data",
    "digits",
    "--input",
    "32x32x1",
    "--epochs",
    "1",
    "--summary",
    "none",
    "--no-compile-cache",
]


def measure(hide_torch: bool, folder: Path, index: int) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one training process."""
    env = dict(os.environ)
    if hide_torch:
        stub = folder / "no-torch"
        (stub / "torch").mkdir(parents=True, exist_ok=True)
        (stub / "torch" / "__init__.py").write_text("raise ImportError('hidden by bench_train_rss.py')\n")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stub), env.get("PYTHONPATH")]))
    out = folder / f"run-{'hidden' if hide_torch else 'installed'}-{index}"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "cnn_arch", *COMMAND, "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"training failed:\n{process.stderr.read().decode()}")
    return usage.ru_maxrss / 1024, seconds  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs of each kind, interleaved")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("PyTorch is not installed: nothing to compare (pip install torch==2.13.0)")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.runs):
            for hide in (False, True):
                rss, seconds = measure(hide, Path(folder), index)
                results[hide].append((rss, seconds))
                print(f"torch {'hidden   ' if hide else 'importable'}: peak RSS {rss:,.0f} MiB, {seconds:.1f} s")
    installed = statistics.median(rss for rss, _ in results[False])
    hidden = statistics.median(rss for rss, _ in results[True])
    print(
        f"median peak RSS: {installed:,.0f} MiB with torch importable, {hidden:,.0f} MiB with it hidden: "
        f"{installed / hidden:.2f}x (target: within 1.20x)"
    )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0 if installed / hidden <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
