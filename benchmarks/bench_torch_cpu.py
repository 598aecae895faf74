"""Training speed on the CPU: `cnn-arch train` beside PyTorch eager (NCHW and channels-last) and
`torch.compile`, on the same spec, data, batch size and optimizer, measured side by side.

    python benchmarks/bench_torch_cpu.py                          # the four models, 3 interleaved rounds
    python benchmarks/bench_torch_cpu.py --models cifar-bn --rounds 5
    python benchmarks/bench_torch_cpu.py --contenders cnn-arch,torch-cl
    python benchmarks/bench_torch_cpu.py --smoke                  # a tiny model in seconds (the CI test)
    python benchmarks/bench_torch_cpu.py --startup                # time to the first step instead

- `cnn-arch`: the real command, `python -m cnn_arch train SPEC --data DATA.npz ...`, with its defaults
  (AdamW, every core of this machine as `train` chooses, the compilation cache in a folder of the run).
  Images/s are the epochs' own figures from `metrics.jsonl` (training steps only: no validation).
- `torch`, `torch-cl`: the same network in PyTorch eager (`torch_spec.py`; its parameter counts must
  equal the summary's or the benchmark refuses to run), NCHW and channels-last, AdamW with weight
  decay on kernels only as `train` does, cross-entropy from logits, BatchNorm and dropout in train
  mode, the same uint8 images converted to floats in [0, 1] per batch, PyTorch's default threads.
- `torch-compile`: `torch.compile` of the channels-last model (its first epoch holds the compilation).
- `cnn-arch-1` (only when named): `cnn-arch train` on one CPU device, as before it used every core.

Every contender runs in a fresh process, one at a time, in rounds (A, B, C, A, B, C, ...); each trains
`--epochs` epochs and its rate is the median of the epochs after the first (compilation, warm-up).
The table gives the median over the rounds, the ratio to PyTorch channels-last, and the machine's
load average around each run: on a shared machine the ratios, not the absolute rates, are the figures.

`--startup` times, instead, a fresh process from its start to the end of its first training step (an
epoch of one step: `metrics.jsonl`'s first row for `cnn-arch train` with its default output, a line
the PyTorch worker prints): `cnn-arch` with an empty compilation cache (cold), with the cache the
cold run filled (warm), and with that cache but the spec changed (the first convolution 8 filters
wider: everything is compiled again), beside PyTorch eager channels-last.

Models (issue 24): gap-head 32x32x1 at batch 32 on digits; a CIFAR-style BatchNorm net (specs/cifar-bn.arch)
32x32x3 at batch 64; resnet50 64x64x3 at batch 16; mobilenet-v2 64x64x3 at batch 32. Random images
(speed does not depend on pixel values) with 10 classes, so the two ImageNet templates end in a 10-way
`dense` here instead of 1000: the same trunk, 2 M (resnet50) and 1.3 M (mobilenet-v2) fewer head weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTENDERS = ("cnn-arch", "torch", "torch-cl", "torch-compile")
EXTRA_CONTENDERS = ("cnn-arch-1",)  # on request: `cnn-arch train` on one CPU device (before the default)
BASELINE = "torch-cl"  # the ratio's denominator: PyTorch eager, channels-last
CLASSES = 10
SMOKE_SPEC = """\
input 8x8x1
conv 4 3 padding=same bias=false bn relu
dwconv 3 padding=same relu
gap
dense 10 softmax
"""


@dataclass(frozen=True)
class Model:
    spec: str  # a template name or a spec file
    input: str  # HxWxC
    batch: int
    images: int  # training images per epoch (random), or 0 for the digits
    lr: float = 3e-3


MODELS = {
    "gap-head": Model("gap-head", "32x32x1", 32, 0),
    "cifar-bn": Model(str(HERE / "specs" / "cifar-bn.arch"), "32x32x3", 64, 2048),
    "resnet50": Model("resnet50", "64x64x3", 16, 320, lr=1e-3),
    "mobilenet-v2": Model("mobilenet-v2", "64x64x3", 32, 1024, lr=1e-3),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of: {', '.join(MODELS)}")
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"comma-separated, of: {', '.join(CONTENDERS + EXTRA_CONTENDERS)}",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of every contender (default 3)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run, the first not timed (default 3)")
    parser.add_argument("--json", type=Path, help="also write every run's figures to this file")
    parser.add_argument("--smoke", action="store_true", help="a tiny model, one round: checks the benchmark runs")
    parser.add_argument("--startup", action="store_true", help="time to the first step (cold, warm, changed spec)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_torch(json.loads(args.worker))), flush=True)
        return 0

    contenders = _choices(parser, args.contenders, CONTENDERS + EXTRA_CONTENDERS, "--contenders")
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not timed")
    with tempfile.TemporaryDirectory(prefix="bench-torch-cpu-") as folder:
        folder = Path(folder)
        if args.smoke:
            (folder / "smoke.arch").write_text(SMOKE_SPEC)
            models = {"smoke": Model(str(folder / "smoke.arch"), "8x8x1", 8, 64)}
            args.rounds = 1
        else:
            models = {name: MODELS[name] for name in _choices(parser, args.models, tuple(MODELS), "--models")}
        print(machine_line(), flush=True)
        if args.startup:
            compile_bytecode()
        measure = startup if args.startup else compare
        results = {name: measure(name, model, contenders, args, folder) for name, model in models.items()}
    if results and any(result is None for result in results.values()):
        return 2
    print()
    print(startup_table(results) if args.startup else table(results, contenders))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_line(), "results": results}, indent=2))
    return 0


def _choices(parser, text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in allowed]
    if unknown or not chosen:
        parser.error(f"{option}: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(allowed)}")
    return chosen


# --- the parent: data, rounds, table -------------------------------------------------------------------


def compare(name: str, model: Model, contenders: list[str], args, folder: Path) -> dict | None:
    """Every contender's runs on `model`, interleaved; None when the PyTorch model is refused."""
    spec_path, data = prepare(name, model, folder)
    job = {**asdict(model), "spec": str(spec_path), "data": str(data), "epochs": args.epochs}
    refusal = check_counts(job)
    if refusal:
        print(f"{name}: refused: {refusal}", file=sys.stderr)
        return None
    runs: dict[str, list[dict]] = {contender: [] for contender in contenders}
    for round_number in range(1, args.rounds + 1):
        for contender in contenders:
            before = os.getloadavg()[0]
            if contender.startswith("cnn-arch"):
                one = contender == "cnn-arch-1"
                outcome = run_cnn_arch(job, folder / f"{name}-{contender}-{round_number}", one_device=one)
            else:
                outcome = _worker({**job, "contender": contender})
            outcome["load"] = [round(before, 2), round(os.getloadavg()[0], 2)]
            runs[contender].append(outcome)
            rate = outcome.get("images_per_second")
            shown = f"{rate:8,.1f} images/s" if rate else f"failed: {outcome.get('error', '?')}"
            print(
                f"[{name} round {round_number}] {contender:<14}{shown}  (load {before:.2f} -> {outcome['load'][1]:.2f})",
                flush=True,
            )
    medians = {
        contender: statistics.median(rates)
        if (rates := [r["images_per_second"] for r in outcomes if r.get("images_per_second")])
        else None
        for contender, outcomes in runs.items()
    }
    loads = [load for outcomes in runs.values() for outcome in outcomes for load in outcome["load"]]
    return {
        "spec": model.spec,
        "input": model.input,
        "batch": model.batch,
        "medians": medians,
        "load": [min(loads), max(loads)],
        "devices": next((r.get("devices") for r in runs.get("cnn-arch", []) if r.get("devices")), None),
        "runs": runs,
    }


