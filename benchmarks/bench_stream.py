"""Training from a folder that does not fit `--data-memory`: peak memory and pipeline speed.

    python benchmarks/bench_stream.py                 # 20,000 JPEGs of 128x128, gap-head at 64x64x3
    python benchmarks/bench_stream.py --count 5000 --stop-after 0     # train the streamed run to the end

Generates `--count` JPEGs of 128x128 in 10 class folders (into a temporary folder), then, each in a
fresh process under a memory sampler (the process and its children, every 0.1 s, plus the kernel's
own peak of the training process):

- `baseline`: `cnn-arch train gap-head --input 64x64x3` in memory on 200 of the images: the memory
  of the runtime, the compiled model, its activations and optimizer state ("the model's own memory").
- `step`: the same in memory on `--step-count` images: images/s the train step consumes (the
  second epoch's, after compilation).
- `pipeline`: the Grain pipeline alone over the full folder's first epoch order: images/s it delivers.
- `stream`: the full folder with `--data-memory` a quarter of its decoded size: streamed (the
  up-front check of every file, then training; stopped by SIGTERM after `--stop-after` seconds, as
  an epoch of 18,000 images takes half an hour on a 2-core CPU). Peak memory against baseline +
  budget, and the images/s between its checkpoints (every 10 steps).

Precise BN is off (`--precise-bn` turns it on): its fixed 8,192-image pass at every checkpoint would
be what the time between checkpoints measures.

Targets (issue 14): stream peak <= baseline peak + budget; pipeline images/s >= step images/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SIDE, INPUT, CLASSES = 128, (64, 64, 3), 10

PIPELINE_ONLY = """
import json, sys, time
import jax, numpy as np
from archspec.train import steps
from archspec.train.data import pipeline
from archspec.train.data.listing import list_folder
from archspec.train.data.stream import FolderSource
root, batches, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
files = list_folder(root, __import__("pathlib").Path(root)).files["train"]
source = FolderSource(tuple(str(f.path) for f in files), tuple(f.relative for f in files),
                      np.array([f.label for f in files], np.int32), (64, 64, 3))
order = np.asarray(steps.epoch_order(jax.random.key(0), np.int32(0), num_examples=len(files), steps=batches,
                                     batch_size=32))
