"""Orbax checkpoints of a run folder: `checkpoints/` keeps the last N, `best/` the best one.

A checkpoint holds everything that decides what happens next, so a resumed run continues bit for
bit: the train state (step, parameters, BatchNorm statistics, dropout RNG streams, optimizer state,
data-order key), the running sums of the current epoch's metrics, and a small JSON record of the
host-side progress (best validation accuracy so far). Orbax writes each checkpoint to a temporary
folder and renames it when complete, so a crash mid-save leaves the previous checkpoints intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LATEST_DIR = "checkpoints"
BEST_DIR = "best"


class Checkpoints:
    """The checkpoints of one run folder. Every process of a multi-process run must make the same calls."""

    def __init__(self, run_dir: str | Path, *, keep: int = 3, read_only: bool = False) -> None:
        import orbax.checkpoint as ocp

        self.run_dir = Path(run_dir).absolute()

        def manager(name: str, max_to_keep: int):
            # Read-only use neither creates nor deletes anything (orbax's own read_only mode only warns more).
            options = ocp.CheckpointManagerOptions(
                max_to_keep=None if read_only else max_to_keep,
                create=not read_only,
                cleanup_tmp_directories=not read_only,
            )
            return ocp.CheckpointManager(self.run_dir / name, options=options)

        self._latest = manager(LATEST_DIR, keep)
        self._best = manager(BEST_DIR, 1)

    def latest_step(self) -> int | None:
        return self._latest.latest_step()

    def best_step(self) -> int | None:
        return self._best.latest_step()

    def save(self, step: int, state: Any, totals: Any, progress: dict[str, Any], *, best: bool) -> None:
        """Start saving (in the background); `best` also replaces the best checkpoint."""
        if step != self._latest.latest_step():
            self._latest.save(step, args=_save_args(state, totals, progress), force=True)
        if best:
            self._best.save(step, args=_save_args(state, totals, progress), force=True)

    def restore(
        self, abstract_state: Any, abstract_totals: Any = None, *, which: str = "latest"
    ) -> tuple[Any, Any, dict]:
        """(state, totals, progress) of the latest or best checkpoint, placed like the abstract trees.
        Without `abstract_totals` the metric sums are not read (totals is None)."""
        import orbax.checkpoint as ocp

        manager = self._best if which == "best" else self._latest
        items = {"state": ocp.args.StandardRestore(abstract_state), "progress": ocp.args.JsonRestore()}
        if abstract_totals is not None:
            items["totals"] = ocp.args.StandardRestore(abstract_totals)
        restored = manager.restore(manager.latest_step(), args=ocp.args.Composite(**items))
        totals = restored["totals"] if abstract_totals is not None else None
        return restored["state"], totals, dict(restored["progress"])

    def forget_after(self, step: int) -> None:
        """Delete checkpoints newer than `step` (left by a run that is resumed from `step`)."""
        for manager in (self._latest, self._best):
            for later in [s for s in manager.all_steps() if s > step]:
                manager.delete(later)

    def wait(self) -> None:
        """Block until background saves are on disk."""
        self._latest.wait_until_finished()
        self._best.wait_until_finished()

    def close(self) -> None:
        self._latest.close()
        self._best.close()


def has_checkpoints(run_dir: str | Path) -> bool:
    folder = Path(run_dir) / LATEST_DIR
    return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())


def _save_args(state, totals, progress):
    import orbax.checkpoint as ocp

    return ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        totals=ocp.args.StandardSave(totals),
        progress=ocp.args.JsonSave(progress),
    )
