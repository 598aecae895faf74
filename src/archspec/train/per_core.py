"""The jitted side of a process per core (`archspec.train.cores`): the train step split in two around
the exchange of the gradients, and evaluation and precise BatchNorm statistics over each process's
share of the batches.

- `GroupStep` computes the gradient of this process's part of the batch, the new model state and the
  batch's metric sums as one flat vector (`gradients`), sums the vectors of every process in shared
  memory, and applies the averaged gradient with `steps.apply_gradients` (`update`), the same update
  a one-process step makes. The BatchNorm moving statistics are averaged the same way, so every
  process keeps the same state; the dropout streams' counters advance alike in every process.
- Each process's stop flag (a signal received) goes with its vector, so every process learns at the
  same step that one of them was asked to stop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from archspec.train import compile_cache, freezing, steps
from archspec.train.cores import Group


class GroupStep:
    """Called as the one-process `train_step` is: (state, totals, images, labels, order) -> (state, totals)."""

    def __init__(self, group: Group, *, tx, frozen, **parts) -> None:
        """`parts`: the rest of `steps.gradients`' keywords (graphdef, task, steps_per_epoch, ...)."""
        self.group = group
        self.rank = np.int32(group.rank)  # an argument, not a constant: every process runs one program
        options = compile_cache.model_options(parts["graphdef"])

        def train_gradients(state, images, labels, order, rank):
            part = (rank, group.size)
            grads, model_state, batch = steps.gradients(state, images, labels, order, frozen=frozen, part=part, **parts)
            floats, others = _floats(model_state)
            return ravel_pytree((grads, floats, batch))[0].astype(jnp.float32), others

        def train_update(state, totals, total, offsets, others):
            # Each leaf's piece of the summed vector starts at an offset given as an argument, not a
            # constant: XLA compiles one kernel per distinct fusion, and a slice at a constant offset
            # made every leaf's optimizer kernels distinct (MobileNetV2's update compiled in 9.2-11.3 s on
            # one core, against 4.4-4.9 s now). The same floats either way.
            like, structure = jax.tree.flatten(_template(state, totals, frozen))
            pieces = [
                jax.lax.dynamic_slice(total, (offset,), (leaf.size,)).reshape(leaf.shape).astype(leaf.dtype)
                for leaf, offset in zip(like, offsets)
            ]
            grads, floats, batch = structure.unflatten(pieces)
            mean = functools.partial(jax.tree.map, lambda value: value / group.size)
            model_state = _joined(state.model_state, mean(floats), others)
            return steps.apply_gradients(state, totals, mean(grads), model_state, batch, tx=tx, frozen=frozen)

        self.gradients = jax.jit(train_gradients, compiler_options=options)
        # The optimizer's own options: the fusion emitters run it faster (`compile_cache.OLDER_EMITTERS`).
        self.update = jax.jit(train_update, donate_argnums=0, compiler_options=compile_cache.model_options())
        self.frozen, self._offsets = frozen, None

    def __call__(self, state, totals, images, labels, order):
        self.group.pin()
        flat, others = self.gradients(state, images, labels, order, self.rank)
        flag = self.group.flag
        signalled = flag is not None and flag.signal_number is not None
        total, self.group.stop = self.group.sum_and_any("step", np.asarray(flat), signalled)
        return self.update(state, totals, total, self.offsets(state, totals), others)

    def offsets(self, state, totals) -> list:
        """Where each leaf's piece starts in the summed vector, as arrays on the device (made once)."""
        if self._offsets is None:
            sizes = [leaf.size for leaf in _template_leaves(state, totals, self.frozen)]
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
            self._offsets = jax.device_put(list(starts))  # one transfer, and no `jnp.asarray` program to compile
        return self._offsets

    def lower(self, state, totals, images, labels, order) -> _Lowered:
        """Both halves lowered for these arguments (shapes suffice), for `compile_cache.Compiling`."""
        traced = self.gradients.trace(state, images, labels, order, self.rank)
        flat, others = traced.out_info
        vector = jax.ShapeDtypeStruct(flat.shape, flat.dtype)
        # Placed as the state is, as the real call's outputs are (the traced ones leave it unspecified).
        placed = state.step.sharding
        others = [jax.ShapeDtypeStruct(other.shape, other.dtype, sharding=placed) for other in others]
        offsets = [jax.ShapeDtypeStruct((), jnp.int32) for _ in _template_leaves(state, totals, self.frozen)]
        gradients, update = traced.lower(), self.update.lower(state, totals, vector, offsets, others)
        return _Lowered(self.group, {"gradients": gradients.compile, "update": update.compile})


class _Lowered:
    """What `Compiling` compiles on its thread: the step's two halves, and what is `share`d with them
    (the data order), shared out by `compiled_once`: the gradients' half, the longest to compile, by
    rank 0 alone; the rest by the other ranks in turn (the last also compiles the weights'
    initialization meanwhile: `setup.prepare`)."""

    def __init__(self, group: Group, parts: dict) -> None:
        self.group, self.parts = group, parts

    def share(self, parts: dict) -> None:
        self.parts = {**self.parts, **parts}

    def compile(self) -> None:
        others = range(1, self.group.size)
        owners = {name: others[(i - 1) % len(others)] if i else 0 for i, name in enumerate(self.parts)}
        compiled_once(self.group, self.parts, owners)