start = time.perf_counter()
count = sum(len(labels) for _, labels in pipeline.batches(source, order, workers=workers))
print(json.dumps({"images": count, "seconds": time.perf_counter() - start}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000, help="JPEGs in the folder (default 20,000)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the streamed run")
    parser.add_argument("--step-count", type=int, default=640, help="images of the in-memory step-speed run")
    parser.add_argument("--stop-after", type=float, default=240, help="seconds the streamed run gets (0: no limit)")
    parser.add_argument("--precise-bn", action="store_true", help="keep precise BN (default: off, see below)")
    parser.add_argument("--workers", type=int, default=0, help="--data-workers of the streamed run")
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it (default: a temporary folder)")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-stream-"))
    env = {**os.environ, "CNN_ARCH_CACHE_DIR": str(work / "cache"), "NO_COLOR": "1", "COLUMNS": "200"}
    try:
        started = time.perf_counter()
        folder = generate(work / "jpegs", args.count)
        subset = generate(work / "subset", args.step_count)
        tiny = generate(work / "tiny", 200)
        print(f"generated {args.count:,} + {args.step_count:,} + 200 JPEGs in {time.perf_counter() - started:.0f} s")
        decoded = args.count * int(np.prod(INPUT))
        budget = decoded // 4
        train = ["train", "gap-head", "--input", "x".join(map(str, INPUT)), "--batch-size", "32", "--summary", "none"]
        if not args.precise_bn:
            # Each checkpoint recomputes BatchNorm statistics over 8,192 training images (precise BN): on a
            # 2-core CPU that pass, not the steps, would fill the time between the streamed run's checkpoints.
            train.append("--no-precise-bn")
        report = {"count": args.count, "decoded_bytes": decoded, "budget_bytes": budget}
        report["baseline"] = measure([*train, "--data", str(tiny), "--epochs", "2", "--out", str(work / "r0")], env)
        report["step"] = measure([*train, "--data", str(subset), "--epochs", "2", "--out", str(work / "r1")], env)
        report["pipeline"] = pipeline_speed(folder, min(args.count * 9 // 10 // 32, 300), args.workers, env)
        streamed = [*train, "--data", str(folder), "--epochs", str(args.epochs), "--data-memory", str(budget)]
        streamed += ["--data-workers", str(args.workers), "--checkpoint-every", "10", "--keep", "1000"]
        report["stream"] = measure([*streamed, "--out", str(work / "r2")], env, stop_after=args.stop_after)
        show(report)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def generate(root: Path, count: int) -> Path:
    """`count` 128x128 RGB JPEGs, class k a blurred pattern of its own plus noise."""
    from PIL import Image

    if root.is_dir() and sum(1 for _ in root.rglob("*.jpg")) == count:
        return root
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 256, (CLASSES, 16, 16, 3), dtype=np.uint8)
    bases = [np.asarray(Image.fromarray(p).resize((SIDE, SIDE), Image.Resampling.BILINEAR), np.int16) for p in patterns]
    for index in range(count):
        label = index % CLASSES
        pixels = np.clip(bases[label] + rng.integers(-40, 40, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{index:06d}.jpg", quality=90)
    return root


def measure(arguments: list[str], env: dict[str, str], stop_after: float = 0) -> dict:
    """Run `cnn-arch ARGUMENTS` and sample its memory; peak RSS (tree and kernel's), the epochs' img/s.
    With `stop_after`, SIGTERM it then (a clean stop)."""
    import psutil

    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "cnn_arch", *arguments], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    peak = {"tree": 0}

    def sample() -> None:
        root = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak["tree"] = max(peak["tree"], sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if stop_after:
        threading.Timer(stop_after, lambda: process.poll() is None and process.send_signal(signal.SIGTERM)).start()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process.stdout.read().decode(), process.stderr.read().decode()
    sampler.join()
    if process.returncode not in (0, 128 + signal.SIGTERM):
        raise SystemExit(f"cnn-arch {' '.join(arguments)} failed ({process.returncode}):\n{err[-3000:]}")
    run_dir = Path(arguments[arguments.index("--out") + 1])
    metrics = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
    return {
        "exit_code": process.returncode,
        "checkpoint_images_per_second": _between_checkpoints(run_dir, 32),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_tree_bytes": peak["tree"],
        "peak_main_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
        "images_per_second": [row["images_per_second"] for row in rows],
        "epoch_seconds": [row["seconds"] for row in rows],
        "data_line": next((line for line in out.splitlines() if line.startswith("data: ")), None),
    }


def _between_checkpoints(run_dir: Path, batch_size: int) -> float | None:
    """Images/s from the first to the last checkpoint (their metadata files' times), compilation excluded."""
    folder = run_dir / "checkpoints"
    done = sorted(
        (int(p.name), (p / "_CHECKPOINT_METADATA").stat().st_mtime)
        for p in (folder.iterdir() if folder.is_dir() else [])
        if p.name.isdigit() and (p / "_CHECKPOINT_METADATA").exists()
    )
    if len(done) < 2:
        return None
    (first, start), (last, end) = done[0], done[-1]
    return round((last - first) * batch_size / (end - start), 1)


def pipeline_speed(folder: Path, batches: int, workers: int, env: dict[str, str]) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", PIPELINE_ONLY, str(folder), str(batches), str(workers)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(output.splitlines()[-1])
    result["images_per_second"] = round(result["images"] / result["seconds"], 1)
    return result


def show(report: dict) -> None:
    mib = 2**20
    baseline, stream = report["baseline"], report["stream"]
    limit = baseline["peak_tree_bytes"] + report["budget_bytes"]
    print(json.dumps(report, indent=2))
    print(f"decoded {report['decoded_bytes'] / mib:.1f} MiB, budget (a quarter) {report['budget_bytes'] / mib:.1f} MiB")
    print(f"{stream['data_line']}")
    print(
        f"peak RSS: baseline {baseline['peak_tree_bytes'] / mib:.0f} MiB, streamed {stream['peak_tree_bytes'] / mib:.0f}"
        f" MiB (limit baseline + budget {limit / mib:.0f} MiB): {'ok' if stream['peak_tree_bytes'] <= limit else 'OVER'}"
    )
    step = report["step"]["images_per_second"][-1]
    delivered = report["pipeline"]["images_per_second"]
    print(
        f"images/s: pipeline delivers {delivered:,.0f}, the train step consumes {step:,.0f} (in memory), "
        f"streamed training {stream['checkpoint_images_per_second']} (between checkpoints): "
        f"{'ok' if delivered >= step else 'PIPELINE SLOWER'}"
    )


if __name__ == "__main__":
    main()
