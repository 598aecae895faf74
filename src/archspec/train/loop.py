"""The training loop: small pure functions tied together by one orchestrator, `train_and_evaluate`.

- `create_train_state` builds the model and splits it (Flax NNX functional API) into a graph
  definition, which is static, and plain dictionaries of arrays: parameters, the rest of the model's
  state (BatchNorm statistics, dropout RNG streams) and the optax optimizer state.
- `train_step` is one pure function, jitted once with the state donated: it gathers its batch by
  index from the whole uint8 dataset kept on the device, normalizes and augments it there, updates
  the state and adds the batch's metrics to running sums. The host reads the sums back only every
  half second (the progress bar) and at the end of an epoch, so the device never waits for Python.
- `evaluate` scores a split in one jitted call (a scan over padded batches).

Data parallelism comes from `jax.sharding` alone: the state and data are replicated over a mesh of
every device, each batch is split along its `batch` axis, and XLA inserts the gradient all-reduce.
"""

from __future__ import annotations

import functools
import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from archspec.errors import UserError
from archspec.train import augment as augmentation
from archspec.train import distributed, run
from archspec.train.checkpoint import Checkpoints
from archspec.train.config import TrainConfig
from archspec.train.metrics import Task, add_sums, finalize, zero_sums

REFRESH_SECONDS = 0.5  # how often the progress bar reads the running metrics
CURVES_SECONDS = 60.0  # curves.png is redrawn at most this often (and when training ends or stops)
# Epoch-end checkpoints at most this often (and at the last epoch, on a new best, when stopped), so
# that short epochs do not spend their time saving; --checkpoint-every adds checkpoints by step.
CHECKPOINT_SECONDS = 30.0
EVAL_BATCH_FACTOR = 4  # evaluation batches are this many training batches (no gradients to keep)
DATA_MEMORY_SHARE = 0.5  # the share of a device's memory the dataset may take


class TrainState(NamedTuple):
    """Everything a train step changes, as plain pytrees of arrays (fast to pass to `jax.jit`)."""

    step: jax.Array  # global step (int32): also where in the epoch's order the next batch is
    params: dict  # nnx.Param values
    model_state: dict  # BatchNorm statistics and the dropout RNG streams
    opt_state: Any
    key: jax.Array  # seeds the data order of each epoch and the augmentation of each step
    finite: jax.Array  # False from the first step whose loss was NaN or infinite: nothing is saved after


class TrainResult(NamedTuple):
    state: TrainState  # the final state (not the best: that one is in the run folder's best/)
    results: dict[str, Any]  # results.json: which checkpoint is the model, its val and test metrics


class Stopped(Exception):
    """Training stopped early; `exit_code` tells the shell why."""

    exit_code = 1


class Interrupted(Stopped):
    """SIGINT or SIGTERM: a checkpoint was saved; `--resume` continues."""

    def __init__(self, signal_number: int, step: int, run_dir: Path) -> None:
        self.exit_code = 128 + signal_number  # the shell convention: 130 for Ctrl-C, 143 for SIGTERM
        name = signal.Signals(signal_number).name
        super().__init__(f"stopped by {name} at step {step}; checkpoint saved in {run_dir}")


class Diverged(Stopped):
    """The loss or a weight became NaN or infinite; nothing after the last good checkpoint was saved."""


# --- pure functions --------------------------------------------------------------------------------


def head_of(typed) -> str | None:
    """The activation the model ends with, None for logits (a dense without one)."""
    from archspec.layers.activation import ACTIVATIONS

    kind = typed.graph.nodes[-1].kind
    return kind if kind in ACTIVATIONS and kind != "linear" else None


def make_task(typed, dataset, label_smoothing: float = 0.0) -> Task:
    """The loss and metrics for `typed` on `dataset`; refuses a head that does not fit the classes."""
    from archspec.train.data import check_fits

    if len(typed.output_shape) != 1:
        shape = "x".join(map(str, typed.output_shape))
        raise UserError(
            f"the spec outputs {shape} per image, but a classifier outputs one score per class",
            hint=f"end the spec with `gap` (or `flatten`) and `dense {dataset.num_classes} softmax`",
        )
    head = head_of(typed)
    check_fits(dataset, num_outputs=typed.output_shape[0], head_activation=head)
    return Task(head, typed.output_shape[0], dataset.num_classes, label_smoothing)


