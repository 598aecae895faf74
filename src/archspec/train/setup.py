"""Everything a run needs before its first step, made once by `prepare`: the typed model, the data (on
the device, or streamed from disk when it exceeds `--data-memory`), the checks that refuse a run
before anything is allocated (head vs classes, batch size, memory), the jitted functions, and the
starting state (fresh, resumed, or `--init-from`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from archspec.errors import UserError
from archspec.train import (
    compile_cache,
    cores,
    distributed,
    freezing,
    loading,
    memory,
    per_core,
    pretrained,
    run,
    steps,
)
from archspec.train.checkpoint import Checkpoints
from archspec.train.config import TrainConfig
from archspec.train.feed import MemoryFeed, StreamFeed
from archspec.train.metrics import zero_sums
from archspec.train.outputs import Task, make_task
from archspec.train.steps import Model, TrainState

EVAL_BATCH_FACTOR = 4  # evaluation batches are this many training batches (no gradients to keep)


@dataclass
class Functions:
    """The jitted functions of one run (each compiled once, at its first call)."""

    train_step: Any
    epoch_order: Any
    evaluate: Any  # (model, images, labels, batches, masks) -> metric sums
    all_finite: Any
    new_totals: Any
    inference_model: Any  # train state -> Model to evaluate and save (precise BN statistics)
    precise_bn: bool  # whether `inference_model` recomputes BatchNorm statistics


@dataclass
class Prepared:
    config: TrainConfig
    workdir: Path
    dataset: Any
    task: Task
    steps_per_epoch: int
    schedule: optax.Schedule
    images: jax.Array | None  # the training images and labels, on the device (None when streamed)
    labels: jax.Array | None
    splits: dict[str, tuple | None]  # val / test: (images, labels, batches, masks) on the device, or None
    fns: Functions
    checkpoints: Checkpoints
    abstract_model: dict  # the `model` item's shapes, to restore checkpoints into
    state: TrainState
    totals: dict
    progress: run.Progress
    resumed_at: int | None
    skipped_checkpoints: list[tuple[str, str]]
    devices: int
    feed: MemoryFeed | StreamFeed  # the batches of each step, the evaluation of each split
    data_line: str  # in memory or streamed, and why
    init_report: pretrained.InitReport | None  # what --init-from kept and re-initialized (None without, or resumed)
    parameters: tuple[int, int]  # (trainable, frozen by --freeze)
    compiling: compile_cache.Compiling | None = None  # the train step's compilation, begun in `prepare`

    def info(self) -> dict[str, Any]:
        """What `Reporter.start` is told."""
        dataset = self.dataset
        return {
            "devices": self.devices,
            "devices_available": self.devices if cores.current() else jax.device_count(),
            "processes": cores.current().size if cores.current() else jax.process_count(),
            "per_core": cores.current() is not None,
            "platform": jax.default_backend(),
            "train_images": len(dataset.y_train),
            "val_images": _size(dataset.y_val),
            "test_images": _size(dataset.y_test),
            "held_out": list(dataset.held_out),
            "val_split": self.config.val_split,
            "test_split": self.config.test_split,
            "monitor": self.config.monitor,
            "precision": self.config.precision,
            "classes": dataset.num_classes,
            "steps_per_epoch": self.steps_per_epoch,
            "epochs": self.config.epochs,
            "resumed_at": self.resumed_at,
            "init_from": self.config.init_from,
            "init_report": self.init_report.lines() if self.init_report is not None else [],
            "freeze": self.config.freeze,
            "parameters": self.parameters,
            "precise_bn": self.fns.precise_bn,
            "skipped": list(dataset.skipped),
            "skipped_checkpoints": self.skipped_checkpoints,
            "run_dir": str(self.workdir),
            "data": self.data_line,
        }


def prepare(config: TrainConfig, workdir: Path, *, resume: bool, mesh=None, progress=None) -> Prepared:
    """Check and build everything for `config`; the run folder is created (or checked for `resume`)."""
    from archspec.compile import compile_spec

    primary, group = distributed.is_primary(), cores.current()
    typed = compile_spec(config.spec_text, config.spec, config.input_shape)
    dataset, data_line = loading.load_data(config, typed, progress)
    streamed = dataset.x_train is None
    if streamed and group is not None:
        raise cores.AloneInstead()
    task = make_task(typed, dataset, config.label_smoothing)
    mesh = mesh if mesh is not None else distributed.mesh_for_batch(config.batch_size)
    devices = mesh.devices.size * (group.size if group is not None else 1)  # a process per core: one each
    steps_per_epoch = _steps_per_epoch(config, len(dataset.y_train), devices)
    memory.check_training_fits(typed, dataset, config)
    frozen_nodes = freezing.frozen_nodes(typed, config.freeze)
    frozen = freezing.module_names(typed, frozen_nodes)
    if resume:
        run.check_resumable(run.read(workdir), config, dataset, workdir)

    replicated = distributed.replicated(mesh)
    schedule = steps.make_schedule(config, steps_per_epoch)
    tx = steps.make_optimizer(config, schedule)
    dtype = jnp.bfloat16 if config.precision == "bf16" else None
    graphdef = steps.model_graphdef(typed, dtype=dtype, frozen=frozen_nodes)
    if not resume:
        run.check_fresh(workdir)
    quick = compile_cache.quick_options()  # the functions run once, or once an epoch
    init = jax.jit(
        functools.partial(steps.init_model, typed, seed=config.seed, dtype=dtype),
        out_shardings=replicated,
        compiler_options=quick,
    ).trace()
    init_state = jax.jit(
        functools.partial(steps.init_train_state, tx=tx, seed=config.seed, frozen=frozen),
        out_shardings=replicated,
        compiler_options=quick,
    )
    step_parts = {
        "graphdef": graphdef,
        "tx": tx,
        "task": task,
        "steps_per_epoch": steps_per_epoch,
        "augment": config.augment,
        "batch_sharding": distributed.batch_sharded(mesh),
        "frozen": frozen,
    }
    train_step = per_core.GroupStep(group, **step_parts) if group else steps.jit_train_step(**step_parts)
    epoch_order = jax.jit(
        functools.partial(
            steps.epoch_order, num_examples=len(dataset.y_train), steps=steps_per_epoch, batch_size=config.batch_size
        ),
        out_shardings=distributed.batch_sharded(mesh, leading=1),
        compiler_options=quick,
    )
    new_totals = jax.jit(functools.partial(_new_totals, task), out_shardings=replicated, compiler_options=quick)
    # The train step compiles on a thread of its own while the weights are made and the data placed
    # (gap-head from an empty cache: its compilation is 1 s of a 3.6 s start). A run that starts from
    # another's weights (a mismatch there is an error) starts it after them, so that such an error is
    # not kept waiting for a compilation.
    compiling = None

    def start_compiling() -> None:
        nonlocal compiling
        if not streamed and compiling is None:  # the arguments' shapes, dtypes and shardings, as the loop's
            state = init_state.trace(init.out_info).out_info
            order = epoch_order.trace(state.key, np.int32(0))
            on_device = [_on_device(array, replicated) for array in (dataset.x_train, dataset.y_train)]
            totals = new_totals.trace().out_info
            # The data order compiles beside the step, not after it (gap-head from an empty cache: 0.26 s).
            also = {"order": order.lower().compile}
            compiling = compile_cache.Compiling(train_step, state, totals, *on_device, order.out_info, also=also)

    try:
        if config.init_from is None or resume:
            start_compiling()
        # A process per core: the last initializes the weights and hands them to the others; rank 0
        # compiles the gradients' half meanwhile.
        model = per_core.initial_model(group, init, replicated) if group else init.lower().compile()()
        init_report = None
        if config.init_from is not None and not resume:  # before the run folder is written: nothing left on a mismatch
            model, init_report = pretrained.initial_model(
                config.init_from, typed, model, reinit_mismatched=config.reinit_mismatched
            )
            start_compiling()
        if not resume:
            distributed.barrier("run folder checked")  # every process looked before process 0 writes
            if primary:
                run.create(workdir, config, dataset, devices)
        state = init_state(model)
        images, labels = None, None
        if not streamed:
            images = jax.device_put(dataset.x_train, replicated)
            labels = jax.device_put(dataset.y_train, replicated)
        fns = _functions(config, dataset, task, graphdef, model, mesh, images, (train_step, epoch_order, new_totals))
        eval_batch = _round_up(min(EVAL_BATCH_FACTOR * config.batch_size, len(dataset.y_train)), devices)
        splits = {
            name: None if streamed else _put_split(getattr(dataset, f"x_{name}"), labels_of, eval_batch, mesh)
            for name in ("val", "test")
            if (labels_of := getattr(dataset, f"y_{name}")) is not None
        }
        # Rank 1 and up of a process per core read checkpoints (to resume) but write none.
        checkpoints = Checkpoints(workdir, keep=config.keep_checkpoints, read_only=cores.rank() > 0)
        abstract_model = steps.abstract(model)._asdict()
        totals = fns.new_totals()
        progress, resumed_at, skipped, data_state = run.Progress(), None, [], None
        if resume:
            state, totals, progress, resumed_at, skipped, data_state = _resume(
                checkpoints, state, totals, abstract_model, steps_per_epoch, fns, workdir, primary
            )
        if streamed:
            feed = StreamFeed(
                dataset,
                mesh,
                batch_size=config.batch_size,
                eval_batch=eval_batch,
                steps_per_epoch=steps_per_epoch,
                fns=fns,
                config=config,
                graphdef=graphdef,
                resume=data_state,
            )
        else:
            feed = MemoryFeed(images, labels, splits, fns)
        return Prepared(
            config,
            workdir,
            dataset,
            task,
            steps_per_epoch,
            jax.jit(schedule, compiler_options=quick),  # the epoch table's: one compile, not a dozen per epoch
            images,
            labels,
            splits,
            fns,
            checkpoints,
            abstract_model,
            state,
            totals,
            progress,
            resumed_at,
            skipped,
            devices,
            feed,
            data_line,
            init_report,
            freezing.parameter_counts(model.params, frozen),
            compiling,
        )
    except BaseException:
        if compiling is not None:
            compiling.close()
        raise


def _on_device(array, sharding) -> jax.ShapeDtypeStruct:
    """What `jax.device_put(array, sharding)` makes, without making it."""
    return jax.ShapeDtypeStruct(array.shape, jax.dtypes.canonicalize_dtype(array.dtype), sharding=sharding)


def _new_totals(task: Task) -> dict:
    return {**zero_sums(task), "finite": jnp.ones((), bool)}


def _functions(config, dataset, task, graphdef, model, mesh, images, made) -> Functions:
    """The run's jitted functions; `made`: the train step, data order and fresh totals, which
    `prepare` made first (the train step's early compilation is for their outputs)."""
    train_step, epoch_order, new_totals = made
    batch_sharding = distributed.batch_sharded(mesh)
    evaluate = jax.jit(
        functools.partial(steps.evaluate, graphdef=graphdef, task=task, batch_sharding=batch_sharding),
        compiler_options=compile_cache.model_options(graphdef),
    )
    group = cores.current()
    if group is not None:
        evaluate = per_core.evaluate(group, evaluate)
    precise = config.precise_bn and steps.has_batch_norm(graphdef, model)
    if precise and group is not None:  # each process its share of the batches, its own part's size
        order = steps.precise_bn_order(
            config.seed, num_examples=len(dataset.y_train), batch_size=config.batch_size // group.size
        )
        mine = jax.device_put(order[group.rank :: group.size], distributed.batch_sharded(mesh, leading=1))
        inference_model = per_core.inference_model(group, graphdef, images, mine, len(order), batch_sharding)
    elif precise and images is not None:  # streamed data: `StreamFeed.inference_model` replaces it
        order = steps.precise_bn_order(config.seed, num_examples=len(dataset.y_train), batch_size=config.batch_size)
        batches = jax.device_put(order, distributed.batch_sharded(mesh, leading=1))
        recompute = jax.jit(
            functools.partial(steps.batch_statistics, graphdef=graphdef, batch_sharding=batch_sharding),
            compiler_options=compile_cache.model_options(graphdef),
        )

        def inference_model(state: TrainState) -> Model:
            return recompute(Model(state.params, state.model_state), images, batches)
    else:

        def inference_model(state: TrainState) -> Model:
            return Model(state.params, state.model_state)

    all_finite = jax.jit(steps.all_finite, compiler_options=compile_cache.quick_options())
    return Functions(train_step, epoch_order, evaluate, all_finite, new_totals, inference_model, precise)


def _resume(checkpoints, state, totals, abstract_model, steps_per_epoch, fns, workdir, primary):
    """(state, totals, progress, step, skipped checkpoints, the data stream's position) of the newest
    intact checkpoint."""
    train = steps.abstract(steps.train_item(state))
    restored = checkpoints.restore(
        {"model": abstract_model, "train": train, "totals": steps.abstract(totals)}, json_items=("data",)
    )
    items = restored.items
    state = TrainState(params=items["model"]["params"], **items["train"])
    step = int(distributed.to_host(state.step))
    checkpoints.forget_after(step)
    if primary:
        run.keep_metrics_until(workdir, step)
    totals = fns.new_totals() if step % steps_per_epoch == 0 else items["totals"]
    progress = run.Progress.from_json(items["progress"])
    return state, totals, progress, step, restored.skipped, items.get("data")


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


def _put_split(images, labels, batch_size, mesh) -> tuple:
    """A validation or test split on the device; where a process per core trains, this process
    evaluates only its share of the split's batches (`per_core.evaluate` sums them)."""
    replicated = distributed.replicated(mesh)
    sharded = distributed.batch_sharded(mesh, leading=1)
    batches, masks = steps.eval_batches(len(labels), batch_size)
    if (group := cores.current()) is not None:
        batches, masks = batches[group.rank :: group.size], masks[group.rank :: group.size]
    return (
        jax.device_put(images, replicated),
        jax.device_put(labels, replicated),
        jax.device_put(batches, sharded),
        jax.device_put(masks, sharded),
    )


def _round_up(value: int, multiple: int) -> int:
    return math.ceil(value / multiple) * multiple


def _size(array) -> int:
    return 0 if array is None else len(array)
