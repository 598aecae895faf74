"""Using a trained run: score it on data (`evaluate_run`) or classify images (`predict_images`).

The model is rebuilt from the run's config.json (its spec text and input shape) and its weights are
restored from the checkpoint the run kept (the best epoch by its `--monitor`), or the latest with
`which="last"`; `TrainedRun.kept` says which epoch that is and why.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archspec.errors import PathError, UserError
from archspec.train import compile_cache, run
from archspec.train.config import TrainConfig
from archspec.train.metrics import Task

CHECKPOINT_CHOICES = ("best", "last")


@dataclass
class TrainedRun:
    """A run folder's model with its restored weights and statistics."""

    run_dir: Path
    config: TrainConfig
    class_names: tuple[str, ...]
    task: Task
    graphdef: Any
    model: Any  # steps.Model: parameters and the model state to evaluate with
    mesh: Any
    step: int
    checkpoint: str  # "best" or "last": the one restored
    skipped: list[tuple[str, str]]  # damaged checkpoints passed over, as (folder, reason)
    typed: Any  # the compiled spec (infer.TypedGraph) the model was built from
    kept: str  # which epoch the restored model is and why it was kept (`describe_kept`)


def load_run(run_dir: str | Path, which: str = "best") -> TrainedRun:
    """Rebuild the model of `run_dir` and restore the `which` checkpoint (`best` falls back to the
    latest when the run had no validation set; a damaged checkpoint to the newest intact one).
    Only parameters and model state are read, never the optimizer's state.

    Raises:
        PathError: not a run folder, or one without an intact checkpoint.
    """
    import jax.numpy as jnp

    from archspec.compile import compile_spec
    from archspec.train import distributed, steps
    from archspec.train.checkpoint import has_checkpoints
    from archspec.train.outputs import task_for

    if which not in CHECKPOINT_CHOICES:
        raise UserError(f"`--checkpoint` must be one of {', '.join(CHECKPOINT_CHOICES)}; got `{which}`")
    run_dir = Path(run_dir)
    saved = run.read(run_dir)
    config = run.saved_config(saved)
    if not has_checkpoints(run_dir):
        raise PathError(
            str(run_dir), "has no checkpoint yet", hint="the run stopped before its first checkpoint; train it again"
        )
    typed = compile_spec(config.spec_text, config.spec, config.input_shape)
    class_names = tuple(saved["data"]["class_names"])
    task = task_for(typed, len(class_names))
    mesh = distributed.make_mesh()
    dtype = jnp.bfloat16 if config.precision == "bf16" else None
    graphdef = steps.model_graphdef(typed, dtype=dtype)
    model, step, found, skipped = restore_model(run_dir, abstract_model(typed, dtype, mesh), which)
    kept = describe_kept(run_dir, config, step, found)
    return TrainedRun(run_dir, config, class_names, task, graphdef, model, mesh, step, found, skipped, typed, kept)


def describe_kept(run_dir: Path, config: TrainConfig, step: int, found: str) -> str:
    """`epoch 11 of 15, the lowest validation loss (0.0488) of 15 epochs`: the epoch of checkpoint
    `step` and why it is the model (results.json's reason; a run still going says "so far")."""
    from archspec.train.selection import MONITOR_WORDS, kept_reason

    results = run.read_results(run_dir)
    if found == "best" and results is not None and results.get("step") == step:
        results = {"monitor": config.monitor, **results}  # results.json of older runs did not name it
        return f"epoch {results['epoch']} of {results['epochs']}, {kept_reason(results)}"
    rows = {row["step"]: row["epoch"] for row in run.read_metrics(run_dir)}
    where = f"epoch {rows[step]} of {config.epochs}" if step in rows else f"step {step:,}"
    if found == "best":
        return f"{where}, the {MONITOR_WORDS[config.monitor]} so far (the run has not finished)"
    return f"{where}, the last checkpoint"


def abstract_model(typed, dtype, mesh):
    import functools

    import jax

    from archspec.train import distributed, steps

    shapes = jax.eval_shape(functools.partial(steps.init_model, typed, seed=0, dtype=dtype))
    sharding = distributed.replicated(mesh)
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), shapes)


def restore_model(run_dir: Path, abstract_model, which: str, step: int | None = None):
    """(model, step, "best" or "last", skipped) restored from `run_dir`'s checkpoints."""
    from archspec.train.checkpoint import Checkpoints
    from archspec.train.steps import Model

    checkpoints = Checkpoints(run_dir, read_only=True)
    try:
        if which == "best" and checkpoints.best_step() is None:
            which = "last"
        restored = checkpoints.restore(
            {"model": abstract_model._asdict()}, which="best" if which == "best" else "latest", step=step
        )
    finally:
        checkpoints.close()
    found = "best" if restored.which == "best" else "last"
    return Model(**restored.items["model"]), restored.step, found, restored.skipped


