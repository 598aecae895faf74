"""The pure functions of training, each jitted once by the loop: state creation, the train step,
precise BatchNorm statistics and evaluation.

- The model is split (Flax NNX functional API) into a static graph definition and plain dictionaries
  of arrays: parameters, the rest of the model's state (BatchNorm statistics, dropout RNG streams)
  and the optax optimizer state, so that `jax.jit` sees ordinary pytrees.
- `train_step` gathers its batch by index from the whole uint8 dataset kept on the device,
  normalizes and augments it there, updates the state and adds the batch's metrics to running sums.
- `batch_statistics` recomputes every BatchNorm's statistics for the current weights ("precise BN",
  Wu & Johnson 2021): the moving averages of training lag the weights by hundreds of steps, which on a
  small dataset is most of the run, so a model evaluated with them is not the model being trained.

Data parallelism comes from `jax.sharding` alone: the state and data are replicated over a mesh of
every device, each batch is split along its `batch` axis, and XLA inserts the gradient all-reduce.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from archspec.train import augment as augmentation
from archspec.train import compile_cache, freezing
from archspec.train.config import TrainConfig
from archspec.train.metrics import add_sums, zero_sums
from archspec.train.outputs import Task

# Precise BN averages the statistics of this many training images at most (pycls' NUM_SAMPLES_PRECISE):
# enough for population statistics, a fixed cost however large the dataset.
PRECISE_BN_IMAGES = 8192


class TrainState(NamedTuple):
    """Everything a train step changes, as plain pytrees of arrays (fast to pass to `jax.jit`)."""

    step: jax.Array  # global step (int32): also where in the epoch's order the next batch is
    params: dict  # nnx.Param values
    model_state: dict  # BatchNorm moving averages and the dropout RNG streams
    opt_state: Any
    key: jax.Array  # seeds the data order of each epoch and the augmentation of each step
    finite: jax.Array  # False from the first step whose loss was NaN or infinite: nothing is saved after


class Model(NamedTuple):
    """What inference needs: parameters and the model state with the statistics to evaluate with."""

    params: dict
    model_state: dict


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


def model_graphdef(typed, *, dtype=None, frozen: frozenset[int] = frozenset()) -> nnx.GraphDef:
    """The static half of the model (no weights allocated); `frozen` nodes as `SpecModel` takes them."""
    from archspec.flax_model import build_model

    return nnx.graphdef(nnx.eval_shape(lambda: build_model(typed, dtype=dtype, frozen=frozen)))


def init_model(typed, *, seed: int, dtype=None) -> Model:
    """Freshly initialized parameters and model state (call under `jax.jit` to place them)."""
    from archspec.flax_model import build_model

    _, params, model_state = nnx.split(build_model(typed, seed=seed, dtype=dtype), nnx.Param, ...)
    return Model(nnx.to_pure_dict(params), nnx.to_pure_dict(model_state))


def init_train_state(
    model: Model, tx: optax.GradientTransformation, *, seed: int, frozen: frozenset[str] = frozenset()
) -> TrainState:
    """The state before the first step, starting from `model`'s weights and statistics; the optimizer
    keeps state for the parameters outside the `frozen` modules only."""
    trainable, _ = freezing.split(model.params, frozen)
    return TrainState(
        jnp.zeros((), jnp.int32),
        model.params,
        model.model_state,
        tx.init(trainable),
        jax.random.key(seed),
        jnp.ones((), bool),
    )


def train_item(state: TrainState) -> dict:
    """The train state less the parameters, as checkpoints keep it (the parameters are in `Model`)."""
    return {key: value for key, value in state._asdict().items() if key != "params"}


def abstract(tree):
    """Shapes, dtypes and shardings only: the target a checkpoint is restored into."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


def epoch_order(key: jax.Array, epoch: jax.Array, *, num_examples: int, steps: int, batch_size: int) -> jax.Array:
    """The batches of one epoch as (steps, batch_size) example indices: a fresh permutation each
    epoch; the last incomplete batch is dropped (other images are dropped each epoch)."""
    order = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, 0), epoch), num_examples)
    return order[: steps * batch_size].reshape(steps, batch_size)