def compiled_once(group: Group, parts: dict, owners: dict[str, int] | None = None) -> list:
    """Each of `parts` (name -> compile function) compiled in every process, but where the persistent
    cache is on, compiled by one process alone (its rank in `owners`; by default the first part by
    rank 0, the second by rank 1, ...) while the others wait for it, asleep, and then load it from
    the cache. Every process runs the same programs (the rank is an argument), so the compilation
    work of a cold start is shared out, not done once per core. The results, in the order of `parts`."""
    owners = owners or {name: rank % group.size for rank, name in enumerate(parts)}
    owned = {name: owners[name] == group.rank for name in parts}
    shared = bool(jax.config.jax_compilation_cache_dir)
    results = {}
    for name, compile_part in parts.items():  # this process's own first: the others may wait for it
        if owned[name] or not shared:
            results[name] = compile_part()
            group.announce(name)
    for name, compile_part in parts.items():
        if name not in results:
            group.await_announcement(name)
            results[name] = compile_part()  # from the cache, unless its owner could not write there
    return [results[name] for name in parts]


def initial_model(group: Group, init, placed) -> steps.Model:
    """The weights' initialization (`init`: jitted and traced) compiled and run by the last process
    alone, which hands its result to the others bit for bit through shared memory (placed as
    `placed`): they neither lower it, nor load it from the cache, nor run it. Rank 0 did all three
    while it compiled the gradients' half, the longest of a cold start."""
    raw_like = jax.eval_shape(lambda model: jax.tree.map(_raw, model), init.out_info)
    sizes = [leaf.size * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(raw_like)]
    if group.rank == group.size - 1:
        model = init.lower().compile()()
        raw = [np.asarray(leaf).reshape(-1).view(np.uint8) for leaf in jax.tree.leaves(jax.tree.map(_raw, model))]
        group.sum("initial weights", np.concatenate(raw) if raw else np.zeros(0, np.uint8), np.uint8)
        group.forget("initial weights")  # as large as the gradients' block: not kept beside it in /dev/shm
        return model
    flat = group.sum("initial weights", np.zeros(sum(sizes), np.uint8), np.uint8)  # the last's, as it is
    group.forget("initial weights")
    leaves, at = [], 0
    for like, raw, size in zip(jax.tree.leaves(init.out_info), jax.tree.leaves(raw_like), sizes, strict=True):
        array = jax.device_put(flat[at : at + size].view(raw.dtype).reshape(raw.shape), placed)
        leaves.append(jax.random.wrap_key_data(array) if steps.is_key(like) else array)  # JAX's default kind, as made
        at += size
    return jax.tree.unflatten(jax.tree.structure(init.out_info), leaves)


def _raw(leaf):
    """A leaf as an array of plain numbers: a random key as its key data."""
    return jax.random.key_data(leaf) if steps.is_key(leaf) else leaf


def _template(state, totals: dict, frozen) -> tuple:
    """What the gradients' half ravels, as the state's own arrays: (trainable weights, float model
    state, the batch's metric sums)."""
    trainable, _ = freezing.split(state.params, frozen)
    return trainable, _floats(state.model_state)[0], {k: v for k, v in totals.items() if k != "finite"}


def _template_leaves(state, totals: dict, frozen) -> list:
    return jax.tree.leaves(_template(state, totals, frozen))


def _floats(model_state: dict) -> tuple[list, list]:
    """The model state's float leaves (BatchNorm statistics: averaged over the processes) and the
    others (the dropout streams' keys and counters: alike in every process), in tree order."""
    leaves = jax.tree.leaves(model_state)
    return [leaf for leaf in leaves if _is_float(leaf)], [leaf for leaf in leaves if not _is_float(leaf)]


def _joined(like: dict, floats: list, others: list) -> dict:
    floats, others = iter(floats), iter(others)
    leaves, tree = jax.tree.flatten(like)
    return jax.tree.unflatten(tree, [next(floats) if _is_float(leaf) else next(others) for leaf in leaves])


def _is_float(leaf) -> bool:
    return jnp.issubdtype(leaf.dtype, jnp.floating)


def summed(group: Group, purpose: str, tree):
    """A tree of arrays summed over every process (on the host, in float64: metric sums stay exact)."""
    leaves, structure = jax.tree.flatten(tree)
    arrays = [np.asarray(leaf, np.float64) for leaf in leaves]
    flat = np.concatenate([array.reshape(-1) for array in arrays]) if arrays else np.zeros(0)
    total, out, at = group.sum(purpose, flat, np.float64), [], 0
    for array in arrays:
        out.append(total[at : at + array.size].reshape(array.shape))
        at += array.size
    return jax.tree.unflatten(structure, out)


def evaluate(group: Group, jitted):
    """`steps.evaluate` of this process's rows of a split (`setup._put_split` gives each process its
    own), summed over every process."""

    def run(model, images, labels, batches, masks):
        return summed(group, "evaluate", jitted(model, images, labels, batches, masks))

    return run


def inference_model(group: Group, graphdef, images, batches, count: int, batch_sharding):
    """Precise BatchNorm statistics over every process's `batches` (rows of `count` in all)."""
    sums = jax.jit(
        functools.partial(steps.statistic_sums, graphdef=graphdef, batch_sharding=batch_sharding),
        compiler_options=compile_cache.model_options(graphdef),
    )
    average = jax.jit(functools.partial(steps.with_statistics, graphdef=graphdef))

    def run(state: steps.TrainState) -> steps.Model:
        model = steps.Model(state.params, state.model_state)
        return average(model, summed(group, "statistics", sums(model, images, batches)), np.float32(count))

    return run
