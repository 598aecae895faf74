"""Images/s of cnn-arch's train step on one accelerator, fp32 and bf16 at a few batch sizes, beside the
same model in PyTorch (AMP for bf16) when torch is installed: ResNet-50 at 224x224, synthetic data.

    python benchmarks/bench_gpu_resnet50.py                    # resnet50: batches 64,128,256, fp32 and bf16
    python benchmarks/bench_gpu_resnet50.py --batch-sizes 256 --precisions bf16 --steps 50
    python benchmarks/bench_gpu_resnet50.py --smoke            # any machine: 32x32 input, batch 2, 1 step

JAX runs the very step `cnn-arch train` runs (`archspec.train.steps.train_step`: the batch gathered by
index from uint8 images kept on the device, normalized there, AdamW, BatchNorm statistics, metric
sums), jitted and donated the same way. PyTorch runs the same layers (`torch_spec.py`: same shapes and
parameter counts), channels-last, AdamW, cross-entropy, `torch.autocast(bfloat16)` for bf16 and TF32
for fp32 (XLA's default for float32 convolutions on GPUs that have it). Each framework runs in a
process of its own (JAX pre-allocates most of the GPU's memory). After `--warmup` steps (compilation
included), `--steps` steps are timed.

TFLOP/s counts 3 x 2 x MACs per image (forward, and a backward pass of about twice the forward's
work) from the summary's MACs, against the device's dense peak (bf16 tensor cores for bf16, TF32 for
fp32 on NVIDIA GPUs). Target (DESIGN.md): above 3,000 images/s for ResNet-50 bf16 on one H100-class
GPU, ahead of PyTorch AMP. Without an accelerator the defaults shrink to a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Dense peak TFLOP/s (no sparsity) from the vendors' data sheets: device-kind substring -> (bf16, fp32).
# NVIDIA's fp32 entry is TF32 on the tensor cores, what XLA and cuDNN use for float32 by default.
# The first match wins: more specific names first.
PEAK_TFLOPS = (
    ("H100 PCIe", 756.0, 378.0),
    ("H100 NVL", 835.0, 418.0),
    ("H100", 989.4, 494.7),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H200", 989.4, 494.7),
    ("GH200", 989.4, 494.7),
    ("B200", 2250.0, 1100.0),
    ("A100", 312.0, 156.0),
    ("A10G", 70.0, 35.0),
    ("A10", 125.0, 62.5),
    ("L40S", 362.1, 183.0),
    ("L4", 121.0, 60.0),
    ("TPU v6 lite", 918.0, None),  # Trillium
    ("TPU v5 lite", 197.0, None),  # v5e
    ("TPU v5", 459.0, None),  # v5p
    ("TPU v4", 275.0, None),
)


def peak_tflops(kind: str, precision: str) -> float | None:
    for name, bf16, fp32 in PEAK_TFLOPS:
        if name.lower() in kind.lower():
            return bf16 if precision == "bf16" else fp32
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="resnet50", help="spec file or template (default: resnet50)")
    parser.add_argument("--input", default=None, help="input HxWxC (default: the spec's, 224x224x3 for resnet50)")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated; default 64,128,256 (2 without one)")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--steps", type=int, default=None, help="timed steps; default 30 (1 without an accelerator)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (compilation); default 5 (1)")
    parser.add_argument("--no-torch", action="store_true", help="time JAX only")
    parser.add_argument("--smoke", action="store_true", help="a quick run anywhere: 32x32 input, batch 2, 1 step")
    parser.add_argument("--worker", choices=("jax", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run = run_jax if args.worker == "jax" else run_torch
        for row in run(args):
            print(json.dumps(row), flush=True)
        return

    rows = {"jax": _worker("jax", args)}
    rows["torch"] = [] if args.no_torch else _torch_rows(args)
    print_table(rows["jax"], rows["torch"])
    print(json.dumps({"jax": rows["jax"], "torch": rows["torch"]}))


def _settings(args, accelerated: bool) -> tuple[list[int], int, int, str | None]:
    smoke = args.smoke or not accelerated
    sizes = args.batch_sizes or ("2" if smoke else "64,128,256")
    steps = args.steps or (1 if smoke else 30)
    warmup = args.warmup if args.warmup is not None else (1 if smoke else 5)
    shape = args.input or ("32x32x3" if smoke else None)
    return [int(size) for size in sizes.split(",")], steps, warmup, shape


def _worker(name: str, args) -> list[dict]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, *_passed(args)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the {name} worker failed (exit code {done.returncode}); its errors are above")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _torch_rows(args) -> list[dict]:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch: not installed (pip install torch, or the `bench` extra), JAX only", file=sys.stderr)
        return []
    return _worker("torch", args)


def _passed(args) -> list[str]:
    out = ["--spec", args.spec, "--precisions", args.precisions]
    for option, value in (("--input", args.input), ("--batch-sizes", args.batch_sizes)):
        if value is not None:
            out += [option, value]
    for option, value in (("--steps", args.steps), ("--warmup", args.warmup)):
        if value is not None:
            out += [option, str(value)]
    return out + (["--smoke"] if args.smoke else [])


def _typed(args, shape):
    from cnn_arch.cli.common import compile_target, read_target

    name, text = read_target(args.spec)
    return name, text, compile_target(args.spec, shape)


def _row(framework, typed, precision, batch, steps, seconds, device, **extra) -> dict:
    per_second = batch * steps / seconds
    tflops = 3 * 2 * typed.macs * per_second / 1e12
    peak = peak_tflops(device, precision)
    return {
        "framework": framework,
        "precision": precision,
        "batch_size": batch,
        "input": "x".join(map(str, typed.input_shape)),
        "steps": steps,
        "images_per_second": round(per_second, 1),
        "tflops": round(tflops, 2),
        "peak_tflops": peak,
        "peak_share": round(tflops / peak, 3) if peak else None,
        "device": device,
        **extra,
    }


def run_jax(args) -> list[dict]:
    import functools

    import jax
    import jax.numpy as jnp
    import numpy as np

    from archspec.train import distributed, steps
    from archspec.train.config import TrainConfig
    from archspec.train.metrics import zero_sums
    from archspec.train.outputs import task_for

    sizes, timed, warmup, shape = _settings(args, jax.default_backend() != "cpu")
    name, text, typed = _typed(args, shape)
    device = jax.devices()[0].device_kind
    mesh = distributed.make_mesh(jax.devices()[:1])  # one device
    replicated = distributed.replicated(mesh)
    classes = typed.output_shape[0]
    task = task_for(typed, classes)
    rows = []
    for precision in args.precisions.split(","):
        for batch in sizes:
            count = 2 * batch  # two batches of distinct images, reshuffled like an epoch
            rng = np.random.default_rng(0)
            images = jax.device_put(rng.integers(0, 256, (count, *typed.input_shape), dtype=np.uint8), replicated)
            labels = jax.device_put(rng.integers(0, classes, count).astype(np.int32), replicated)
            config = TrainConfig(
                spec=name, spec_text=text, input_shape=typed.input_shape, batch_size=batch, precision=precision
            )
            tx = steps.make_optimizer(config, steps.make_schedule(config, 2))
            dtype = jnp.bfloat16 if precision == "bf16" else None
            graphdef = steps.model_graphdef(typed, dtype=dtype)
            model = jax.jit(functools.partial(steps.init_model, typed, seed=0, dtype=dtype), out_shardings=replicated)()
            state = jax.jit(functools.partial(steps.init_train_state, tx=tx, seed=0), out_shardings=replicated)(model)
            totals = jax.jit(lambda: {**zero_sums(task), "finite": jnp.ones((), bool)}, out_shardings=replicated)()
            step = steps.jit_train_step(
                graphdef=graphdef,
                tx=tx,
                task=task,
                steps_per_epoch=2,
                augment=(),
                batch_sharding=distributed.batch_sharded(mesh),
            )
            order = jax.jit(functools.partial(steps.epoch_order, num_examples=count, steps=2, batch_size=batch))(
                state.key, np.int32(0)
            )
            started = time.perf_counter()
            for _ in range(warmup):
                state, totals = step(state, totals, images, labels, order)
            jax.block_until_ready(totals)
            compile_seconds = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(timed):
                state, totals = step(state, totals, images, labels, order)
            jax.block_until_ready(totals)
            seconds = time.perf_counter() - started
            finite = bool(totals["finite"])
            rows.append(
                _row(
                    "jax",
                    typed,
                    precision,
                    batch,
                    timed,
                    seconds,
                    device,
                    finite=finite,
                    warmup_s=round(compile_seconds, 1),
                )
            )
            del state, totals, images, labels
    return rows


def run_torch(args) -> list[dict]:
    import torch

    sys.path.insert(0, str(HERE))
    from torch_spec import TorchSpecModel, count_values

    cuda = torch.cuda.is_available()
    sizes, timed, warmup, shape = _settings(args, cuda)
    _, _, typed = _typed(args, shape)
    place = torch.device("cuda" if cuda else "cpu")
    device = torch.cuda.get_device_name() if cuda else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True  # as XLA does for float32 by default
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    h, w, c = typed.input_shape
    classes = typed.output_shape[0]
    rows = []
    for precision in args.precisions.split(","):
        for batch in sizes:
            torch.manual_seed(0)
            model = TorchSpecModel(typed).to(place, memory_format=torch.channels_last).train()
            if count_values(model) != (typed.trainable, typed.params - typed.trainable):
                raise SystemExit(f"the PyTorch model holds {count_values(model)} values, the spec {typed.params}")
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4, fused=cuda)
            images = torch.randint(0, 256, (2 * batch, c, h, w), dtype=torch.uint8, device=place)
            images = images.contiguous(memory_format=torch.channels_last)
            labels = torch.randint(0, classes, (2 * batch,), device=place)

            def step(
                index: int,
                model=model,
                optimizer=optimizer,
                images=images,
                labels=labels,
                batch=batch,
                bf16=precision == "bf16",
            ):
                chosen = slice((index % 2) * batch, (index % 2 + 1) * batch)
                x = images[chosen].float().div_(255.0)
                with torch.autocast(place.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = torch.nn.functional.cross_entropy(model(x).float(), labels[chosen])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                return loss

            def wait():
                if cuda:
                    torch.cuda.synchronize()

            started = time.perf_counter()
            for index in range(warmup):
                step(index)
            wait()
            warmup_seconds = time.perf_counter() - started
            started = time.perf_counter()
            for index in range(timed):
                loss = step(index)
            wait()
            seconds = time.perf_counter() - started
            finite = bool(torch.isfinite(loss).item())
            name = "pytorch-amp" if precision == "bf16" else "pytorch"
            rows.append(
                _row(
                    name,
                    typed,
                    precision,
                    batch,
                    timed,
                    seconds,
                    device,
                    finite=finite,
                    warmup_s=round(warmup_seconds, 1),
                )
            )
            del model, optimizer, images, labels
            if cuda:
                torch.cuda.empty_cache()
    return rows


def print_table(jax_rows: list[dict], torch_rows: list[dict]) -> None:
    theirs = {(row["precision"], row["batch_size"]): row for row in torch_rows}
    first = jax_rows[0]
    print(f"{first['input']} on {first['device']}" + (f"; PyTorch on {torch_rows[0]['device']}" if torch_rows else ""))
    print(
        f"{'precision':>9} {'batch':>5} {'JAX img/s':>10} {'TFLOP/s':>8} {'of peak':>7} {'PyTorch img/s':>13} {'JAX/PyTorch':>11}"
    )
    for row in jax_rows:
        other = theirs.get((row["precision"], row["batch_size"]))
        share = f"{row['peak_share']:.0%}" if row["peak_share"] is not None else "?"
        torch_speed = f"{other['images_per_second']:,.1f}" if other else "-"
        ratio = f"{row['images_per_second'] / other['images_per_second']:.2f}x" if other else "-"
        print(
            f"{row['precision']:>9} {row['batch_size']:>5} {row['images_per_second']:>10,.1f} {row['tflops']:>8.2f} "
            f"{share:>7} {torch_speed:>13} {ratio:>11}"
        )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    main()
