"""One 3x3 convolution's three passes on XLA:CPU, and the ways of computing its weight gradient that
docs/performance.md lists as tried: where the time of a CNN's training step goes on a CPU.

    python benchmarks/bench_conv_grads.py                   # the shapes below, float32
    python benchmarks/bench_conv_grads.py --dtype bfloat16
    python benchmarks/bench_conv_grads.py --shape 64x32x32x64x64

Each function is compiled once and timed; for one core, run it under `taskset -c 0` (its
XLA_FLAGS=--xla_cpu_multi_thread_eigen=false keeps Eigen to one thread but not YNNPACK); the figure is the fastest of `--repeats` runs, in ms and GFLOP/s of
the convolution's 2 x MACs. Every weight gradient is checked against XLA's own (`jax.vjp` of
`lax.conv_general_dilated`) before it is timed.

- `forward`, `input grad`, `weight grad (XLA)`: XLA's convolution and its two gradients, as
  `archspec.gradients` leaves them for a stride-1 convolution of more than four input channels,
  with XLA's defaults (YNNPACK's convolutions); the same three `(Eigen)`: compiled as `train`
  compiles its step (`compile_cache.MODEL_COMPILE`: YNNPACK not given convolutions, XLA's Eigen
  convolutions instead).
- `weight grad, per tap`: for each of the 9 kernel positions, the input's strided slice (N*H*W, C)
  contracted with the output gradient (N*H*W, F): 9 matrix products.
- `weight grad, stacked taps`: the 9 slices stacked and contracted in one einsum.
- `weight grad, patches`: `lax.conv_general_dilated_patches` (im2col), then one matrix product.
- `weight grad, swapped`: a convolution with the roles swapped (the channels as batch, the batch
  as the contracted feature, the output gradient as a 32x32 kernel), as cuDNN-style backends do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SHAPES = (
    "16x30x30x32x32",
    "32x16x16x128x128",
    "64x32x32x64x64",
)  # N x H x W x C x F: gap-head's, a CIFAR net's, issue 24's


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", action="append", help="NxHxWxCxF (repeatable; default: three shapes)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    import jax

    print(f"jax {jax.__version__}, XLA_FLAGS={os.environ['XLA_FLAGS']}, load average {os.getloadavg()[0]:.2f}")
    for shape in args.shape or SHAPES:
        n, h, w, c, f = (int(v) for v in shape.split("x"))
        print(f"\n3x3 convolution, padding same, {n}x{h}x{w}x{c} -> {f}, {args.dtype}")
        for name, ms, gflops in measure(n, h, w, c, f, args.dtype, args.repeats):
            print(f"  {name:27s} {ms:8.2f} ms  {gflops:6.1f} GFLOP/s")
    return 0


def measure(n, h, w, c, f, dtype, repeats):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    from archspec import gradients
    from archspec.train.compile_cache import MODEL_COMPILE

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((n, h, w, c), np.float32), dtype)
    kernel = jnp.asarray(rng.random((3, 3, c, f), np.float32), dtype)
    g = jnp.asarray(rng.random((n, h, w, f), np.float32), dtype)
    geometry = gradients.Geometry((3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))

    def forward(x, kernel):
        return gradients._xla_conv(x, kernel, geometry, 1)

    def input_grad(kernel, g):
        return jax.vjp(lambda x: forward(x, kernel), x)[1](g)[0]

    def weight_grad(x, g):
        return jax.vjp(lambda kernel: forward(x, kernel), kernel)[1](g)[0]

    def taps(x):
        padded = gradients._pad(x, geometry)
        return [gradients._tap(padded, geometry, (h, w), i, j) for i, j in geometry.taps()]

    def per_tap(x, g):
        rows = g.reshape(-1, f)
        return jnp.stack([tap.reshape(-1, c).T @ rows for tap in taps(x)]).reshape(3, 3, c, f)

    def stacked_taps(x, g):
        return jnp.einsum("nhwtc,nhwf->tcf", jnp.stack(taps(x), axis=3), g).reshape(3, 3, c, f)

    def patches(x, g):
        windows = lax.conv_general_dilated_patches(
            x, (3, 3), (1, 1), ((1, 1), (1, 1)), dimension_numbers=gradients.NHWC
        )  # (N, H, W, C*9), channel-major
        rows = windows.reshape(-1, c, 9).transpose(0, 2, 1).reshape(-1, 9 * c)
        return (rows.T @ g.reshape(-1, f)).reshape(3, 3, c, f)

    def swapped(x, g):
        padded = gradients._pad(x, geometry)
        return lax.conv_general_dilated(padded, g, (1, 1), "VALID", dimension_numbers=("CHWN", "IHWO", "HWNC"))

    reference = jax.jit(weight_grad)(x, g)
    scale = float(jnp.max(jnp.abs(reference.astype(jnp.float32))))
    flops = 2 * n * h * w * 9 * c * f
    eigen = MODEL_COMPILE
    cases = [  # name, function, operands, checked against XLA's weight gradient, compiler options
        ("forward", forward, (x, kernel), False, None),
        ("input grad", input_grad, (kernel, g), False, None),
        ("weight grad (XLA)", weight_grad, (x, g), False, None),
        ("forward (Eigen)", forward, (x, kernel), False, eigen),
        ("input grad (Eigen)", input_grad, (kernel, g), False, eigen),
        ("weight grad (Eigen)", weight_grad, (x, g), True, eigen),
        ("weight grad, per tap", per_tap, (x, g), True, None),
        ("weight grad, stacked taps", stacked_taps, (x, g), True, None),
        ("weight grad, patches", patches, (x, g), True, None),
        ("weight grad, swapped", swapped, (x, g), True, None),
    ]
    for name, function, operands, check, options in cases:
        compiled = jax.jit(function, compiler_options=options)
        result = jax.block_until_ready(compiled(*operands))
        if check:
            error = float(jnp.max(jnp.abs(result.astype(jnp.float32) - reference.astype(jnp.float32)))) / scale
            tolerance = 2e-2 if dtype == "bfloat16" else 1e-4
            assert error < tolerance, f"{name}: relative error {error:.1e}"
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(compiled(*operands))
            times.append(time.perf_counter() - start)
        yield name, min(times) * 1e3, flops / min(times) / 1e9


if __name__ == "__main__":
    sys.exit(main())
