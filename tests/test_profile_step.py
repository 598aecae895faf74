"""benchmarks/profile_step.py, where a train step's time goes by XLA kernel kind: on a tiny spec it
must find XLA:CPU's kernels in the profiler's trace (an XLA that stops recording them would make it
print nothing useful) and give each kind's time, share and count."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "profile_step.py"
TINY = """\
input 16x16x3
conv 8 3 padding=same
bn
relu
conv 8 3 padding=same relu
dwconv 3 padding=same relu
gap
dense 4 softmax
"""


@pytest.mark.slow  # a compilation and a profiled run in a subprocess (about 10 s)
def test_a_tiny_step_is_broken_down_by_kernel_kind(tmp_path):
    spec = tmp_path / "tiny.arch"
    spec.write_text(TINY)
    command = [sys.executable, str(SCRIPT), "--spec", str(spec), "--input", "16x16x3", "--batch", "8"]
    done = subprocess.run([*command, "--steps", "2", "--top", "100"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    step = re.search(r"^step: (.+); kernels: ([\d.]+) ms", done.stdout, re.MULTILINE)
    assert step and float(step.group(2)) > 0, done.stdout
    wall = re.fullmatch(r"([\d.]+) ms under the profiler|its wall time not recorded", step.group(1))
    assert wall and (wall.group(1) is None or float(wall.group(1)) > 0)
    rows = re.findall(r"^\| (\S+) \| ([\d.]+) \| ([\d.]+)% \| (\d+) \|$", done.stdout, re.MULTILINE)
    kinds = [kind for kind, *_ in rows]
    assert len(kinds) >= 3 and len(set(kinds)) == len(kinds)
    assert any(kind.endswith("fusion") for kind in kinds)  # XLA's fused kernels, named without their number
    assert not any(re.search(r"\.\d+$", kind) for kind in kinds)
    assert 98 <= sum(float(share) for *_, share, _ in rows) <= 102  # every kind listed (each share rounded)
    assert all(int(count) >= 1 for *_, count in rows)
    # the tiny spec's second convolution (8 channels in) runs in Eigen, asynchronously: marked as timed only in part
    assert "convolution*" in kinds and "convolution" not in kinds
    assert "* Eigen's, asynchronous: the trace holds only part of its time" in done.stdout