def make_schedule(config: TrainConfig, steps_per_epoch: int) -> optax.Schedule:
    total = config.epochs * steps_per_epoch
    warmup = min(round(config.warmup_epochs * steps_per_epoch), total)
    if config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, config.lr, warmup, max(total, warmup + 1))
    if warmup == 0:
        return optax.constant_schedule(config.lr)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, config.lr, warmup), optax.constant_schedule(config.lr)], [warmup]
    )


def make_optimizer(config: TrainConfig, schedule: optax.Schedule) -> optax.GradientTransformation:
    """The optimizer; weight decay applies to kernels only (not biases or BatchNorm scales)."""

    def kernels(params):
        return jax.tree.map(lambda p: p.ndim > 1, params)

    decay = config.weight_decay
    if config.optimizer == "adamw":
        return optax.adamw(schedule, weight_decay=decay, mask=kernels)
    if config.optimizer == "lion":
        return optax.lion(schedule, weight_decay=decay, mask=kernels)
    base = {
        "adam": lambda: optax.adam(schedule),
        "sgd": lambda: optax.sgd(schedule, momentum=config.momentum or None),
        "rmsprop": lambda: optax.rmsprop(schedule, momentum=config.momentum or None),
    }[config.optimizer]()
    if decay:  # coupled (L2) weight decay, the classic form for these optimizers
        return optax.chain(optax.add_decayed_weights(decay, mask=kernels), base)
    return base


def create_train_state(
    typed, tx: optax.GradientTransformation, *, seed: int, dtype=None, sharding=None
) -> tuple[nnx.GraphDef, TrainState]:
    """(graph definition, initial state), the state placed with `sharding` (replicated)."""
    graphdef, init = _initializer(typed, tx, seed=seed, dtype=dtype)
    return graphdef, jax.jit(init, out_shardings=sharding)()


def abstract_train_state(
    typed, tx: optax.GradientTransformation, *, seed: int = 0, dtype=None, sharding=None
) -> tuple[nnx.GraphDef, TrainState]:
    """Like `create_train_state`, with shapes only: the target a checkpoint is restored into."""
    graphdef, init = _initializer(typed, tx, seed=seed, dtype=dtype)
    shapes = jax.eval_shape(init)
    return graphdef, jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), shapes)


def _initializer(typed, tx, *, seed: int, dtype):
    from archspec.flax_model import build_model

    def init() -> TrainState:
        model = build_model(typed, seed=seed, dtype=dtype)
        _, params, model_state = nnx.split(model, nnx.Param, ...)
        params = nnx.to_pure_dict(params)
        return TrainState(
            jnp.zeros((), jnp.int32),
            params,
            nnx.to_pure_dict(model_state),
            tx.init(params),
            jax.random.key(seed),
            jnp.ones((), bool),
        )

    return nnx.graphdef(nnx.eval_shape(lambda: build_model(typed, seed=seed, dtype=dtype))), init


def epoch_order(key: jax.Array, epoch: jax.Array, *, num_examples: int, steps: int, batch_size: int) -> jax.Array:
    """The batches of one epoch as (steps, batch_size) example indices: a fresh permutation each
    epoch; the last incomplete batch is dropped (other images are dropped each epoch)."""
    order = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, 0), epoch), num_examples)
    return order[: steps * batch_size].reshape(steps, batch_size)


