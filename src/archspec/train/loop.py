"""The training loop: one flat loop over global steps in `train_and_evaluate`, with each periodic
action (progress, validation, checkpoint, curves) a small method of `_Run`, as flax's ImageNet
example reads. The pure jitted functions live in `steps`; set-up (data, checks, state) in `setup`.

The host reads the device's running sums only every half second (the progress bar) and at the end
of an epoch, so the device never waits for Python.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax

from archspec.train import collector, compile_cache, cores, distributed, events, run, selection, steps, stopping
from archspec.train.config import TrainConfig
from archspec.train.metrics import finalize
from archspec.train.setup import Prepared, prepare
from archspec.train.steps import Model, TrainState

REFRESH_SECONDS = 0.5  # how often the progress bar reads the running metrics
CURVES_SECONDS = 60.0  # curves.png is redrawn at most this often (and when training ends or stops)
# Epoch-end checkpoints at most this often (and at the last epoch, on a new best, when stopped), so
# that short epochs do not spend their time saving; --checkpoint-every adds checkpoints by step.
CHECKPOINT_SECONDS = 30.0


class TrainResult(NamedTuple):
    state: TrainState  # the final state (not the best: that one is in the run folder's best/)
    results: dict[str, Any]  # results.json: which checkpoint is the model, its val and test metrics


class Stopped(Exception):
    """Training stopped early; `exit_code` tells the shell why."""

    exit_code = 1


class Interrupted(Stopped):
    """SIGINT or SIGTERM: a checkpoint was saved (when a step had been made); `--resume` continues."""

    def __init__(self, signal_number: int, step: int, run_dir: Path) -> None:
        self.exit_code = 128 + signal_number  # the shell convention: 130 for Ctrl-C, 143 for SIGTERM
        self.step = step
        self.nothing_saved = step == 0  # `run.locked` removes a run folder this run made
        name = signal.Signals(signal_number).name
        if step:
            super().__init__(f"stopped by {name} at step {step}; checkpoint saved in {run_dir}")
        else:
            super().__init__(f"stopped by {name} before the first step; nothing to save in {run_dir}")


class Diverged(Stopped):
    """The loss or a weight became NaN or infinite; nothing after the last good checkpoint was saved."""

    def __init__(self, message: str, last_checkpoint: Path | None) -> None:
        super().__init__(message)
        self.last_checkpoint = last_checkpoint  # what `--init-from` can start again from


class Reporter:
    """What the loop tells its user. This one stays silent; the CLI draws progress bars and tables."""

    def loading(self, stage: str, done: int, total: int) -> None:
        """While a data folder is read: `done` of `total` files hashed for the cache key (`stage`
        "hashing") or decoded ("decoding"); see `load_dataset`'s `progress`."""

    def start(self, info: dict[str, Any]) -> None:
        """Before the first step: devices, dataset sizes, steps per epoch, where a resumed run starts,
        damaged checkpoints skipped."""

    def compiled(self, seconds: float) -> None:
        """The train step was compiled (or loaded from the compilation cache) before the first epoch, in
        `seconds`."""

    def epoch_start(self, epoch: int, steps: int, position: int) -> None:
        """Epoch `epoch` (1-based) of `steps` steps begins at step `position` (0 unless resumed)."""

    def progress(self, epoch: int, position: int, metrics: dict[str, float], images_per_second: float) -> None:
        """Running train metrics of the epoch after `position` steps."""

    def epoch_end(self, row: dict[str, Any]) -> None:
        """One metrics.jsonl row."""

    def finish(self, results: dict[str, Any]) -> None:
        """After training: best epoch, validation and test metrics."""