STARTS = ("cnn-arch cold", "cnn-arch warm", "cnn-arch changed spec", "torch-cl")


def startup(name: str, model: Model, contenders, args, folder: Path) -> dict | None:
    """Seconds from a process's start to the end of its first step, interleaved over the rounds."""
    one_step = Model(model.spec, model.input, model.batch, model.batch, model.lr)
    spec_path, data = prepare(f"{name}-start", one_step, folder)
    changed = folder / f"{name}-changed.arch"
    wider = re.sub(r"^conv (\d+)", lambda m: f"conv {int(m.group(1)) + 8}", spec_path.read_text(), count=1, flags=re.M)
    changed.write_text(wider)
    job = {**asdict(one_step), "spec": str(spec_path), "data": str(data), "epochs": 1}
    if refusal := check_counts(job):
        print(f"{name}: refused: {refusal}", file=sys.stderr)
        return None
    times: dict[str, list[float]] = {start: [] for start in STARTS}
    loads = []
    for round_number in range(1, args.rounds + 1):
        cache = folder / f"{name}-cache-{round_number}"  # empty: the cold run fills it
        for start in STARTS:
            before = os.getloadavg()[0]
            if start == "torch-cl":
                seconds = _first_torch_step({**job, "contender": "torch-cl", "first_step_only": True})
            else:
                spec = changed if start.endswith("changed spec") else spec_path
                seconds = _first_cnn_arch_step(
                    {**job, "spec": str(spec)}, folder / f"{name}-{start}-{round_number}", cache
                )
            loads += [before, os.getloadavg()[0]]
            times[start].append(seconds)
            print(f"[{name} round {round_number}] {start:<22}{seconds:6.2f} s  (load {before:.2f})", flush=True)
    return {
        "input": model.input,
        "batch": model.batch,
        "medians": {start: statistics.median(values) for start, values in times.items()},
        "load": [min(loads), max(loads)],
        "runs": times,
    }


