"""Cold-process latency of the static commands (DESIGN targets: summarize <= 0.5 s, lint <= 0.3 s).

Each command runs as a fresh process, the way a user types it. Prints min / median / max over
the runs and exits non-zero when a median misses its target, so it can gate a release.

The package's bytecode is compiled first, as `pip install` does: an editable install under
PYTHONDONTWRITEBYTECODE would otherwise recompile every module (the generated parser above all)
on every run, which is not what a user's installation does.

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = [
    (["summarize", "flatten-head"], 0.5),
    (["summarize", "resnet50"], 0.5),
    (["lint", "flatten-head"], 0.3),
    (["lint", "resnet50"], 0.3),
]


def time_command(argv: list[str], runs: int) -> list[float] | None:
    times = []
    for _ in range(runs + 1):  # the first run warms the OS file cache and lark's grammar cache
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):  # lint exits 1 when it has findings
            return None
    return times[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    executable = shutil.which("cnn-arch") or sys.exit("cnn-arch is not installed in this environment")
    import archspec
    import cnn_arch

    for package in (archspec, cnn_arch):
        compileall.compile_dir(Path(package.__file__).parent, quiet=1)
    missed = 0
    print(f"{'command':32} {'min':>7} {'median':>7} {'max':>7}  target")
    for command, target in COMMANDS:
        times = time_command([executable, *command], args.runs)
        name = "cnn-arch " + " ".join(command)
        if times is None:
            print(f"{name:32} (not available in this build)")
            continue
        median = statistics.median(times)
        verdict = "ok" if median <= target else "MISSED"
        missed += median > target
        print(f"{name:32} {min(times):7.3f} {median:7.3f} {max(times):7.3f}  <= {target} s {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