def train_and_evaluate(
    config: TrainConfig, workdir: str | Path, *, resume: bool = False, reporter: Reporter | None = None, mesh=None
) -> TrainResult:
    """Train `config` into the run folder `workdir`; return the final state and results.

    Args:
        resume: continue the run in `workdir` from its newest intact checkpoint.
        reporter: receives progress; only process 0 reports.
        mesh: the devices to train on (default: a `batch` mesh over every device).

    Raises:
        UserError: a mistake in the spec, data, options or run folder, found before training, or a
            run folder that cannot be written (full disk): the last good checkpoint is intact.
        Interrupted: SIGINT or SIGTERM; a checkpoint was saved first.
        Diverged: the loss became NaN or infinite; the last good checkpoint is intact.
    """
    workdir = Path(workdir)
    primary = distributed.is_primary()
    reporter = reporter if reporter is not None and primary else Reporter()
    with stopping.stop_signals() as stop, run.locked(workdir, primary), run.folder_faults(workdir):
        _check_before_first_step(stop, 0, workdir)  # a Ctrl-C while the command started
        prepared = prepare(config, workdir, resume=resume, mesh=mesh, progress=reporter.loading)
        loop = _Run(prepared, reporter, primary)
        try:
            state, totals = prepared.state, prepared.totals
            _check_before_first_step(stop, int(state.step), workdir)  # a Ctrl-C while loading data
            reporter.start(prepared.info())
            reporter.compiled(compile_cache.compile_ahead(prepared))
            _check_before_first_step(stop, int(state.step), workdir)  # a Ctrl-C while compiling
            spe, order = prepared.steps_per_epoch, None
            for step in range(int(state.step), config.epochs * spe):
                epoch, position = divmod(step, spe)
                if order is None or position == 0:
                    order = loop.begin_epoch(state, epoch, position)
                batch = prepared.feed.batch(order)
                distributed.wait_for(state.step)  # one step in flight: the batch is read meanwhile
                state, totals = prepared.fns.train_step(state, totals, *batch)
                collector.resume()  # paused while the command started (a no-op after the first step)
                at_epoch_end = position + 1 == spe
                halt = stop.requested(sync_point=at_epoch_end or _is_multiple(step + 1, config.checkpoint_every))
                if at_epoch_end:
                    totals = loop.end_epoch(state, totals, epoch, halt)
                elif halt or _is_multiple(step + 1, config.checkpoint_every):
                    loop.save(state, totals, epoch)
                else:
                    loop.show_progress(epoch, position + 1, totals)
                if halt:
                    prepared.checkpoints.wait()
                    raise Interrupted(stop.signal_number, step + 1, workdir)
            prepared.checkpoints.wait()
            return TrainResult(state, loop.finish(state))
        except Stopped:
            if primary and run.read_metrics(workdir):
                loop.write_curves()
            raise
        finally:
            if prepared.compiling is not None:  # stopped before the first step: not left compiling
                prepared.compiling.close()
            loop.events.close()  # first: closing the checkpoints can raise (a full disk)
            prepared.feed.close()
            prepared.checkpoints.close()


class _Run:
    """The periodic actions of one run: progress readings, epoch ends, checkpoints, curves, results."""

    def __init__(self, prepared: Prepared, reporter: Reporter, primary: bool) -> None:
        self.p = prepared
        self.reporter = reporter
        self.primary = primary
        self.progress = prepared.progress
        self.saved_at = self.curves_at = time.monotonic()
        self.meter: _Meter | None = None
        self.epoch_started = 0.0
        self.first_position = 0
        self.evaluated: tuple[int, Model] | None = None  # (step, model with precise BN statistics)
        self.events = events.open_events(prepared, primary)  # TensorBoard

    def begin_epoch(self, state: TrainState, epoch: int, position: int) -> jax.Array:
        self.reporter.epoch_start(epoch + 1, self.p.steps_per_epoch, position)
        self.epoch_started = time.monotonic()
        self.first_position = position
        self.meter = _Meter(position, self.epoch_started, self.p.config.batch_size)
        order = self.p.feed.begin_epoch(state, epoch, position)
        if epoch == position == 0 and self.p.config.tensorboard_images:
            self.events.first_batch(self.p.dataset, order)
        return order

    def show_progress(self, epoch: int, position: int, totals: dict) -> None:
        if (reading := self.meter.read(position, totals)) is None:
            return
        read_position, sums, speed = reading
        if not distributed.several_processes():  # several processes decide at sync points only
            self.check_finite(sums["finite"], epoch, epoch * self.p.steps_per_epoch + read_position)
        self.reporter.progress(epoch + 1, read_position, finalize(sums), speed)

    def end_epoch(self, state: TrainState, totals: dict, epoch: int, stopping: bool) -> dict:
        """Validate, log the epoch, checkpoint when due; return fresh running sums."""
        config, step = self.p.config, int(distributed.to_host(state.step))
        train_sums = distributed.to_host(totals)
        seconds = time.monotonic() - self.epoch_started
        self.check_finite(train_sums["finite"], epoch, step)
        val = self.score("val", self.model(state)) if "val" in self.p.splits else None
        images = (self.p.steps_per_epoch - self.first_position) * config.batch_size
        row = _epoch_row(epoch + 1, step, float(self.p.schedule(step)), finalize(train_sums), val, seconds, images)
        best = self.progress
        improved = val is not None and selection.improves(
            val, best.best_val_loss, best.best_val_accuracy, config.monitor
        )
        if improved:
            self.progress = run.Progress(val["accuracy"], epoch + 1, step, val["loss"])
        if self.primary:
            run.append_metrics(self.p.workdir, row)
            self.events.epoch(row)
        self.reporter.epoch_end(row)
        # Several processes must agree on when to save: a process per core asks every process (the
        # exchange takes microseconds), JAX's processes save every epoch.
        due = time.monotonic() - self.saved_at >= CHECKPOINT_SECONDS
        if cores.current() is not None:
            due = distributed.all_agree(due)
        elif jax.process_count() > 1:
            due = True
        if due or improved or stopping or epoch + 1 == config.epochs:
            self.save(state, totals, epoch, best=improved)
        if self.primary and (time.monotonic() - self.curves_at >= CURVES_SECONDS or epoch + 1 == config.epochs):
            self.write_curves()
        return self.p.fns.new_totals()

    def model(self, state: TrainState) -> Model:
        """The model to evaluate and save at `state`'s step: BatchNorm statistics recomputed for its
        weights (precise BN), unless switched off or the model has none. Computed once per step."""
        step = int(distributed.to_host(state.step))
        if self.evaluated is None or self.evaluated[0] != step:
            self.evaluated = (step, self.p.fns.inference_model(state))
        return self.evaluated[1]

    def score(self, split: str, model: Model) -> dict[str, float]:
        return finalize(distributed.to_host(self.p.feed.evaluate(split, model)))

    def save(self, state: TrainState, totals: dict, epoch: int, *, best: bool = False) -> None:
        step, model = int(distributed.to_host(state.step)), self.model(state)
        self.check_finite(distributed.to_host(self.p.fns.all_finite(state, model)), epoch, step)
        items = {"model": model._asdict(), "train": steps.train_item(state), "totals": totals}
        self.p.checkpoints.save(step, items, self.progress.to_json(), best=best, data=self.p.feed.state())
        self.saved_at = time.monotonic()

    def write_curves(self) -> None:
        from archspec.train.plots import write_curves

        workdir = self.p.workdir
        write_curves(run.read_metrics(workdir), workdir / run.CURVES_FILE, title=run.spec_name(self.p.config.spec))
        self.curves_at = time.monotonic()

    def finish(self, state: TrainState) -> dict[str, Any]:
        """The run's model is its best checkpoint by `--monitor` (the last one without validation);
        score it on every split and write results.json."""
        progress, step, config = self.progress, int(distributed.to_host(state.step)), self.p.config
        best = progress.best_step is not None
        if best and progress.best_step != step:
            distributed.barrier("best checkpoint saved")  # process 0 saved it (checkpoints.wait)
            model = Model(**self.p.checkpoints.restore({"model": self.p.abstract_model}, which="best").items["model"])
        else:
            model = self.model(state)
        results: dict[str, Any] = {
            "checkpoint": "best" if best else "last",
            "epoch": progress.best_epoch if best else config.epochs,
            "step": progress.best_step if best else step,
            "epochs": config.epochs,
            "monitor": config.monitor if best else None,
            "precise_bn": self.p.fns.precise_bn,
            "test_held_out": "test" in self.p.dataset.held_out,
            "parameters": dict(zip(("trainable", "frozen"), self.p.parameters)),
        }
        for split in self.p.splits:
            results[split] = {**self.score(split, model), "images": len(getattr(self.p.dataset, f"y_{split}"))}
        results["kept_because"] = selection.kept_reason(results)
        if self.primary:
            run.write_results(self.p.workdir, results)
        self.reporter.finish(results)
        return results

    def check_finite(self, finite, epoch: int, step: int) -> None:
        """Raise `Diverged` unless `finite` (False once a step had a non-finite loss or gradient)."""
        if bool(finite):
            return
        checkpoints = self.p.checkpoints
        last = checkpoints.latest_step()
        folder = checkpoints.run_dir / "checkpoints" / str(last) if last is not None else None
        kept = f"the last good checkpoint (step {last}) is {folder}" if folder else "no checkpoint had been saved yet"
        raise Diverged(
            f"training diverged: the loss or a gradient became NaN or infinite in epoch {epoch + 1} "
            f"(by step {step}); stopped without saving, {kept}",
            folder,
        )


