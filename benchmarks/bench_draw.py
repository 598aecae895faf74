"""Cold-process latency of `cnn-arch draw` (DESIGN target: draw resnet50 <= 1 s; issue 22: NASNet-Mobile
drawn in under 3 s, every layer of it).

Each command runs as a fresh process, the way a user types it, writing to a temporary folder; the
cases are interleaved (one run of each, then the next round), so a load that comes and goes touches
them alike. SVG is written directly, PNG painted with Pillow, the HTML viewer carries the layout plan;
PDF adds matplotlib's import (about 0.5 s on the development machine). Prints the machine's load,
then min / median / max and CPU seconds per command; exits non-zero when a median misses its target.

    python benchmarks/bench_draw.py [--runs 9]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EVERY_LAYER = "--depth=99"  # deeper than any template nests: nothing folded
CASES = [  # (arguments after `cnn-arch draw`, target in seconds or None)
    (["resnet50", "--depth", "1", "-o", "resnet50.svg"], 1.0),
    (["resnet50", "-o", "resnet50.svg"], 1.0),  # folded to a readable depth (2)
    (["resnet50", "-o", "resnet50.png"], 1.0),
    (["resnet50", "-o", "resnet50.html"], 1.0),  # every layer
    (["resnet50", "--style", "volumes", "-o", "resnet50-volumes.svg"], 1.0),
    (["resnet50", "--depth", "1", "-o", "resnet50.pdf"], None),
    (["nasnet-mobile", "-o", "nasnet.png"], 3.0),  # folded to a readable depth (2)
    (["nasnet-mobile", EVERY_LAYER, "-o", "nasnet-all.svg"], 3.0),
    (["nasnet-mobile", "-o", "nasnet.html"], 3.0),  # every layer, foldable
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
    times: dict[int, list[float]] = {i: [] for i in range(len(CASES))}
    cpu: dict[int, list[float]] = {i: [] for i in range(len(CASES))}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.runs + 1):  # the first round warms the OS file cache
            for index, (arguments, _) in enumerate(CASES):
                argv = [executable, "draw", *arguments[:-1], str(Path(folder) / arguments[-1])]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                elapsed = time.perf_counter() - start
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if round_:
                    times[index].append(elapsed)
                    cpu[index].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            loads.append(os.getloadavg()[0])
    print(f"load average (1 min) during the runs: {min(loads):.1f} to {max(loads):.1f} on {os.cpu_count()} CPUs")
    print(f"{'command':66} {'min':>7} {'median':>7} {'max':>7} {'cpu':>7}  target")
    missed = 0
    for index, (arguments, target) in enumerate(CASES):
        median = statistics.median(times[index])
        name = " ".join(["cnn-arch draw", *arguments])
        verdict = "" if target is None else (f"<= {target} s " + ("ok" if median <= target else "MISSED"))
        missed += target is not None and median > target
        print(
            f"{name:66} {min(times[index]):7.3f} {median:7.3f} {max(times[index]):7.3f} "
            f"{statistics.median(cpu[index]):7.3f}  {verdict}"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
