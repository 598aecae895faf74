"""What precise BN costs: one recompute of every BatchNorm's statistics (forward passes over up to
8,192 training images, no gradients) against one training epoch, on the same model and data.

    python benchmarks/bench_precise_bn.py                          # gap-head at 32x32x1 on digits
    python benchmarks/bench_precise_bn.py --spec resnet50 --input 32x32x1 --batch-size 64

A run recomputes once per epoch (before validation) and once more for a mid-epoch checkpoint, so the
share printed is what precise BN adds to an epoch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="gap-head")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--input", default="32x32x1")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import jax
    import numpy as np

    from archspec import templates
    from archspec.train.compile_cache import compile_ahead
    from archspec.train.config import TrainConfig
    from archspec.train.setup import prepare

    text = (templates.path(args.spec) or Path(args.spec)).read_text()
    shape = tuple(int(d) for d in args.input.split("x"))
    config = TrainConfig(spec=args.spec, spec_text=text, input_shape=shape, data=args.data, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as workdir:
        run_dir = Path(workdir) / "run"
        run_dir.mkdir()  # what `train_and_evaluate` does when it locks the folder
        prepared = prepare(config, run_dir, resume=False)
        compile_ahead(prepared)  # the train step began compiling in `prepare`: as the loop does, wait for it
        fns, state, totals = prepared.fns, prepared.state, prepared.totals
        if not fns.precise_bn:
            raise SystemExit(f"{args.spec} has no BatchNorm: precise BN costs nothing")
        order = fns.epoch_order(state.key, np.int32(0))

        def epoch(state, totals):
            for _ in range(prepared.steps_per_epoch):
                state, totals = fns.train_step(state, totals, prepared.images, prepared.labels, order)
            jax.block_until_ready(totals)
            return state, totals

        def recompute(state):
            return jax.block_until_ready(fns.inference_model(state))

        state, totals = epoch(state, totals)  # compiles
        recompute(state)
        epochs, recomputes = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            state, totals = epoch(state, totals)
            epochs.append(time.perf_counter() - started)
            started = time.perf_counter()
            recompute(state)
            recomputes.append(time.perf_counter() - started)
        prepared.checkpoints.close()
    images = min(len(prepared.dataset.y_train) // args.batch_size, -(-8192 // args.batch_size)) * args.batch_size
    epoch_s, recompute_s = statistics.median(epochs), statistics.median(recomputes)
    print(f"{args.spec} at {args.input}, batch {args.batch_size}, {jax.default_backend()}:")
    print(f"  epoch ({prepared.steps_per_epoch} steps):         {epoch_s:.3f} s")
    print(
        f"  precise BN ({images:,} images, forward only): {recompute_s:.3f} s = {recompute_s / epoch_s:.1%} of an epoch"
    )


if __name__ == "__main__":
    main()
