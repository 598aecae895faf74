"""What the persistent compilation cache saves: the same `cnn-arch train` twice with a fresh cache
directory, the first run compiling (and filling the cache), the second loading from it.

    python benchmarks/bench_compile_cache.py                      # gap-head on digits at 32x32x1, 4 epochs
    python benchmarks/bench_compile_cache.py --epochs 3 --spec lenet5

For each run it prints the train step's compile time (printed by `train` before the first epoch:
tracing, lowering and compiling, or loading from the cache), the first epoch's time, the median of the
later epochs, their ratio, and the wall and CPU time of the whole command (on a shared machine the
CPU time is the steadier figure). Acceptance: on the second run the
first epoch takes at most 1.3x a later epoch. The column `first epoch + compile` is what the first
epoch took before the step was compiled ahead of it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMPILED = re.compile(r"Compiled the train step in ([0-9.]+)s")


def train(spec: str, args, out: Path, cache: Path, *extra: str) -> dict:
    command = [sys.executable, "-m", "cnn_arch", "train", spec, "--data", args.data, "--input", args.input]
    command += ["--epochs", str(args.epochs), "--summary", "none", "--out", str(out), *extra]
    env = {**os.environ, "CNN_ARCH_CACHE_DIR": str(cache), "NO_COLOR": "1"}
    env.pop("XLA_FLAGS", None)
    started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    seconds = [row["seconds"] for row in rows]
    compiled = COMPILED.search(done.stdout)
    later = statistics.median(seconds[1:])
    return {
        "compile_seconds": float(compiled.group(1)) if compiled else None,
        "epoch_seconds": seconds,
        "first_epoch": seconds[0],
        "later_epoch": later,
        "ratio": seconds[0] / later,
        "ratio_with_compile": (seconds[0] + (float(compiled.group(1)) if compiled else 0.0)) / later,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),  # of the whole command: what a shared machine's load does not inflate
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="gap-head")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--input", default="32x32x1")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: a later epoch is the reference")

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        cache = folder / "cache"
        runs = {
            "first run (empty cache)": train(args.spec, args, folder / "first", cache),
            "second run (cache filled)": train(args.spec, args, folder / "second", cache),
        }
        entries = list((cache / "jax").glob("*-cache"))
        cache_bytes = sum(path.stat().st_size for path in entries)

    print(f"cnn-arch train {args.spec} --data {args.data} --input {args.input} --epochs {args.epochs}")
    print(f"{'':28}{'compile':>9}{'epoch 1':>9}{'later':>9}{'ratio':>7}{'+compile':>10}{'wall':>8}{'cpu':>8}")
    for name, result in runs.items():
        print(
            f"{name:28}{result['compile_seconds']:>8.2f}s{result['first_epoch']:>8.2f}s{result['later_epoch']:>8.2f}s"
            f"{result['ratio']:>6.2f}x{result['ratio_with_compile']:>9.2f}x{result['wall_seconds']:>7.1f}s"
            f"{result['cpu_seconds']:>7.1f}s"
        )
    second = runs["second run (cache filled)"]
    verdict = "meets" if second["ratio"] <= 1.3 else "misses"
    print(f"cache: {len(entries)} entries, {cache_bytes / 2**20:.1f} MiB; second run {verdict} the 1.3x target")
    print(json.dumps({"spec": args.spec, "epochs": args.epochs, "cache_entries": len(entries), "runs": runs}))


if __name__ == "__main__":
    main()
