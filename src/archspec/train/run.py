"""The run folder: what a training run leaves behind, and the checks before one is resumed.

runs/gap-head-20250101-120000/
  config.json     the TrainConfig (spec text included), data fingerprint and class names, versions
  metrics.jsonl   one JSON object per epoch: train and validation loss and accuracy, lr, timing
  curves.png      loss and accuracy per epoch, train vs validation
  results.json    the final numbers: best epoch, its validation and test metrics
  checkpoints/    orbax checkpoints, the last N (`--keep`)
  best/           the checkpoint with the best validation accuracy
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

from archspec.errors import PathError, UserError
from archspec.train.checkpoint import has_checkpoints
from archspec.train.config import TrainConfig

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
RESULTS_FILE = "results.json"
RUNS_DIR = "runs"
FORMAT_VERSION = 1


def spec_name(spec: str) -> str:
    """`path/to/my-net.arch` → `my-net`; a template name stays as it is."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(spec).stem) or "spec"


def default_run_dir(spec: str, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path(RUNS_DIR) / f"{spec_name(spec)}-{stamp}"


def latest_run_dir(spec: str) -> Path | None:
    """The newest `runs/<spec-name>-<timestamp>` holding a config (what `--resume` alone continues)."""
    pattern = re.compile(re.escape(spec_name(spec)) + r"-\d{8}-\d{6}(-\d+)?")
    runs = Path(RUNS_DIR)
    found = (
        sorted(p for p in runs.iterdir() if pattern.fullmatch(p.name) and (p / CONFIG_FILE).is_file())
        if runs.is_dir()
        else []
    )
    return found[-1] if found else None


def check_fresh(run_dir: Path) -> None:
    """Refuse to start a run in a folder that holds one (a run stopped before its first checkpoint
    holds nothing to keep: it is started afresh)."""
    if has_checkpoints(run_dir):
        raise PathError(
            str(run_dir), "already holds a training run", hint="pass --resume to continue it, or choose another --out"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise PathError(str(run_dir), "exists and is not a folder", hint="choose another --out")


def create(run_dir: Path, config: TrainConfig, dataset) -> None:
    """Make the run folder and write its config.json (after `check_fresh`)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PathError(str(run_dir), f"cannot create the run folder ({error.strerror})") from None
    _write_json(run_dir / CONFIG_FILE, describe(config, dataset))
    (run_dir / METRICS_FILE).write_text("", encoding="utf-8")


def describe(config: TrainConfig, dataset) -> dict[str, Any]:
    """config.json's content: everything needed to reproduce the run."""
    from importlib import metadata

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    import jax

    return {
        "format": FORMAT_VERSION,
        "config": config.to_json(),
        "data": {
            "source": dataset.source,
            "fingerprint": dataset.fingerprint,
            "class_names": list(dataset.class_names),
            "images": {split: _count(getattr(dataset, f"x_{split}")) for split in ("train", "val", "test")},
            "skipped": list(dataset.skipped),
        },
        "devices": {
            "count": jax.device_count(),
            "processes": jax.process_count(),
            "kind": jax.devices()[0].device_kind,
            "platform": jax.default_backend(),
        },
        "versions": {
            "python": platform.python_version(),
            **{
                name: version(name)
                for name in ("cnn-arch", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
            },
        },
        "command": sys.argv,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def read(run_dir: str | Path) -> dict[str, Any]:
    """config.json of a run folder, checked enough to rebuild its config."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise PathError(
            str(run_dir),
            "no such run folder",
            hint="pass the folder `cnn-arch train` wrote (its --out, by default runs/<spec>-<time>)",
        )
    if not path.is_file():
        raise PathError(
            str(run_dir),
            f"is not a training run (no {CONFIG_FILE})",
            hint="pass the folder `cnn-arch train` wrote (its --out, by default runs/<spec>-<time>)",
        )
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        TrainConfig.from_json(saved["config"])
        saved["data"]["fingerprint"], saved["data"]["class_names"]
    except (OSError, ValueError, KeyError, TypeError, UserError) as error:
        raise PathError(str(path), f"is damaged or not a cnn-arch run config ({error})") from None
    return saved


def saved_config(saved: dict[str, Any]) -> TrainConfig:
    return TrainConfig.from_json(saved["config"])


def check_resumable(saved: dict[str, Any], config: TrainConfig, dataset, run_dir: Path) -> None:
    """Refuse to resume a run with a different spec, data or training settings."""
    before = saved_config(saved)
    changes = before.differences(config)
    if saved["data"]["fingerprint"] != dataset.fingerprint:
        changes.append(
            f"the data differs ({saved['data']['source']} then, {dataset.source} now, "
            f"with other images, labels or split)"
        )
    if changes:
        raise UserError(
            f"cannot resume {run_dir}: " + "; ".join(changes),
            hint="resume with the spec, data and options the run started with, or start a new run "
            "(without --resume, or with another --out)",
        )
    if not has_checkpoints(run_dir):
        raise PathError(
            str(run_dir),
            "has no checkpoint to resume from",
            hint="the run stopped before its first checkpoint; start it again without --resume",
        )


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    with open(run_dir / METRICS_FILE, "a", encoding="utf-8") as file:
        file.write(json.dumps(row) + "\n")
        file.flush()
        os.fsync(file.fileno())


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break  # a line cut short by a crash: the rows after it cannot be trusted either
    return rows


def keep_metrics_until(run_dir: Path, step: int) -> None:
    """Drop the epoch rows logged after `step` (a resumed run logs them again)."""
    rows = [row for row in read_metrics(run_dir) if row["step"] <= step]
    _write_text(run_dir / METRICS_FILE, "".join(json.dumps(row) + "\n" for row in rows))


def write_results(run_dir: Path, results: dict[str, Any]) -> None:
    _write_json(run_dir / RESULTS_FILE, results)


def _count(array) -> int:
    return 0 if array is None else len(array)


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    """Atomically: a temporary file renamed over the old one."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
