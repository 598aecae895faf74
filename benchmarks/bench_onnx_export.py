"""ONNX export of every template through jax2onnx, as `cnn-arch export` converts (`spec_onnx`: the
spec's Flax model, zero weights, at the template's smallest input of tests/interop/test_onnx_round_trip.py).

    python benchmarks/bench_onnx_export.py            # cnn-arch's conversion
    python benchmarks/bench_onnx_export.py --stock    # jax2onnx as it comes: every plugin, its own lookups

Prints each template's seconds and the first 16 hex digits of the SHA-256 of its file, so the two
modes can be checked to write the same bytes; run each mode in its own process (jax2onnx imports its
plugins once per process, at the first conversion: the first template's time includes it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stock", action="store_true", help="jax2onnx's own plugin discovery and graph lookups")
    parser.add_argument("templates", nargs="*", help="default: every template")
    args = parser.parse_args()

    from archspec import templates
    from archspec.compile import compile_spec
    from archspec.interop import onnx_export
    from tests.interop.test_onnx_round_trip import SMALLEST

    if args.stock:
        onnx_export._graph_lookups_in_linear_time = contextlib.nullcontext
        onnx_export._import_jax_and_flax_plugins = lambda: None
    started = time.perf_counter()
    for name in args.templates or list(SMALLEST):
        text = templates.path(name).read_text(encoding="utf-8")
        side, channels = SMALLEST[name], compile_spec(text, name).input_shape[-1]
        typed = compile_spec(text, name, (side, side, channels))
        begun = time.perf_counter()
        data = onnx_export.spec_onnx(typed).SerializeToString()
        print(f"{name:<22}{time.perf_counter() - begun:7.1f} s  {hashlib.sha256(data).hexdigest()[:16]}", flush=True)
    print(f"{'all':<22}{time.perf_counter() - started:7.1f} s ({'stock' if args.stock else 'cnn-arch'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
