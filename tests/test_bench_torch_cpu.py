"""benchmarks/bench_torch_cpu.py, the side-by-side training benchmark (issue 24), in its smoke mode:
`cnn-arch train` itself and PyTorch eager (NCHW, channels-last) and torch.compile on a tiny spec,
with the table a user reads: every contender's rate, the ratio to channels-last, the load."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).parents[1] / "benchmarks" / "bench_torch_cpu.py"


@pytest.mark.slow  # four training processes, torch.compile among them (about 20 s)
def test_smoke_run_prints_every_contender_and_the_ratio():
    done = subprocess.run([sys.executable, str(BENCHMARK), "--smoke"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^measured on: .*\d+ usable cores.*torch \d", out, re.MULTILINE)
    for contender in ("cnn-arch", "torch", "torch-cl"):
        assert re.search(rf"\] {re.escape(contender)} +[\d,.]+ images/s", out), contender
    row = next(line for line in out.splitlines() if line.startswith("| smoke"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    rates = [float(cell.replace(",", "")) for cell in cells[2:5]]
    assert all(rate > 0 for rate in rates)
    # torch.compile runs where it works (it needs a C++ compiler); the table says so otherwise
    assert cells[5] == "failed" or float(cells[5].replace(",", "")) > 0
    # the ratio is cnn-arch's rate over PyTorch channels-last's, as printed in the same row
    ratio = float(cells[6].strip("*x"))
    assert ratio == pytest.approx(rates[0] / rates[2], abs=0.01)
    # what cnn-arch trained on, from its run's config.json: a process per core, or its devices
    assert re.search(r"cnn-arch trained on the CPU in smoke: (\d+ devices?|\d+ processes, one per core)\.", out)
