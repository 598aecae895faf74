"""The worst specs the fuzzer found, each refused in well under a second: nested repeats over
`identity`, macros that call the next macro twice per level 30 deep, and the largest `xN` loops.

    python benchmarks/bench_expansion_bound.py      (exits 3 if any takes a second or more)
"""

from __future__ import annotations

import sys
import time

from archspec.compile import compile_spec
from archspec.errors import SpecError

MACROS = "".join(f"def m{i}():\n    m{i + 1}\n    m{i + 1}\n" for i in range(30)) + "def m30():\n    identity\n"
CASES = {
    "repeat 10000 in repeat 10000 over identity": "input 8x8x1\nrepeat 10000:\n    repeat 10000:\n        identity\n",
    "repeat 10000 over identity x10000": "input 8x8x1\nrepeat 10000:\n    identity x10000\n",
    "macros calling twice per level, 30 deep": MACROS + "input 8x8x1\nm0\n",
    "macros twice per level, 30 deep, in a repeat": MACROS + "input 8x8x1\nrepeat 10000:\n    m25\n",
    "three nested repeats over a merge of identities": (
        "input 8x8x1\nrepeat 10000:\n    repeat 10000:\n        repeat 10000:\n"
        "            add:\n                identity\n                identity\n"
    ),
    "repeat 10000 in repeat 10000 over a false `if` reading `channels`": (
        "input 8x8x1\nrepeat 10000:\n    repeat 10000:\n        if channels > 9:\n            relu\n"
    ),
}


def main() -> int:
    worst = 0.0
    for name, text in CASES.items():
        start = time.perf_counter()
        try:
            compile_spec(text, "bench.arch")
            outcome = "compiled"
        except SpecError as error:
            outcome = f"refused at {error.span.line}:{error.span.column}"
        elapsed = time.perf_counter() - start
        worst = max(worst, elapsed)
        print(f"{elapsed * 1000:8.1f} ms  {outcome:18}  {name}")
    print(f"worst: {worst * 1000:.1f} ms")
    return 0 if worst < 1.0 else 3


if __name__ == "__main__":
    sys.exit(main())