def evaluate_run(trained: TrainedRun, data: str | None = None) -> dict[str, dict[str, float]]:
    """Loss and accuracy of the run's model on each split of `data` (default: the training data,
    split as in training). Another dataset must have the same classes. Data over the run's memory
    budget (`--data-memory`, or the default) is streamed from disk, as in training."""
    import dataclasses

    import jax

    from archspec.train import distributed, loading, steps
    from archspec.train.metrics import finalize

    config = dataclasses.replace(trained.config, data=data or trained.config.data)
    dataset, _ = loading.load_data(config, trained.typed)
    if dataset.class_names != trained.class_names:
        raise UserError(
            f"{dataset.source} has classes {_names(dataset.class_names)}, but the model was trained on "
            f"{_names(trained.class_names)}",
            hint="evaluate on data with the same class folders (or class_names)",
        )
    devices = trained.mesh.devices.size
    evaluate = jax.jit(
        functools.partial(
            steps.evaluate,
            graphdef=trained.graphdef,
            task=trained.task,
            batch_sharding=distributed.batch_sharded(trained.mesh),
        ),
        compiler_options=compile_cache.model_options(trained.graphdef),
    )
    streamed = getattr(dataset, "sources", None)
    results = {}
    for split in ("train", "val", "test"):
        labels = getattr(dataset, f"y_{split}")
        if labels is None:
            continue
        batch = -(-min(256, len(labels)) // devices) * devices
        batches, masks = steps.eval_batches(len(labels), batch)
        if streamed is None:
            images = getattr(dataset, f"x_{split}")
            sums = _evaluate_in_memory(evaluate, trained, images, labels, batches, masks)
        else:
            sums = _evaluate_streamed(evaluate, trained, streamed[split], batches, masks, config.data_workers)
        results[split] = {**finalize(distributed.to_host(sums)), "images": len(labels)}
    return results


def _evaluate_in_memory(evaluate, trained: TrainedRun, images, labels, batches, masks):
    import jax

    from archspec.train import distributed

    replicated = distributed.replicated(trained.mesh)
    sharded = distributed.batch_sharded(trained.mesh, leading=1)
    return evaluate(
        trained.model,
        jax.device_put(images, replicated),
        jax.device_put(labels, replicated),
        jax.device_put(batches, sharded),
        jax.device_put(masks, sharded),
    )


def _evaluate_streamed(evaluate, trained: TrainedRun, source, batches, masks, workers: int):
    """The sums of `evaluate` over `batches` of `source` read by the Grain pipeline, one batch on the
    device at a time (each given with indices 0..B-1, as a streamed run's evaluation is)."""
    import jax

    from archspec.train import collector, distributed
    from archspec.train.data import pipeline
    from archspec.train.metrics import add_sums

    replicated = distributed.replicated(trained.mesh)
    sharded = distributed.batch_sharded(trained.mesh, leading=1)
    index = jax.device_put(np.arange(batches.shape[1], dtype=np.int32)[None], sharded)
    add = jax.jit(add_sums)
    iterator = pipeline.batches(source, batches, workers=workers)
    try:
        totals = None
        for (images, labels), mask in zip(iterator, masks, strict=True):
            distributed.wait_for(totals)
            sums = evaluate(
                trained.model,
                jax.device_put(images, replicated),
                jax.device_put(labels, replicated),
                index,
                jax.device_put(mask[None], sharded),
            )
            totals = sums if totals is None else add(totals, sums)
            collector.resume()  # paused while the command started (a no-op after the first batch)
        return totals
    finally:
        pipeline.close(iterator)


def read_images(paths: list[str], input_shape: tuple[int, int, int]) -> np.ndarray:
    """Decode image files into a uint8 batch fitted to `input_shape`, as the training images were.

    Raises:
        PathError: a file is missing or not an image Pillow can decode.
    """
    from archspec.train.data import read_image

    return np.stack([read_image(path, input_shape) for path in paths])


def scores_function(trained: TrainedRun):
    """images (N, H, W, C) in the uint8 range → class probabilities (N, classes): the model's whole
    inference, input scaling included, as one function of the images (what `predict` and an ONNX
    export compute)."""
    from flax import nnx

    from archspec.train import augment

    model = trained.model

    def scores(images):
        merged = nnx.merge(trained.graphdef, model.params, model.model_state)
        return trained.task.scores(merged(augment.to_float(images), train=False, logits=True))

    return scores


def predict(trained: TrainedRun, images: np.ndarray, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """For each image, its `top_k` classes with their probabilities, most likely first."""
    import jax

    if top_k < 1:
        raise UserError(f"`--top-k` (={top_k}) must be at least 1")
    from archspec.train import distributed

    # The images split over the run's devices (every core on a CPU), padded to a multiple of them.
    count, devices = len(images), trained.mesh.devices.size
    padded = np.concatenate([images, np.zeros((-count % devices, *images.shape[1:]), images.dtype)])
    batch = jax.device_put(padded, distributed.batch_sharded(trained.mesh))
    scores = jax.jit(scores_function(trained), compiler_options=compile_cache.model_options(trained.graphdef))
    probabilities = np.asarray(scores(batch))[:count]
    k = min(top_k, probabilities.shape[1])
    ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(trained.class_names[c], float(row[c])) for c in order] for row, order in zip(probabilities, ranked)]


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return f"{len(names)} ({shown})"
