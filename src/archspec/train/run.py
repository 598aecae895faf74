"""The run folder: what a training run leaves behind, and the checks before one is resumed.

runs/gap-head-20250101-120000/
  config.json     the TrainConfig (spec text included), data fingerprint and class names, versions
  metrics.jsonl   one JSON object per epoch: train and validation loss and accuracy, lr, timing
  curves.png      loss and accuracy per epoch, train vs validation
  results.json    the final numbers: the epoch kept and why (`selection`), its validation and test metrics
  tensorboard/    TensorBoard event files: train/ and validation/ sub-runs (`events`)
  checkpoints/    orbax checkpoints, the last N (`--keep`)
  best/           the checkpoint of the epoch kept (--monitor: lowest validation loss by default)
  train.lock      held by the training that writes the folder (two trainings never share one)

A fault of the machine while the folder is written (a full disk, a folder that became read-only)
ends training with a message naming the file; the checkpoints already complete stay intact.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archspec.errors import PathError, UserError
from archspec.train.checkpoint import has_checkpoints
from archspec.train.config import TrainConfig

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
RESULTS_FILE = "results.json"
LOCK_FILE = "train.lock"
RUNS_DIR = "runs"
FORMAT_VERSION = 2  # 2: checkpoints hold `model` (with precise BN statistics) and `train` items
# Errors of the machine, not of the user's input: the disk filled up or stopped taking writes.
WRITE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


@dataclass(frozen=True)
class Progress:
    """Host-side progress saved with each checkpoint: the epoch kept so far (`selection`)."""

    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    best_step: int | None = None
    best_val_loss: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "best_val_accuracy": self.best_val_accuracy,
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
            "best_val_loss": self.best_val_loss,
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> Progress:
        loss = saved.get("best_val_loss")
        if loss is None and saved.get("best_val_accuracy") is not None:
            loss = float("-inf")  # saved before losses were kept: a tie in accuracy never won then
        return cls(saved.get("best_val_accuracy"), saved.get("best_epoch"), saved.get("best_step"), loss)


class RunFolderError(PathError):
    """The run folder cannot be written: the disk is full or read-only."""


@contextmanager
def locked(run_dir: Path, primary: bool = True):
    """Hold the run folder's lock while training writes it: a second training on the same folder is
    refused at once. The lock is the kernel's (flock), so it is released on any exit, kill -9 too.
    Only process 0 of a multi-process run takes it (the others write nothing). A folder made here
    and left empty (the run was refused before it wrote anything), or made here by a run stopped
    before its first step (an exception with a true `nothing_saved`), is removed again."""
    if not primary:
        yield
        return
    from filelock import FileLock, Timeout

    if run_dir.exists() and not run_dir.is_dir():
        raise PathError(str(run_dir), "exists and is not a folder", hint="choose another --output")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(run_dir / LOCK_FILE, timeout=0)
        lock.acquire()
    except Timeout:
        raise PathError(
            str(run_dir),
            "is in use by another `cnn-arch train` (it holds " + str(run_dir / LOCK_FILE) + ")",
            hint="wait for that training to finish, or choose another --output",
        ) from None
    except OSError as error:
        raise PathError(str(run_dir), f"cannot create the run folder ({error.strerror})") from None
    stopped_early = False
    try:
        yield
    except BaseException as error:
        stopped_early = getattr(error, "nothing_saved", False) is True
        raise
    finally:
        lock.release()
        if created and stopped_early:
            # Stopped before the first step: the folder holds only what the set-up wrote (the
            # config, empty logs); "nothing to save" leaves no folder behind.
            shutil.rmtree(run_dir, ignore_errors=True)
        elif created and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
            # Refused before anything was written: leave no empty folder behind.
            (run_dir / LOCK_FILE).unlink()
            run_dir.rmdir()


@contextmanager
def folder_faults(run_dir: Path):
    """Turn a write fault of the machine anywhere inside (our writes, orbax's background saves,
    matplotlib's) into a `RunFolderError` naming the file and the free space. Orbax's background
    threads also log each fault with its traceback (absl, a dozen for one full disk; asyncio, for a
    write left failed when its event loop closed): those log records are dropped here, the one
    message says it. After the fault they drop every record: the process is ending while orbax's
    threads still run, and they log what the ending does to them ("cannot schedule new futures
    after interpreter shutdown")."""
    import logging

    quiet = _QuietWriteFaults()
    loggers = [logging.getLogger(name) for name in ("absl", "asyncio")]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    except PathError:
        raise
    except Exception as error:
        fault = _write_fault(error)
        if fault is None:
            raise
        quiet.ended = True
        path = fault.filename or run_dir
        free = _free_space(Path(path))
        raise RunFolderError(
            str(path),
            f"cannot be written: {fault.strerror or os.strerror(fault.errno)}"
            + (f" ({free} free on its disk)" if free else ""),
            hint="the checkpoints already complete are intact; free some space (or make the folder writable), "
            "then continue with the same command and --resume",
        ) from None
    # Left in place after a fault: orbax's threads go on logging it while the process ends.
    for logger in loggers:
        logger.removeFilter(quiet)


class _QuietWriteFaults:
    """A logging filter that drops the records of a write fault (their exception, or its words), and
    once `ended` (the fault is the run's one message) every record."""

    ended = False

    def filter(self, record) -> bool:
        if self.ended:
            return False
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _write_fault(error) is not None:
            return False
        return not _names_write_fault(record.getMessage())


def _names_write_fault(text: str) -> bool:
    """Whether `text` is the words of a write fault: `[Errno 28]`, or TensorStore's `[os_error_code='28']`."""
    return any(f"[Errno {code}]" in text or f"[os_error_code='{code}']" in text for code in WRITE_FAULTS)


def _write_fault(error: BaseException) -> OSError | None:
    """The OSError of a write fault in `error`'s chain of causes (orbax wraps them), if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in WRITE_FAULTS:
            return error
        for code in WRITE_FAULTS:  # some wrappers keep only the message of the OSError
            # tensorstore (orbax's array writes) words it `... [os_error_code='28']`
            if f"[Errno {code}]" in str(error) or f"[os_error_code='{code}']" in str(error):
                return OSError(code, os.strerror(code))
        error = error.__cause__ or error.__context__
    return None


def _free_space(path: Path) -> str | None:
    for folder in (path, *path.parents):
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        return f"{free / 2**20:,.1f} MiB"
    return None


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
            str(run_dir),
            "already holds a training run",
            hint="pass --resume to continue it, or choose another --output",
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise PathError(str(run_dir), "exists and is not a folder", hint="choose another --output")


def create(run_dir: Path, config: TrainConfig, dataset, devices: int | None = None) -> None:
    """Write the run folder's config.json (after `check_fresh`, under `locked`)."""
    _write_json(run_dir / CONFIG_FILE, describe(config, dataset, devices))
    (run_dir / METRICS_FILE).write_text("", encoding="utf-8")


def describe(config: TrainConfig, dataset, devices: int | None = None) -> dict[str, Any]:
    """config.json's content: everything needed to reproduce the run."""
    from importlib import metadata

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    import jax

    from archspec.train import cores

    return {
        "format": FORMAT_VERSION,
        "config": config.to_json(),
        "data": {
            "source": dataset.source,
            "fingerprint": dataset.fingerprint,
            "class_names": list(dataset.class_names),
            "images": {split: _count(getattr(dataset, f"y_{split}")) for split in ("train", "val", "test")},
            "skipped": list(dataset.skipped),
        },
        "devices": {
            "count": devices or jax.device_count(),  # the devices trained on (the mesh's)
            "processes": group.size if (group := cores.current()) else jax.process_count(),
            "process_per_core": group is not None,  # archspec.train.cores
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
            hint="pass the folder `cnn-arch train` wrote (its --output, by default runs/<spec>-<time>)",
        )
    if not path.is_file():
        raise PathError(
            str(run_dir),
            f"is not a training run (no {CONFIG_FILE})",
            hint="pass the folder `cnn-arch train` wrote (its --output, by default runs/<spec>-<time>)",
        )
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("format") != FORMAT_VERSION:
            raise PathError(
                str(run_dir),
                f"was written by another version of cnn-arch (run folder format {saved.get('format')}, "
                f"this version reads {FORMAT_VERSION})",
                hint="train it again with this version",
            )
        TrainConfig.from_json(saved["config"])
        saved["data"]["fingerprint"], saved["data"]["class_names"]
    except PathError:
        raise
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
            "(without --resume, or with another --output)",
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


def read_results(run_dir: str | Path) -> dict[str, Any] | None:
    """results.json of a finished run (None while it trains, or when it stopped early)."""
    try:
        return json.loads((Path(run_dir) / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _count(array) -> int:
    return 0 if array is None else len(array)


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    """Atomically: a temporary file renamed over the old one."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
