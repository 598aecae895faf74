"""Where a run's batches come from: the whole uint8 dataset on the device (`MemoryFeed`), or a Grain
stream from disk (`StreamFeed`) whose position is checkpointed with the model.

Both give the train step the same batches: a stream reads, for each step, the images of the row of
`steps.epoch_order` the in-memory step would gather, and hands the step that batch with indices
0..B-1 to gather, so the jitted `train_step` (augmentation included) is the same function. Under
`jax.distributed` each process reads only the columns of each batch that its own devices hold.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from archspec.train import compile_cache, distributed, steps
from archspec.train.data import pipeline
from archspec.train.metrics import add_sums
from archspec.train.steps import Model, TrainState


class MemoryFeed:
    """The dataset on the device: a batch is gathered by index inside the train step."""

    def __init__(self, images, labels, splits: dict, fns) -> None:
        self.images, self.labels, self.splits, self.fns = images, labels, splits, fns

    def begin_epoch(self, state: TrainState, epoch: int, position: int):
        return self.fns.epoch_order(state.key, np.int32(epoch))

    def batch(self, order) -> tuple:
        return self.images, self.labels, order

    def evaluate(self, split: str, model: Model) -> dict:
        return self.fns.evaluate(model, *self.splits[split])

    def state(self) -> dict | None:
        return None

    def close(self) -> None:
        pass


class StreamFeed:
    """Batches read from `dataset.sources` by the Grain pipeline while the device trains."""

    def __init__(self, dataset, mesh, *, batch_size, eval_batch, steps_per_epoch, fns, config, graphdef, resume):
        self.dataset, self.mesh, self.fns = dataset, mesh, fns
        self.batch_size, self.eval_batch, self.steps_per_epoch = batch_size, eval_batch, steps_per_epoch
        self.workers = config.data_workers
        self.resume = resume  # the checkpoint's `data` item, used once by the epoch it belongs to
        self.iterator, self.epoch, self.offset = None, None, 0
        self.batch_sharding = distributed.batch_sharded(mesh)
        self.rows_sharding = distributed.batch_sharded(mesh, leading=1)
        replicated = distributed.replicated(mesh)
        # The train step gathers rows 0..B-1 of the batch it is given.
        self.order = jax.device_put(np.tile(np.arange(batch_size, dtype=np.int32), (steps_per_epoch, 1)), replicated)
        self.host_order = jax.jit(
            functools.partial(
                steps.epoch_order,
                num_examples=len(dataset.y_train),
                steps=steps_per_epoch,
                batch_size=batch_size,
            ),
            out_shardings=replicated,
        )
        self.add = jax.jit(add_sums)
        self.precise_order = None
        if fns.precise_bn:
            self.precise_order = steps.precise_bn_order(
                config.seed, num_examples=len(dataset.y_train), batch_size=batch_size
            )
            self.statistic_sums = jax.jit(
                functools.partial(steps.statistic_sums, graphdef=graphdef, batch_sharding=self.batch_sharding),
                compiler_options=compile_cache.model_options(graphdef),
            )
            self.with_statistics = jax.jit(
                functools.partial(steps.with_statistics, graphdef=graphdef), static_argnums=2
            )
            fns.inference_model = self.inference_model

    def begin_epoch(self, state: TrainState, epoch: int, position: int):
        pipeline.close(self.iterator)
        order = distributed.to_host(self.host_order(state.key, np.int32(epoch)))
        rows = order[:, _local_columns(self.mesh, self.batch_size)]
        saved = self.resume
        self.resume = None
        resumable = (
            saved is not None
            and saved.get("epoch") == epoch
            and saved.get("position") == position
            and saved.get("workers") == self.workers
        )
        # A resumed run continues where the checkpointed pipeline stood; one whose checkpoint came from
        # the in-memory path (or another worker count) starts the stream at the step's row.
        self.offset = saved["offset"] if resumable else position
        self.iterator = pipeline.batches(
            self.dataset.sources["train"],
            rows[self.offset :],
            workers=self.workers,
            state=saved["iterator"] if resumable else None,
        )
        self.epoch, self.consumed = epoch, position - self.offset
        return self.order

    def batch(self, order) -> tuple:
        images, labels = next(self.iterator)
        self.consumed += 1
        return self._global(images), self._global(labels), self.order

    def batch_shapes(self) -> tuple:
        """What `batch` returns, as shapes (for compiling the train step before the first batch is read)."""
        sharded = functools.partial(jax.ShapeDtypeStruct, sharding=self.batch_sharding)
        return (
            sharded((self.batch_size, *self.dataset.input_shape), np.uint8),
            sharded((self.batch_size,), np.int32),
            self.order,
        )

    def state(self) -> dict:
        """The `data` item of a checkpoint: where in which epoch the stream stands."""
        return {
            "epoch": self.epoch,
            "position": self.offset + self.consumed,
            "offset": self.offset,
            "workers": self.workers,
            "iterator": self.iterator.get_state() if self.iterator is not None else None,
        }

    def evaluate(self, split: str, model: Model) -> dict:
        source = self.dataset.sources[split]
        rows, masks = steps.eval_batches(len(source), self.eval_batch)
        index = self._rows(np.arange(self.eval_batch, dtype=np.int32)[None])
        totals = None
        for images, labels, mask in self._stream(source, rows, masks):
            distributed.wait_for(totals)
            sums = self.fns.evaluate(model, images, labels, index, self._rows(mask[None]))
            totals = sums if totals is None else self.add(totals, sums)
        return totals

    def inference_model(self, state: TrainState) -> Model:
        """Precise BN over the same fixed training batches as the in-memory path, read from disk."""
        model = Model(state.params, state.model_state)
        index = self._rows(np.arange(self.batch_size, dtype=np.int32)[None])
        sums = None
        for images, _, _ in self._stream(self.dataset.sources["train"], self.precise_order):
            distributed.wait_for(sums)
            batch = self.statistic_sums(model, images, index)
            sums = batch if sums is None else jax.tree.map(jnp.add, sums, batch)
        return self.with_statistics(model, sums, len(self.precise_order))

    def close(self) -> None:
        pipeline.close(self.iterator)
        self.iterator = None

    def _stream(self, source, rows, masks=None):
        width = rows.shape[1]
        iterator = pipeline.batches(source, rows[:, _local_columns(self.mesh, width)], workers=self.workers)
        try:
            for number, (images, labels) in enumerate(iterator):
                yield self._global(images), self._global(labels), None if masks is None else masks[number]
        finally:
            pipeline.close(iterator)

    def _global(self, local: np.ndarray) -> jax.Array:
        """The global batch of which this process read `local` (its devices' rows)."""
        shape = (local.shape[0] * jax.process_count(), *local.shape[1:])
        return jax.make_array_from_process_local_data(self.batch_sharding, local, shape)

    def _rows(self, array: np.ndarray) -> jax.Array:
        return jax.device_put(array, self.rows_sharding)


def _local_columns(mesh, width: int) -> slice:
    """The columns of a (rows, width) batch matrix split over `mesh` that this process's devices hold."""
    devices = list(mesh.devices.flat)
    per_device = width // len(devices)
    mine = [k for k, device in enumerate(devices) if device.process_index == jax.process_index()]
    return slice(mine[0] * per_device, (mine[-1] + 1) * per_device)
