"""Folder decoding in one process against worker processes (issue 14: 2 workers >= 1.7x one on a 2-core machine).

Generates a folder of JPEGs of varied sizes around 256x256 in two classes (kept between runs), then
decodes it to 64x64x3 through `load_folder` with 1 worker (in the main process) and with 2, each time
into an empty cache (so nothing is read from a cache). The decoding time is taken from the progress
callback (from the first to the last "decoding" call: it includes starting the workers, as a user pays
it); hashing and the cache write are shown apart. Each round prints the load average before it, as
the figures mean little on a busy machine: `cores` is the CPU time this benchmark got (main process
plus workers) over its wall time. Linux's autogroup scheduling shares the CPUs between sessions, not
processes, so while one other session is busy the two workers get one core between them and the ratio
drops to about 1. Exits non-zero when the best ratio misses 1.7.

    python benchmarks/bench_decode.py [--images 4000] [--rounds 2] [--workers 2] [--folder PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

TARGET = 1.7
SHAPE = (64, 64, 3)


def make_folder(folder: Path, count: int) -> None:
    """`count` JPEGs of 192..320 x 192..320: smooth colour fields plus noise, about 15 KB each."""
    done = folder / f".complete-{count}"
    if done.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        width, height = (int(v) for v in rng.integers(192, 321, 2))
        coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((width, height))
        pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-24, 25, (height, width, 3))
        path = folder / ("cats" if index % 2 else "dogs") / f"{index:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
    done.touch()


def measure(folder: Path, workers: int) -> dict[str, float]:
    from archspec.train.data.folders import load_folder

    marks: dict[tuple[str, bool], float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        marks.setdefault((stage, False), time.perf_counter())
        if done == total:
            marks[(stage, True)] = time.perf_counter()

    with tempfile.TemporaryDirectory() as cache:
        cpu_before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        load_folder(
            str(folder),
            folder,
            SHAPE,
            val_split=0.1,
            seed=0,
            skip_bad_files=False,
            cache_dir=Path(cache),
            progress=progress,
            workers=workers,
        )
        total = time.perf_counter() - start
        cpu_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # The workers' CPU time is counted once they have exited, which the pool waits for.
    main_cpu, workers_cpu = (
        (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        for before, after in zip(cpu_before, cpu_after, strict=True)
    )
    return {
        "hash": marks[("hashing", True)] - marks[("hashing", False)],
        "decode": marks[("decoding", True)] - marks[("decoding", False)],
        "total": total,
        "main_cpu": main_cpu,
        "workers_cpu": workers_cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "cnn-arch-bench-decode")
    args = parser.parse_args()
    started = time.perf_counter()
    make_folder(args.folder, args.images)
    print(f"folder: {args.folder} ({args.images:,} JPEGs, ready in {time.perf_counter() - started:.1f} s)")
    print(f"usable CPUs: {len(os.sched_getaffinity(0))}; decoding to {'x'.join(map(str, SHAPE))}, cache off")
    print(
        f"{'round':>5} {'load avg':>15} {'workers':>7} {'decode':>8} {'img/s':>7} {'hash':>6} {'total':>7} {'main cpu':>8} {'workers cpu':>11} {'cores':>5}"
    )
    ratios = []
    for round_number in range(1, args.rounds + 1):
        figures = {}
        for workers in (1, args.workers):
            load = " ".join(f"{value:.2f}" for value in os.getloadavg())
            result = figures[workers] = measure(args.folder, workers)
            print(
                f"{round_number:>5} {load:>15} {workers:>7} {result['decode']:>7.2f}s "
                f"{args.images / result['decode']:>7,.0f} {result['hash']:>5.2f}s {result['total']:>6.2f}s "
                f"{result['main_cpu']:>7.2f}s {result['workers_cpu']:>10.2f}s "
                f"{(result['main_cpu'] + result['workers_cpu']) / result['total']:>5.2f}"
            )
        ratio = figures[1]["decode"] / figures[args.workers]["decode"]
        ratios.append(ratio)
        print(f"{'':>5} ratio {args.workers} workers / 1: {ratio:.2f}x")
    best = max(ratios)
    print(f"best ratio {best:.2f}x (target {TARGET}x): {'ok' if best >= TARGET else 'MISSED'}")
    return 0 if best >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