def compile_bytecode() -> None:
    """cnn-arch's own bytecode compiled first, as `pip install` does (and as `bench_startup.py` does):
    an editable install (this repository's) under PYTHONDONTWRITEBYTECODE, which some sandboxes set,
    compiles every module of its own from source at every start (gap-head's warm start: 0.15-0.2 s
    of 1.9 s), which a user's installation does not. PyTorch's is compiled at its install."""
    import compileall

    import archspec
    import cnn_arch

    for package in (archspec, cnn_arch):
        compileall.compile_dir(Path(package.__file__).parent, quiet=1)


def _first_cnn_arch_step(job: dict, out: Path, cache: Path) -> float:
    command = [sys.executable, "-m", "cnn_arch", "train", job["spec"], "--data", job["data"], "--input", job["input"]]
    command += ["--batch-size", str(job["batch"]), "--epochs", "1", "--val-split", "0", "--test-split", "0"]
    command += ["--out", str(out)]
    env = {**os.environ, "CNN_ARCH_CACHE_DIR": str(cache), "NO_COLOR": "1"}
    metrics = out / "metrics.jsonl"
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not (metrics.is_file() and metrics.stat().st_size):
        if process.poll() is not None:
            raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read()}")
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    process.communicate()
    return seconds


def _first_torch_step(job: dict) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--worker", json.dumps(job)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if line.startswith("first step"):
            seconds = time.perf_counter() - started
            break
    else:
        raise SystemExit(f"the PyTorch worker failed:\n{process.stderr.read()}")
    process.communicate()
    return seconds