def precise_bn_order(seed: int, *, num_examples: int, batch_size: int) -> np.ndarray:
    """The fixed training images precise BN averages over, as (batches, batch_size) indices: batches
    of the training batch size (the statistics depend on it), at most `PRECISE_BN_IMAGES` images."""
    batches = max(1, min(num_examples // batch_size, math.ceil(PRECISE_BN_IMAGES / batch_size)))
    order = np.random.default_rng(seed).permutation(num_examples)
    return order[: batches * batch_size].reshape(batches, batch_size).astype(np.int32)


def _gather(images: jax.Array, indices: jax.Array, batch_sharding, transform=None) -> jax.Array:
    """The float batch of `indices` (with `transform` applied: the augmentation)."""
    x = augmentation.to_float(jax.lax.with_sharding_constraint(images[indices], batch_sharding))
    if transform is not None:
        x = transform(x)
    # Materialize the batch: fused into the first convolution, the gather and conversion made XLA CPU
    # pick a slower convolution (17% slower steps for gap-head).
    return jax.lax.optimization_barrier(x)


def train_step(
    state: TrainState,
    totals: dict,
    images: jax.Array,
    labels: jax.Array,
    order: jax.Array,
    *,
    tx: optax.GradientTransformation,
    frozen: frozenset[str] = frozenset(),
    **parts,
) -> tuple[TrainState, dict]:
    """One optimization step on batch `state.step % steps_per_epoch` of `order`: `gradients` (given
    `parts`, its keywords: graphdef, task, steps_per_epoch, augment, batch_sharding), then
    `apply_gradients`. The parameters of the `frozen` modules get no gradient and stay as they are,
    bit for bit."""
    grads, model_state, batch = gradients(state, images, labels, order, frozen=frozen, **parts)
    return apply_gradients(state, totals, grads, model_state, batch, tx=tx, frozen=frozen)


def gradients(
    state: TrainState,
    images: jax.Array,
    labels: jax.Array,
    order: jax.Array,
    *,
    graphdef: nnx.GraphDef,
    task: Task,
    steps_per_epoch: int,
    augment: tuple[str, ...],
    batch_sharding,
    frozen: frozenset[str] = frozenset(),
    part: tuple[int, int] | None = None,
) -> tuple[dict, dict, dict]:
    """(the mean loss's gradient of the trainable parameters, the model state after the step, the
    batch's metric sums) of batch `state.step % steps_per_epoch` of `order`; of only its `part`
    (rank, ranks) of the batch where a process per core trains (`archspec.train.cores`): the
    augmentation and dropout then draw from streams of their own for each rank."""
    indices = order[state.step % steps_per_epoch]
    key = jax.random.fold_in(jax.random.fold_in(state.key, 1), state.step)
    model_state = state.model_state
    if part is not None:
        rank, ranks = part
        indices = indices.reshape(ranks, -1)[rank]
        key = jax.random.fold_in(key, rank)
        model_state = jax.tree.map(lambda leaf: jax.random.fold_in(leaf, rank) if is_key(leaf) else leaf, model_state)
    y = labels[indices]
    x = _gather(images, indices, batch_sharding, lambda x: augmentation.augment(key, x, augment) if augment else x)

    trainable, fixed = freezing.split(state.params, frozen)

    def loss_fn(trainable):
        model = nnx.merge(graphdef, freezing.join(trainable, fixed), model_state)
        logits = model(x, train=True, logits=True)
        losses = task.loss(logits, y)
        _, _, new_model_state = nnx.split(model, nnx.Param, ...)
        return losses.mean(), (logits, losses, nnx.to_pure_dict(new_model_state))

    (_, (logits, losses, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    if part is not None:  # the streams' keys as they were: each step folds the rank in afresh
        new_model_state = jax.tree.map(
            lambda leaf, old: old if is_key(old) else leaf, new_model_state, state.model_state
        )
    return grads, new_model_state, task.metric_sums(logits, y, losses)


def apply_gradients(
    state: TrainState,
    totals: dict,
    grads: dict,
    model_state: dict,
    batch: dict,
    *,
    tx: optax.GradientTransformation,
    frozen: frozenset[str] = frozenset(),
) -> tuple[TrainState, dict]:
    """The state after the optimizer's update with `grads`, and the running sums with `batch`'s."""
    trainable, fixed = freezing.split(state.params, frozen)
    updates, opt_state = tx.update(grads, state.opt_state, trainable)
    params = freezing.join(optax.apply_updates(trainable, updates), fixed)
    # Sticky: once a loss is NaN or infinite, nothing is saved any more (see `all_finite` for weights).
    finite = state.finite & jnp.isfinite(batch["loss"])
    new_state = TrainState(state.step + 1, params, model_state, opt_state, state.key, finite)
    new_totals = {key: jnp.where(finite, totals[key] + value, totals[key]) for key, value in batch.items()}
    return new_state, {**new_totals, "finite": finite}


def is_key(leaf) -> bool:
    return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def jit_train_step(**settings):
    """`train_step` jitted once with its static keywords (`settings`: tx, frozen and `gradients`'
    graphdef, task, steps_per_epoch, augment, batch_sharding) bound and the state donated."""
    return jax.jit(
        functools.partial(train_step, **settings),
        donate_argnums=0,
        compiler_options=compile_cache.model_options(settings["graphdef"]),
    )


def all_finite(state: TrainState, model: Model) -> jax.Array:
    """Whether every weight and statistic of the state and of the model to save is finite: checked
    before saving a checkpoint (a step can make weights infinite while its own loss was still finite,
    and finite weights can still overflow the statistics recomputed for them)."""
    leaves = [
        leaf
        for leaf in jax.tree.leaves((state.params, state.model_state, state.opt_state, model))
        if jnp.issubdtype(leaf.dtype, jnp.floating)
    ]
    return state.finite & jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def has_batch_norm(graphdef: nnx.GraphDef, model: Model) -> bool:
    return bool(jax.tree.leaves(nnx.state(nnx.merge(graphdef, model.params, model.model_state), nnx.BatchStat)))


def batch_statistics(
    model: Model, images: jax.Array, batches: jax.Array, *, graphdef: nnx.GraphDef, batch_sharding
) -> Model:
    """`model` with every BatchNorm's statistics replaced by their exact average over `batches`.

    Each batch runs forward in training mode, as in a train step but without gradients or
    augmentation, so each BatchNorm sees the activations the layers before it produce with the
    current weights; its batch mean and variance are averaged with equal weights, not by EMA.
    Nothing else of the state changes (the dropout streams of `model` are reused, not advanced).
    """
    sums = statistic_sums(model, images, batches, graphdef=graphdef, batch_sharding=batch_sharding)
    return with_statistics(model, sums, batches.shape[0], graphdef=graphdef)


def statistic_sums(
    model: Model, images: jax.Array, batches: jax.Array, *, graphdef: nnx.GraphDef, batch_sharding
) -> dict:
    """The sums over `batches` of every BatchNorm's batch mean and variance (see `batch_statistics`);
    a streamed dataset adds these up batch by batch."""

    def forward(indices):
        merged = nnx.merge(graphdef, model.params, model.model_state)
        for _, module in nnx.iter_modules(merged):
            if isinstance(module, nnx.BatchNorm):
                module.momentum = 0.0  # the "moving average" is then this batch's own statistics
        merged(_gather(images, indices, batch_sharding), train=True, logits=True)
        return nnx.to_pure_dict(nnx.state(merged, nnx.BatchStat))

    def body(sums, indices):
        return jax.tree.map(jnp.add, sums, forward(indices)), None

    row = jax.ShapeDtypeStruct(batches.shape[1:], batches.dtype)  # a process per core may have no rows
    zeros = jax.tree.map(jnp.zeros_like, jax.eval_shape(forward, row))
    sums, _ = jax.lax.scan(body, zeros, batches)
    return sums


def with_statistics(model: Model, sums: dict, count, *, graphdef: nnx.GraphDef) -> Model:
    """`model` with its BatchNorm statistics set to `sums` / `count` (batches); a frozen BatchNorm
    (`--freeze`) keeps its own, bit for bit."""
    merged = nnx.merge(graphdef, model.params, model.model_state)
    statistics = nnx.state(merged, nnx.BatchStat)
    nnx.replace_by_pure_dict(statistics, jax.tree.map(lambda total: total / count, sums))
    nnx.update(merged, statistics)
    _, _, model_state = nnx.split(merged, nnx.Param, ...)
    model_state = nnx.to_pure_dict(model_state)
    kept = {f"{merged.plan[i][0]}_{i}" for i in merged.frozen}
    layers = {
        name: model.model_state["layers"][name] if name in kept else tree
        for name, tree in model_state["layers"].items()
    }
    return Model(model.params, {**model_state, "layers": layers})


def evaluate(
    model: Model,
    images: jax.Array,
    labels: jax.Array,
    batches: jax.Array,
    masks: jax.Array,
    *,
    graphdef: nnx.GraphDef,
    task: Task,
    batch_sharding,
) -> dict:
    """Metric sums over a whole split, given as padded (batches, batch_size) indices and masks
    (padding examples, mask 0, do not count)."""
    merged = nnx.merge(graphdef, model.params, model.model_state)

    def body(totals, batch):
        indices, mask = batch
        logits = merged(_gather(images, indices, batch_sharding), train=False, logits=True)
        y = labels[indices]
        return add_sums(totals, task.metric_sums(logits, y, task.loss(logits, y), mask)), None

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
