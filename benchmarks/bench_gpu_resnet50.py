"""Images/s of cnn-arch's train step on one accelerator: ResNet-50 at 224x224, bf16, synthetic data.

    python benchmarks/bench_gpu_resnet50.py                          # resnet50, batch 256, bf16
    python benchmarks/bench_gpu_resnet50.py --spec my.arch --input 128x128x3 --precision fp32

It runs the very step `cnn-arch train` runs (`archspec.train.loop.train_step`: batch gathered by index
from uint8 images kept on the device, normalized there, AdamW, BatchNorm statistics, metric sums),
jitted and donated the same way, on random images and labels. After `--warmup` steps (compilation
included) it times `--steps` steps and prints images/s.

Target (DESIGN.md): above 3,000 images/s on one H100 (PyTorch mixed precision: about 2,600-2,800).
Runs anywhere: without a GPU or TPU the defaults shrink to a smoke test (batch 8, 3 steps).
"""

from __future__ import annotations

import argparse
import functools
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="resnet50", help="spec file or template (default: resnet50)")
    parser.add_argument("--input", default=None, help="input HxWxC (default: the spec's, 224x224x3 for resnet50)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 256 (8 without an accelerator)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps; default: 50 (3 without an accelerator)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation included)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import numpy as np

    from archspec.train import distributed
    from archspec.train.config import TrainConfig
    from archspec.train.loop import create_train_state, epoch_order, head_of, make_optimizer, make_schedule, train_step
    from archspec.train.metrics import Task, zero_sums
    from cnn_arch.cli.common import compile_target, read_target

    accelerated = jax.default_backend() != "cpu"
    batch_size = args.batch_size or (256 if accelerated else 8)
    steps = args.steps or (50 if accelerated else 3)
    name, text = read_target(args.spec)
    typed = compile_target(args.spec, args.input)
    classes = typed.output_shape[0]
    config = TrainConfig(
        spec=name, spec_text=text, input_shape=typed.input_shape, batch_size=batch_size, precision=args.precision
    )

    mesh = distributed.make_mesh(jax.devices()[:1])  # one accelerator
    replicated = distributed.replicated(mesh)
    images_count = 2 * batch_size  # two batches of distinct images, reshuffled like an epoch
    steps_per_epoch = images_count // batch_size
    rng = np.random.default_rng(0)
    images = jax.device_put(rng.integers(0, 256, (images_count, *typed.input_shape), dtype=np.uint8), replicated)
    labels = jax.device_put(rng.integers(0, classes, images_count).astype(np.int32), replicated)

    task = Task(head_of(typed), classes, classes)
    tx = make_optimizer(config, make_schedule(config, steps_per_epoch))
    dtype = jnp.bfloat16 if args.precision == "bf16" else None
    graphdef, state = create_train_state(typed, tx, seed=0, dtype=dtype, sharding=replicated)
    totals = jax.jit(lambda: {**zero_sums(task), "finite": jnp.ones((), bool)}, out_shardings=replicated)()
    step = jax.jit(
        functools.partial(
            train_step,
            graphdef=graphdef,
            tx=tx,
            task=task,
            steps_per_epoch=steps_per_epoch,
            augment=(),
            batch_sharding=distributed.batch_sharded(mesh),
        ),
        donate_argnums=0,
    )
    order = jax.jit(
        functools.partial(epoch_order, num_examples=images_count, steps=steps_per_epoch, batch_size=batch_size)
    )(state.key, np.int32(0))

    for _ in range(args.warmup):
        state, totals = step(state, totals, images, labels, order)
    jax.block_until_ready(totals)
    started = time.perf_counter()
    for _ in range(steps):
        state, totals = step(state, totals, images, labels, order)
    jax.block_until_ready(totals)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "spec": name,
                "input": "x".join(map(str, typed.input_shape)),
                "params": typed.params,
                "precision": args.precision,
                "batch_size": batch_size,
                "steps": steps,
                "device": jax.devices()[0].device_kind,
                "images_per_second": round(batch_size * steps / seconds, 1),
                "finite": bool(totals["finite"]),
            }
        )
    )


if __name__ == "__main__":
    main()