def startup_table(results: dict) -> str:
    header = ["model", "batch", *STARTS, "cold / torch", "warm / torch", "load"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in results.items():
        medians = result["medians"]
        cells = [f"{name} {result['input']}", str(result["batch"]), *(f"{medians[s]:.2f} s" for s in STARTS)]
        cells += [f"**{medians[s] / medians['torch-cl']:.2f}x**" for s in STARTS[:2]]
        cells.append(f"{result['load'][0]:.1f}-{result['load'][1]:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def prepare(name: str, model: Model, folder: Path) -> tuple[Path, Path]:
    """The spec (a 10-way head) and an .npz of its training images, written in `folder`."""
    import numpy as np

    from cnn_arch.cli.common import parse_shape, read_target

    _, text = read_target(model.spec)
    text = re.sub(r"^dense 1000 softmax", f"dense {CLASSES} softmax", text, flags=re.MULTILINE)
    spec_path = folder / f"{name}.arch"
    spec_path.write_text(text)
    shape = parse_shape(model.input)
    if model.images:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (model.images, *shape), dtype=np.uint8)
        y = np.arange(model.images, dtype=np.int64) % CLASSES
    else:  # the digits, as `train --data digits` loads them at this size
        from archspec.train.data import load_dataset

        digits = load_dataset("digits", shape, val_split=0.0, seed=0)
        x, y = digits.x_train, digits.y_train
    data = folder / f"{name}.npz"
    np.savez(data, x_train=x, y_train=y)
    return spec_path, data


def check_counts(job: dict) -> str | None:
    """Why the PyTorch model of `job` cannot be compared (its counts differ from the summary's), or None."""
    outcome = _worker({**job, "contender": "counts"})
    return outcome.get("error")


def run_cnn_arch(job: dict, out: Path, *, one_device: bool = False) -> dict:
    """`cnn-arch train` as a user runs it, in a fresh process; images/s from its metrics.jsonl."""
    command = [sys.executable, "-m", "cnn_arch", "train", job["spec"], "--data", job["data"], "--input", job["input"]]
    command += ["--batch-size", str(job["batch"]), "--epochs", str(job["epochs"]), "--lr", str(job["lr"])]
    command += ["--val-split", "0", "--test-split", "0", "--summary", "none", "--out", str(out)]
    env = {**os.environ, "CNN_ARCH_CACHE_DIR": str(out.parent / "cache"), "NO_COLOR": "1"}
    if one_device:
        from archspec.devices import HOST_DEVICES_FLAG

        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {HOST_DEVICES_FLAG}=1".strip()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [row["images_per_second"] for row in rows]
    return {"images_per_second": statistics.median(rates[1:]), "epochs": rates, "devices": trained_on(out)}


def trained_on(run_dir: Path) -> str:
    """What a run trained on, from its config.json: a process per core, or its devices."""
    devices = json.loads((run_dir / "config.json").read_text())["devices"]
    if devices.get("process_per_core"):
        return f"{devices['processes']} processes, one per core"
    return f"{devices['count']} device{'s' if devices['count'] > 1 else ''}"


def _worker(job: dict) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True, env=os.environ
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine_line() -> str:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    from archspec.devices import usable_cores

    versions = []
    for module in ("jax", "torch"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module} missing")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"measured on: {cpu}, {usable_cores()} usable cores, {platform.system()}; {'; '.join(versions)}; load average {load}"


def table(results: dict, contenders: list[str]) -> str:
    """A Markdown table: median images/s per contender and the ratio of cnn-arch to PyTorch channels-last."""
    labels = {
        "cnn-arch": "cnn-arch",
        "cnn-arch-1": "cnn-arch, 1 device",
        "torch": "PyTorch NCHW",
        "torch-cl": "PyTorch channels-last",
        "torch-compile": "torch.compile",
    }
    header = ["model", "batch", *(labels[c] for c in contenders)]
    ratio = "cnn-arch" in contenders and BASELINE in contenders
    header += ["cnn-arch / channels-last"] * ratio + ["load"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in results.items():
        medians = result["medians"]
        cells = [f"{name} {result['input']}", str(result["batch"])]
        cells += [f"{medians[c]:,.1f}" if medians[c] else "failed" for c in contenders]
        if ratio:
            ours, base = medians["cnn-arch"], medians[BASELINE]
            cells.append(f"**{ours / base:.2f}x**" if ours and base else "-")
        cells.append(f"{result['load'][0]:.1f}-{result['load'][1]:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    trained = [f"{name}: {result['devices']}" for name, result in results.items() if result.get("devices")]
    if trained:
        lines.append(f"\ncnn-arch trained on the CPU in {'; '.join(trained)}.")
    return "\n".join(lines)


# --- the PyTorch worker (a process of its own) ----------------------------------------------------------


def torch_model(typed):
    """The spec's network in PyTorch: the one hook to the spec-to-PyTorch translation."""
    sys.path.insert(0, str(HERE))
    from torch_spec import TorchSpecModel

    return TorchSpecModel(typed)


def run_torch(job: dict) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from cnn_arch.cli.common import compile_target

    typed = compile_target(job["spec"], job["input"])
    try:
        model = torch_model(typed)
    except Exception as error:  # a layer kind the translation lacks
        return {"error": f"no PyTorch model: {error}"}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    if (trainable, buffers) != (typed.trainable, typed.non_trainable):
        return {
            "error": f"the PyTorch model has {trainable:,} trainable and {buffers:,} non-trainable values, "
            f"the summary {typed.trainable:,} and {typed.non_trainable:,}: not the same network"
        }
    if job["contender"] == "counts":
        return {"trainable": trainable, "non_trainable": buffers}

    arrays = np.load(job["data"])
    images = torch.from_numpy(arrays["x_train"])  # N, H, W, C uint8, as cnn-arch keeps them
    labels = torch.from_numpy(arrays["y_train"].astype(np.int64))
    channels_last = job["contender"] in ("torch-cl", "torch-compile")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    kernels = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": kernels, "weight_decay": 1e-4}, {"params": others, "weight_decay": 0.0}], lr=job["lr"]
    )
    forward = torch.compile(model) if job["contender"] == "torch-compile" else model
    batch, steps = job["batch"], len(labels) // job["batch"]
    generator = torch.Generator().manual_seed(0)
    rates = []
    for _ in range(job["epochs"]):
        order = torch.randperm(len(labels), generator=generator)
        started = time.perf_counter()
        for step in range(steps):
            index = order[step * batch : (step + 1) * batch]
            x = images[index].permute(0, 3, 1, 2).float().div_(255)  # NCHW sizes, channels-last strides
            x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            loss = F.cross_entropy(forward(x, logits=True), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if job.get("first_step_only"):
                print("first step", flush=True)
                return {}
        loss.item()
        rates.append(steps * batch / (time.perf_counter() - started))
    return {"images_per_second": statistics.median(rates[1:]), "epochs": rates, "threads": torch.get_num_threads()}


if __name__ == "__main__":
    sys.exit(main())
