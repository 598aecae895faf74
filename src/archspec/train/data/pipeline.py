"""The Grain pipeline over a streamed source: batches of given indices, in order, decoded ahead.

Indices come in rows, one row per batch (this process's share of each global batch); the pipeline
yields `(images uint8 (n, H, W, C), labels int32 (n,))` per row. With `workers=0` images are decoded
by Grain's reader threads in this process (Pillow lets go of the GIL while it decodes and resizes,
so threads use every core without a copy of the interpreter each); `workers=N` decodes in N Grain
worker processes (`mp_prefetch`), each of which imports Grain and so JAX (about 200 MiB each).
The iterator's `get_state()` is what a checkpoint keeps; `set_state` brings a new one back there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archspec.train.data.stream import Source, decode_threads

PREFETCH_BATCHES = 2  # batches decoded ahead of the one training uses


@dataclass(frozen=True, eq=False)
class _Picked:
    """The images `indices` of `source`, in that order (what Grain's workers receive, pickled)."""

    source: Source
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.int32]:
        pixels, label = self.source[int(self.indices[index])]
        return pixels, np.int32(label)


def batches(source: Source, rows: np.ndarray, *, workers: int = 0, state: dict | None = None):
    """An iterator of the batches `rows` ((batches, n) indices into `source`), from `state` if given."""
    import grain

    width = rows.shape[1]
    picked = grain.MapDataset.source(_Picked(source, np.ascontiguousarray(rows.reshape(-1))))
    if workers > 0:
        _parse_grain_flags()
        # Batched before the workers take their share, so that each worker makes whole batches and
        # the batches stay those of `rows` (workers take turns, in order).
        dataset = (
            picked.batch(width, drop_remainder=True)
            .to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=1))
            .mp_prefetch(grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=PREFETCH_BATCHES))
        )
    else:
        dataset = picked.to_iter_dataset(
            grain.ReadOptions(num_threads=decode_threads(), prefetch_buffer_size=PREFETCH_BATCHES * width)
        ).batch(width, drop_remainder=True)
    iterator = iter(dataset)
    if state is not None:
        iterator.set_state(state)
    return iterator


def close(iterator) -> None:
    """Stop an iterator's worker processes (threads stop with it)."""
    if iterator is not None and hasattr(iterator, "close"):
        iterator.close()


def _parse_grain_flags() -> None:
    """Grain 0.2 reads an absl flag when it starts worker processes and fails unless absl's flags
    were parsed, which only an absl `app.run` program does: mark them parsed, keeping the defaults."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