def _check_before_first_step(stop: stopping.StopFlag, step: int, workdir: Path) -> None:
    """A signal that came during start-up (loading data, compiling) stops before training."""
    if stop.requested(sync_point=True):
        raise Interrupted(stop.signal_number, step, workdir)


def _is_multiple(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


def _epoch_row(epoch, step, lr, train, val, seconds, images) -> dict[str, Any]:
    """A metrics.jsonl row; `images` were trained in `seconds` (after a resume, part of the epoch)."""
    row: dict[str, Any] = {"epoch": epoch, "step": step, "lr": lr}
    row.update({f"train_{key}": value for key, value in train.items()})
    if val is not None:
        row.update({f"val_{key}": value for key, value in val.items()})
    row["seconds"] = round(seconds, 3)
    row["images_per_second"] = round(images / seconds, 1) if seconds > 0 else None
    return row


class _Meter:
    """Reads the running sums for the progress bar every half second, one reading late: the sums
    read were computed long ago, so reading them never makes the host wait for the device."""

    def __init__(self, position: int, now: float, batch_size: int) -> None:
        self.batch_size = batch_size
        self.pending: tuple[int, dict] | None = None
        self.last = (position, now)

    def read(self, position: int, totals: dict) -> tuple[int, dict, float] | None:
        """(position read, host sums there, images per second) when due, else None."""
        now = time.monotonic()
        if now - self.last[1] < REFRESH_SECONDS:
            return None
        reading = None
        if self.pending is not None:
            read_position, sums = self.pending
            speed = (read_position - self.last[0]) * self.batch_size / max(now - self.last[1], 1e-9)
            reading = (read_position, distributed.to_host(sums), speed)
            self.last = (read_position, now)
        self.pending = (position, totals)
        return reading
