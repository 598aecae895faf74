"""Orbax checkpoints of a run folder: `checkpoints/` keeps the last N, `best/` the best one.

Each checkpoint holds four items (five when the data is streamed):
- `model`: the parameters and the model state to evaluate with (BatchNorm statistics recomputed for
  these weights): all that `evaluate` and `predict` read, so a change of the optimizer never makes
  an old run folder unreadable;
- `train`: the rest of the train state (step, BatchNorm moving averages, dropout RNG streams,
  optimizer state, data-order key), so that a resumed run continues bit for bit;
- `totals`: the running sums of the current epoch's metrics;
- `progress`: a small JSON record of the host-side progress (best validation accuracy so far);
- `data`: where the Grain stream of a streamed dataset stands (its epoch, position and iterator
  state, JSON), so that a resumed run reads the batches an uninterrupted one would.

Orbax writes each checkpoint to a temporary folder and renames it when complete, so a crash mid-save
leaves the previous checkpoints intact; a checkpoint damaged afterwards (a truncated file, a deleted
item) is skipped on restore in favour of the newest intact one, and the caller is told which.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

from archspec.errors import PathError

LATEST_DIR = "checkpoints"
BEST_DIR = "best"


class Restored(NamedTuple):
    """What a restore found: the items asked for, the step they are from, and the newer (or best)
    checkpoints skipped as damaged, as (folder, reason) pairs."""

    items: dict[str, Any]
    step: int
    which: str  # "best" or "latest": the manager the items came from
    skipped: list[tuple[str, str]]


class Mismatch(Exception):
    """A checkpoint is intact but holds other arrays than asked for (another model's)."""


# Orbax's words for trees that are intact but do not fit the abstract tree asked for.
_MISMATCH_WORDS = ("not compatible with the stored shape", "mismatch", "structure", "Missing keys", "Unexpected keys")


class Checkpoints:
    """The checkpoints of one run folder. Every process of a multi-process run must make the same calls."""

    def __init__(self, run_dir: str | Path, *, keep: int = 3, read_only: bool = False) -> None:
        self.run_dir = Path(run_dir).absolute()
        self._keep, self._read_only = keep, read_only

    # Opened on first use: a new run's first save comes after its first step, which then does not
    # wait for orbax's import and its managers (0.1-0.16 s of a warm start).
    @functools.cached_property
    def _latest(self):
        return self._manager(LATEST_DIR, self._keep)

    @functools.cached_property
    def _best(self):
        return self._manager(BEST_DIR, 1)

    def _manager(self, name: str, max_to_keep: int):
        import orbax.checkpoint as ocp

        # Read-only use neither creates nor deletes anything (orbax's own read_only mode only warns more).
        options = ocp.CheckpointManagerOptions(
            max_to_keep=None if self._read_only else max_to_keep,
            create=not self._read_only,
            cleanup_tmp_directories=not self._read_only,
        )
        return ocp.CheckpointManager(self.run_dir / name, options=options)

    def _opened(self) -> list:
        return [self.__dict__[name] for name in ("_latest", "_best") if name in self.__dict__]

    def latest_step(self) -> int | None:
        return self._latest.latest_step()

    def best_step(self) -> int | None:
        return self._best.latest_step()

    def save(
        self, step: int, items: dict[str, Any], progress: dict[str, Any], *, best: bool, data: dict | None = None
    ) -> None:
        """Start saving array `items` and the JSON `progress` (and `data`, when given) in the
        background; `best` also replaces the best checkpoint. Read-only checkpoints save nothing."""
        if self._read_only:
            return
        import orbax.checkpoint as ocp

        json_items = {"progress": progress, **({"data": data} if data is not None else {})}
        args = ocp.args.Composite(
            **{name: ocp.args.JsonSave(value) for name, value in json_items.items()},
            **{name: ocp.args.StandardSave(tree) for name, tree in items.items()},
        )
        import jax

        # Several processes: orbax's save barriers share one name across managers, so one manager's
        # save must be finished before another's starts (else "Barrier ... is already ongoing").
        one_at_a_time = jax.process_count() > 1
        if step != self._latest.latest_step():
            self._latest.save(step, args=args, force=True)
            if one_at_a_time:
                self._latest.wait_until_finished()
        if best:
            self._best.save(step, args=args, force=True)
            if one_at_a_time:
                self._best.wait_until_finished()

    def restore(
        self,
        abstract_items: dict[str, Any],
        *,
        which: str = "latest",
        step: int | None = None,
        json_items: tuple[str, ...] = (),
    ) -> Restored:
        """The newest intact checkpoint's `abstract_items` (placed like the abstract trees) and its
        progress record. `which="best"` tries the best checkpoint first, then the latest ones;
        `step` restores that checkpoint of the latest ones, or nothing. `json_items` (`data`) are
        restored too where the checkpoint has them.

        Raises:
            PathError: no checkpoint is intact.
        """
        import orbax.checkpoint as ocp

        candidates = [(self._latest, "latest", s) for s in sorted(self._latest.all_steps(), reverse=True)]
        if step is not None:
            candidates = [c for c in candidates if c[2] == step]
        elif which == "best":
            candidates = [(self._best, "best", s) for s in self._best.all_steps()[-1:]] + candidates
        skipped: list[tuple[str, str]] = []
        for manager, name, number in candidates:
            present = [item for item in json_items if (self._folder(name, number) / item).is_dir()]
            args = ocp.args.Composite(
                **{item: ocp.args.JsonRestore() for item in ("progress", *present)},
                **{item: ocp.args.StandardRestore(tree) for item, tree in abstract_items.items()},
            )
            try:
                restored = manager.restore(number, args=args)
                items = {item: restored[item] for item in (*abstract_items, "progress", *present)}
            except Exception as error:  # orbax raises many kinds for damaged files: all mean "not intact"
                _quiet_abandoned_reads()
                if any(word in str(error) for word in _MISMATCH_WORDS):
                    raise Mismatch(_reason(error)) from None
                skipped.append((str(self._folder(name, number)), _reason(error)))
                continue
            return Restored(items, number, name, skipped)
        if not candidates:
            missing = f"no checkpoint of step {step}" if step is not None else "no checkpoint"
            raise PathError(str(self.run_dir), f"has {missing}")
        listing = "; ".join(f"{folder}: {reason}" for folder, reason in skipped)
        raise PathError(
            str(self.run_dir),
            f"has no intact checkpoint ({listing})",
            hint="the checkpoints were damaged after they were written; train the run again",
        )

    def forget_after(self, step: int) -> None:
        """Delete checkpoints newer than `step` (left by a run that is resumed from `step`)."""
        if self._read_only:
            return
        for manager in (self._latest, self._best):
            for later in [s for s in manager.all_steps() if s > step]:
                manager.delete(later)

    def wait(self) -> None:
        """Block until background saves are on disk."""
        for manager in self._opened():
            manager.wait_until_finished()

    def close(self) -> None:
        for manager in self._opened():
            manager.close()

    def _folder(self, which: str, step: int) -> Path:
        return self.run_dir / (BEST_DIR if which == "best" else LATEST_DIR) / str(step)


def has_checkpoints(run_dir: str | Path) -> bool:
    folder = Path(run_dir) / LATEST_DIR
    return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())


def _quiet_abandoned_reads() -> None:
    """A failed restore abandons TensorStore reads whose callbacks then find orbax's event loop closed
    and print a traceback each (through `sys.unraisablehook`): drop those, and only those."""
    previous = sys.unraisablehook
    if getattr(previous, "drops_abandoned_reads", False):
        return

    def hook(unraisable) -> None:
        error = unraisable.exc_value
        if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
            return
        previous(unraisable)

    hook.drops_abandoned_reads = True
    sys.unraisablehook = hook


def _reason(error: BaseException) -> str:
    """What was wrong with a checkpoint's files, from orbax's or TensorStore's error."""
    text = str(error).strip()
    if (missing := re.search(r"Item \W?(\w+)\W? was not found", text)) is not None:
        return f"its `{missing.group(1)}` item is missing"
    if any(word in text for word in ("TensorStore", "OCDBT", "zarr", "manifest")):
        return "an array file is damaged or missing"
    if isinstance(error, ValueError) and text.startswith("Expecting"):  # json's words
        return "a metadata file is damaged"
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 160 else line[:157] + "..."
