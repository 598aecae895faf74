"""Cold-process latency of `cnn-arch draw` on ResNet-50 (DESIGN target: draw resnet50 <= 1 s).

Each command runs as a fresh process, the way a user types it, writing to a temporary folder.
SVG is written directly and PNG painted with Pillow; PDF adds matplotlib's import (about 0.5 s on
the development machine). Prints min / median / max; exits non-zero when an SVG or PNG median
misses 1 s.

    python benchmarks/bench_draw.py [--runs 9]
"""

from __future__ import annotations

import argparse
import compileall
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = [  # (arguments after `cnn-arch draw resnet50`, output file, target in seconds or None)
    (["--depth", "1"], "resnet50.svg", 1.0),
    ([], "resnet50-all.svg", 1.0),
    (["--style", "volumes"], "resnet50-volumes.svg", 1.0),
    (["--depth", "1"], "resnet50.png", 1.0),
    ([], "resnet50-all.png", None),
    (["--depth", "1"], "resnet50.pdf", None),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    executable = shutil.which("cnn-arch") or sys.exit("cnn-arch is not installed in this environment")
    import archspec
    import cnn_arch

    for package in (archspec, cnn_arch):  # as `pip install` does; see bench_startup.py
        compileall.compile_dir(Path(package.__file__).parent, quiet=1)
    missed = 0
    # cpu: median CPU seconds (user + system) of the process, which a busy machine inflates less
    print(f"{'command':62} {'min':>7} {'median':>7} {'max':>7} {'cpu':>7}  target")
    with tempfile.TemporaryDirectory() as folder:
        for extra, filename, target in CASES:
            argv = [executable, "draw", "resnet50", *extra, "-o", str(Path(folder) / filename)]
            times, cpu = [], []
            for _ in range(args.runs + 1):  # the first run warms the OS file cache
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            times, cpu = times[1:], cpu[1:]
            median = statistics.median(times)
            name = " ".join(["cnn-arch draw resnet50", *extra, "-o", filename])
            verdict = "" if target is None else (f"<= {target} s " + ("ok" if median <= target else "MISSED"))
            missed += target is not None and median > target
            cpu_median = statistics.median(cpu)
            print(f"{name:62} {min(times):7.3f} {median:7.3f} {max(times):7.3f} {cpu_median:7.3f}  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