def train_step(
    state: TrainState,
    totals: dict,
    images: jax.Array,
    labels: jax.Array,
    order: jax.Array,
    *,
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    task: Task,
    steps_per_epoch: int,
    augment: tuple[str, ...],
    batch_sharding,
) -> tuple[TrainState, dict]:
    """One optimization step on batch `state.step % steps_per_epoch` of `order`."""
    indices = order[state.step % steps_per_epoch]
    x = jax.lax.with_sharding_constraint(images[indices], batch_sharding)
    y = labels[indices]
    x = augmentation.to_float(x)
    if augment:
        x = augmentation.augment(jax.random.fold_in(jax.random.fold_in(state.key, 1), state.step), x, augment)
    # Materialize the batch: fused into the first convolution, the gather and conversion made XLA CPU
    # pick a slower convolution (17% slower steps for gap-head).
    x = jax.lax.optimization_barrier(x)

    def loss_fn(params):
        model = nnx.merge(graphdef, params, state.model_state)
        logits = model(x, train=True, logits=True)
        losses = task.loss(logits, y)
        _, _, model_state = nnx.split(model, nnx.Param, ...)
        return losses.mean(), (logits, losses, nnx.to_pure_dict(model_state))

    (loss, (logits, losses, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # Sticky: once a loss is NaN or infinite, nothing is saved any more (see `all_finite` for weights).
    finite = state.finite & jnp.isfinite(loss)
    new_state = TrainState(state.step + 1, params, model_state, opt_state, state.key, finite)
    batch = task.metric_sums(logits, y, losses)
    new_totals = {key: jnp.where(finite, totals[key] + value, totals[key]) for key, value in batch.items()}
    return new_state, {**new_totals, "finite": finite}


def all_finite(state: TrainState) -> jax.Array:
    """Whether every weight and statistic is finite: checked before saving a checkpoint (a step can
    make weights infinite while its own loss was still finite)."""
    leaves = [
        leaf
        for leaf in jax.tree.leaves((state.params, state.model_state, state.opt_state))
        if jnp.issubdtype(leaf.dtype, jnp.floating)
    ]
    return state.finite & jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def eval_step(
    state: TrainState,
    images: jax.Array,
    labels: jax.Array,
    indices: jax.Array,
    mask: jax.Array,
    *,
    graphdef: nnx.GraphDef,
    task: Task,
    batch_sharding,
) -> dict:
    """Metric sums over one batch of indices; padding examples (mask 0) do not count."""
    model = nnx.merge(graphdef, state.params, state.model_state)
    x = jax.lax.with_sharding_constraint(images[indices], batch_sharding)
    x = jax.lax.optimization_barrier(augmentation.to_float(x))  # as in train_step
    logits = model(x, train=False, logits=True)
    y = labels[indices]
    return task.metric_sums(logits, y, task.loss(logits, y), mask)


def evaluate(
    state: TrainState,
    images: jax.Array,
    labels: jax.Array,
    batches: jax.Array,
    masks: jax.Array,
    *,
    graphdef: nnx.GraphDef,
    task: Task,
    batch_sharding,
) -> dict:
    """Metric sums over a whole split, given as padded (batches, batch_size) indices and masks."""

    def body(totals, batch):
        indices, mask = batch
        sums = eval_step(
            state, images, labels, indices, mask, graphdef=graphdef, task=task, batch_sharding=batch_sharding
        )
        return add_sums(totals, sums), None

    totals, _ = jax.lax.scan(body, zero_sums(task), (batches, masks))
    return totals


def eval_batches(num_examples: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices 0..N-1 in (batches, batch_size) rows, the last padded with index 0 and mask 0."""
    count = math.ceil(num_examples / batch_size)
    indices = np.zeros(count * batch_size, np.int32)
    indices[:num_examples] = np.arange(num_examples)
    mask = np.zeros(count * batch_size, np.float32)
    mask[:num_examples] = 1
    return indices.reshape(count, batch_size), mask.reshape(count, batch_size)


# --- reporting ---------------------------------------------------------------------------------------


class Reporter:
    """What the loop tells its user. This one stays silent; the CLI draws progress bars and tables."""

    def start(self, info: dict[str, Any]) -> None:
        """Before the first step: devices, dataset sizes, steps per epoch, where a resumed run starts."""

    def epoch_start(self, epoch: int, steps: int, position: int) -> None:
        """Epoch `epoch` (1-based) of `steps` steps begins at step `position` (0 unless resumed)."""

    def progress(self, epoch: int, position: int, metrics: dict[str, float], images_per_second: float) -> None:
        """Running train metrics of the epoch after `position` steps."""

    def epoch_end(self, row: dict[str, Any]) -> None:
        """One metrics.jsonl row."""

    def finish(self, results: dict[str, Any]) -> None:
        """After training: best epoch, validation and test metrics."""


# --- the orchestrator -------------------------------------------------------------------------------


@dataclass
class _Split:
    """One evaluation split kept on the device."""

    images: jax.Array
    labels: jax.Array
    batches: jax.Array
    masks: jax.Array


@dataclass
class _Progress:
    """Host-side progress saved with each checkpoint."""

    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    best_step: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"best_val_accuracy": self.best_val_accuracy, "best_epoch": self.best_epoch, "best_step": self.best_step}


def train_and_evaluate(
    config: TrainConfig, workdir: str | Path, *, resume: bool = False, reporter: Reporter | None = None, mesh=None
) -> TrainResult:
    """Train `config` into the run folder `workdir`; return the final state and results.

    Args:
        resume: continue the run in `workdir` from its latest checkpoint.
        reporter: receives progress; only process 0 reports.
        mesh: the devices to train on (default: a `batch` mesh over every device).

    Raises:
        UserError: a mistake in the spec, data, options or run folder, found before training.
        Interrupted: SIGINT or SIGTERM; a checkpoint was saved first.
        Diverged: the loss became NaN or infinite; the last good checkpoint is intact.
    """
    from archspec.compile import compile_spec
    from archspec.train.data import load_dataset

    workdir = Path(workdir)
    primary = jax.process_index() == 0
    reporter = reporter if reporter is not None and primary else Reporter()
    typed = compile_spec(config.spec_text, config.spec, config.input_shape)
    dataset = load_dataset(
        config.data,
        config.input_shape,
        val_split=config.val_split,
        seed=config.seed,
        skip_bad_files=config.skip_bad_files,
    )
    task = make_task(typed, dataset, config.label_smoothing)
    mesh = mesh if mesh is not None else distributed.make_mesh()
    devices = mesh.devices.size
    steps_per_epoch = _steps_per_epoch(config, len(dataset.y_train), devices)
    _check_data_fits_device(dataset)
    if resume:
        run.check_resumable(run.read(workdir), config, dataset, workdir)
    else:
        run.check_fresh(workdir)
        distributed.barrier("run folder checked")  # every process looked before process 0 writes
        if primary:
            run.create(workdir, config, dataset)

    replicated = distributed.replicated(mesh)
    batch_sharding = distributed.batch_sharded(mesh)
    schedule = make_schedule(config, steps_per_epoch)
    tx = make_optimizer(config, schedule)
    dtype = jnp.bfloat16 if config.precision == "bf16" else None
    graphdef, state = create_train_state(typed, tx, seed=config.seed, dtype=dtype, sharding=replicated)
    new_totals = jax.jit(lambda: {**zero_sums(task), "finite": jnp.ones((), bool)}, out_shardings=replicated)
    totals = new_totals()

    train_images = jax.device_put(dataset.x_train, replicated)
    train_labels = jax.device_put(dataset.y_train, replicated)
    eval_batch = _round_up(min(EVAL_BATCH_FACTOR * config.batch_size, len(dataset.y_train)), devices)
    splits = {
        name: _put_split(
            getattr(dataset, f"x_{name}"),
            getattr(dataset, f"y_{name}"),
            eval_batch,
            replicated,
            distributed.batch_sharded(mesh, leading=1),
        )
        for name in ("val", "test")
        if getattr(dataset, f"x_{name}") is not None
    }

    step_fn = jax.jit(
        functools.partial(
            train_step,
            graphdef=graphdef,
            tx=tx,
            task=task,
            steps_per_epoch=steps_per_epoch,
            augment=config.augment,
            batch_sharding=batch_sharding,
        ),
        donate_argnums=0,
    )
    order_fn = jax.jit(
        functools.partial(
            epoch_order, num_examples=len(dataset.y_train), steps=steps_per_epoch, batch_size=config.batch_size
        ),
        out_shardings=distributed.batch_sharded(mesh, leading=1),
    )
    evaluate_fn = jax.jit(functools.partial(evaluate, graphdef=graphdef, task=task, batch_sharding=batch_sharding))

    finite_fn = jax.jit(all_finite)

    def score(split: _Split, state: TrainState) -> dict[str, float]:
        sums = evaluate_fn(state, split.images, split.labels, split.batches, split.masks)
        return finalize(distributed.to_host(sums))

    def save(state, totals, epoch: int, step: int, *, best: bool = False) -> None:
        _check_finite(distributed.to_host(finite_fn(state)), epoch, step, checkpoints)
        checkpoints.save(step, state, totals, progress.to_json(), best=best)

    checkpoints = Checkpoints(workdir, keep=config.keep_checkpoints)
    progress = _Progress()
    try:
        step = 0
        if resume:
            state, totals, saved = checkpoints.restore(_abstract(state), _abstract(totals))
            step = int(distributed.to_host(state.step))
            progress = _Progress(saved.get("best_val_accuracy"), saved.get("best_epoch"), saved.get("best_step"))
            checkpoints.forget_after(step)
            if primary:
                run.keep_metrics_until(workdir, step)
            if step % steps_per_epoch == 0:
                totals = new_totals()
        reporter.start(
            {
                "devices": devices,
                "processes": jax.process_count(),
                "platform": jax.default_backend(),
                "train_images": len(dataset.y_train),
                "val_images": _size(dataset.y_val),
                "test_images": _size(dataset.y_test),
                "classes": dataset.num_classes,
                "steps_per_epoch": steps_per_epoch,
                "epochs": config.epochs,
                "resumed_at": step if resume else None,
                "skipped": list(dataset.skipped),
                "run_dir": str(workdir),
            }
        )
        curves_written = saved_at = time.monotonic()
        with _stop_signals() as stop, _curves_on_stop(workdir, config, primary):
            for epoch in range(step // steps_per_epoch, config.epochs):
                position = first = step % steps_per_epoch
                reporter.epoch_start(epoch + 1, steps_per_epoch, position)
                order = order_fn(state.key, np.int32(epoch))
                started = time.monotonic()
                meter = _Meter(position, started, config.batch_size)
                while True:
                    state, totals = step_fn(state, totals, train_images, train_labels, order)
                    position += 1
                    step += 1
                    if position == steps_per_epoch:
                        break  # the epoch's end checkpoints, after validation
                    every = _is_multiple(step, config.checkpoint_every)
                    stopping = stop.requested(sync_point=every)
                    if every or stopping:
                        save(state, totals, epoch, step)
                    if stopping:
                        checkpoints.wait()
                        raise Interrupted(stop.signal_number, step, workdir)
                    if (reading := meter.read(position, totals)) is not None:
                        read_position, sums, speed = reading
                        if jax.process_count() == 1:  # several processes decide at sync points only
                            _check_finite(sums["finite"], epoch, epoch * steps_per_epoch + read_position, checkpoints)
                        reporter.progress(epoch + 1, read_position, finalize(sums), speed)
                train_sums = distributed.to_host(totals)
                seconds = time.monotonic() - started
                _check_finite(train_sums["finite"], epoch, step, checkpoints)
                val = score(splits["val"], state) if "val" in splits else None
                row = _epoch_row(
                    epoch + 1,
                    step,
                    float(schedule(step)),
                    finalize(train_sums),
                    val,
                    seconds,
                    (steps_per_epoch - first) * config.batch_size,
                )
                improved = val is not None and (
                    progress.best_val_accuracy is None or val["accuracy"] > progress.best_val_accuracy
                )
                if improved:
                    progress = _Progress(val["accuracy"], epoch + 1, step)
                if primary:
                    run.append_metrics(workdir, row)
                reporter.epoch_end(row)
                stopping = stop.requested(sync_point=True)
                # Several processes must agree on when to save: they save every epoch.
                due = time.monotonic() - saved_at >= CHECKPOINT_SECONDS or jax.process_count() > 1
                if due or improved or stopping or epoch + 1 == config.epochs:
                    save(state, totals, epoch, step, best=improved)
                    saved_at = time.monotonic()
                totals = new_totals()
                if primary and (time.monotonic() - curves_written >= CURVES_SECONDS or epoch + 1 == config.epochs):
                    _write_curves(workdir, config)
                    curves_written = time.monotonic()
                if stopping:
                    checkpoints.wait()
                    raise Interrupted(stop.signal_number, step, workdir)
        checkpoints.wait()
        results = _final_results(config, state, progress, checkpoints, splits, score, step)
        if primary:
            run.write_results(workdir, results)
        reporter.finish(results)
        return TrainResult(state, results)
    finally:
        checkpoints.close()


def _final_results(config, state, progress, checkpoints, splits, score, step) -> dict[str, Any]:
    """The run's model is its best checkpoint by validation accuracy (the last one without validation)."""
    best = progress.best_step is not None
    if best and progress.best_step != step:
        state, _, _ = checkpoints.restore(_abstract(state), which="best")
    results: dict[str, Any] = {
        "checkpoint": "best" if best else "last",
        "epoch": progress.best_epoch if best else config.epochs,
        "step": progress.best_step if best else step,
        "epochs": config.epochs,
    }
    for name, split in splits.items():
        results[name] = score(split, state)
    return results


# --- helpers ----------------------------------------------------------------------------------------


class _StopFlag:
    def __init__(self) -> None:
        self.signal_number: int | None = None

    def requested(self, *, sync_point: bool) -> bool:
        """True when a signal asks to stop. Several processes agree on it at sync points only."""
        if jax.process_count() == 1:
            return self.signal_number is not None
        if not sync_point:
            return False
        stop = distributed.all_agree(self.signal_number is not None)
        if stop and self.signal_number is None:
            self.signal_number = signal.SIGTERM
        return stop


@contextmanager
def _stop_signals():
    """Turn SIGINT and SIGTERM into a request to stop after the current step (a second one aborts)."""
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handle(number, frame):
        if flag.signal_number is not None:
            raise KeyboardInterrupt
        flag.signal_number = number

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


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


def _check_finite(finite, epoch: int, step: int, checkpoints: Checkpoints) -> None:
    """Raise `Diverged` unless `finite` (False once a step had a non-finite loss or gradient)."""
    if bool(finite):
        return
    last = checkpoints.latest_step()
    kept = (
        f"the last good checkpoint (step {last}) is in {checkpoints.run_dir}"
        if last is not None
        else "no checkpoint had been saved yet"
    )
    raise Diverged(
        f"training diverged: the loss or a gradient became NaN or infinite in epoch {epoch + 1} "
        f"(by step {step}); stopped without saving, {kept}.\n"
        f"hint: lower --lr, add `bn` after convolutions, or use --schedule cosine with warm-up"
    )


def _steps_per_epoch(config: TrainConfig, num_examples: int, devices: int) -> int:
    if config.batch_size % devices:
        raise UserError(
            f"`--batch-size` (={config.batch_size}) must be a multiple of the {devices} devices it is split over",
            hint=f"use --batch-size {_round_up(config.batch_size, devices)}",
        )
    if config.batch_size > num_examples:
        raise UserError(
            f"`--batch-size` (={config.batch_size}) is larger than the {num_examples} training images",
            hint=f"use --batch-size {max(devices, num_examples // devices * devices)} or less",
        )
    return num_examples // config.batch_size


def _check_data_fits_device(dataset) -> None:
    stats = jax.local_devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit")
    size = sum(a.nbytes for a in (dataset.x_train, dataset.x_val, dataset.x_test) if a is not None)
    if limit and size > DATA_MEMORY_SHARE * limit:
        raise UserError(
            f"the dataset takes {size / 2**30:.1f} GiB, more than half of the device's "
            f"{limit / 2**30:.1f} GiB; training keeps the whole dataset on the device",
            hint="use a smaller --input or fewer images",
        )


def _put_split(images, labels, batch_size, replicated, sharded) -> _Split:
    batches, masks = eval_batches(len(labels), batch_size)
    return _Split(
        jax.device_put(images, replicated),
        jax.device_put(labels, replicated),
        jax.device_put(batches, sharded),
        jax.device_put(masks, sharded),
    )


def _epoch_row(epoch, step, lr, train, val, seconds, images) -> dict[str, Any]:
    """A metrics.jsonl row; `images` were trained in `seconds` (after a resume, part of the epoch)."""
    row: dict[str, Any] = {"epoch": epoch, "step": step, "lr": lr}
    row.update({f"train_{key}": value for key, value in train.items()})
    if val is not None:
        row.update({f"val_{key}": value for key, value in val.items()})
    row["seconds"] = round(seconds, 3)
    row["images_per_second"] = round(images / seconds, 1) if seconds > 0 else None
    return row


@contextmanager
def _curves_on_stop(workdir: Path, config: TrainConfig, primary: bool):
    """Draw curves.png for the epochs done when training stops early."""
    try:
        yield
    except Stopped:
        if primary and run.read_metrics(workdir):
            _write_curves(workdir, config)
        raise


def _write_curves(workdir: Path, config: TrainConfig) -> None:
    from archspec.train.plots import write_curves

    write_curves(run.read_metrics(workdir), workdir / run.CURVES_FILE, title=run.spec_name(config.spec))


def _abstract(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _is_multiple(step: int, every: int) -> bool:
    return bool(every) and step % every == 0


def _size(array) -> int:
    return 0 if array is None else len(array)
