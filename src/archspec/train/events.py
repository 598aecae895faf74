"""TensorBoard event files in the run folder: per epoch the train and validation loss and accuracy,
the learning rate and images/s; the layer table and the spec as text; optionally the first batch.

RUN/tensorboard/train/ and RUN/tensorboard/validation/ are two sub-runs with the same tags
(`epoch_loss`, `epoch_accuracy`), as Keras' TensorBoard callback writes them, so TensorBoard draws
train and validation in one chart; `tensorboard --logdir runs/` shows every run. The step of an
epoch's values is its number, as in metrics.jsonl.

The events are written synchronously, a few records per epoch: tensorboardX's `SummaryWriter` writes
from a thread, where a full disk prints a traceback and then blocks training on a full queue. A
fault of the disk here is one warning; training goes on without events.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

EVENTS_DIR = "tensorboard"
TRAIN, VALIDATION = "train", "validation"
MAX_IMAGES = 64  # of the first batch, in one grid image


class Events:
    """The event writers of one run (process 0 only), from epoch `first_epoch` on.

    Older event files of the folder (a run resumed, or restarted before its first checkpoint) keep
    only the epochs before `first_epoch`: the steps are never written twice. The new files start
    with the `SessionLog.START` that tensorboardX's `purge_step` writes, so that a TensorBoard which
    had read the later epochs already drops them too.
    """

    def __init__(self, run_dir: Path, first_epoch: int) -> None:
        self.folder = Path(run_dir) / EVENTS_DIR
        self.first_epoch = first_epoch
        self.writers: dict[str, Any] = {}
        self.failed = False
        self._guard(self._open)

    def _open(self) -> None:
        with _without_torch():
            from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        for name in (TRAIN, VALIDATION):
            folder = self.folder / name
            folder.mkdir(parents=True, exist_ok=True)
            for path in sorted(folder.glob("events.out.tfevents.*")):
                keep_steps_before(path, self.first_epoch)
            # The pid keeps two sessions started within the same second (tensorboardX names files by
            # the second) from writing one file.
            writer = EventsWriter(str(folder / "events"), f".{os.getpid()}")
            self.writers[name] = writer
            start = Event(wall_time=time.time(), step=self.first_epoch, session_log=SessionLog(status=SessionLog.START))
            writer.write_event(start)
        self._flush()

    def epoch(self, row: dict[str, Any]) -> None:
        """The values of one metrics.jsonl row, at step `row["epoch"]`."""
        from tensorboardX import summary

        train = {f"epoch_{key[6:]}": value for key, value in row.items() if key.startswith("train_")}
        train["epoch_learning_rate"] = row["lr"]
        if row.get("images_per_second") is not None:
            train["epoch_images_per_second"] = row["images_per_second"]
        val = {f"epoch_{key[4:]}": value for key, value in row.items() if key.startswith("val_")}

        def write() -> None:
            for name, values in ((TRAIN, train), (VALIDATION, val)):
                for tag, value in values.items():
                    self._write(name, row["epoch"], summary.scalar(tag, float(value)))
            self._flush()

        self._guard(write)

    def text(self, tag: str, markdown: str) -> None:
        """A text (markdown) at step 0 of the train sub-run: TensorBoard's Text tab."""
        from tensorboardX import summary

        self._guard(lambda: (self._write(TRAIN, 0, summary.text(tag, markdown)), self._flush()))

    def first_batch(self, dataset, order) -> None:
        """The first training batch (before augmentation) as one grid at step 0, in TensorBoard's
        Images tab, with its labels in grid order as text. `order` is the epoch's (steps, batch)
        example indices, sharded over the devices: a process shows the images its own devices train on
        (the whole batch in a single process)."""
        from tensorboardX import summary

        if dataset.x_train is None:
            _warn("--tensorboard-images: the first batch is not written when the training images are streamed")
            return
        shards = sorted(order.addressable_shards, key=lambda shard: shard.index[1].start or 0)
        indices = np.concatenate([np.asarray(shard.data)[0] for shard in shards])[:MAX_IMAGES]
        images = dataset.x_train[indices]
        labels = [dataset.class_names[label] for label in dataset.y_train[indices]]
        if images.shape[-1] not in (1, 3):
            _warn(f"the first batch is not written to TensorBoard: {images.shape[-1]}-channel images are not pictures")
            return

        def write() -> None:
            self._write(TRAIN, 0, summary.image("first_batch", images, dataformats="NHWC"))
            self._write(TRAIN, 0, summary.text("first_batch_labels", ", ".join(labels)))
            self._flush()

        self._guard(write)

    def close(self) -> None:
        writers, self.writers = self.writers, {}
        for writer in writers.values():
            # A fault was warned about at the write that failed; the file is closed all the same.
            with contextlib.suppress(OSError):
                writer.close()

    def _write(self, name: str, step: int, summary) -> None:
        from tensorboardX.proto.event_pb2 import Event

        self.writers[name].write_event(Event(wall_time=time.time(), step=step, summary=summary))

    def _flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()

    def _guard(self, action) -> None:
        """Run `action`; a fault of the disk warns once and stops the events, not the training."""
        if self.failed:
            return
        try:
            action()
        except OSError as error:
            where = error.filename or self.folder
            _warn(
                f"cannot write the TensorBoard events in {where} ({error.strerror or error}); "
                "training goes on without them (metrics.jsonl has every epoch)"
            )
            self.failed = True
            self.close()


class NoEvents:
    """What processes other than 0 write: nothing."""

    def epoch(self, row: dict[str, Any]) -> None:
        pass

    def text(self, tag: str, markdown: str) -> None:
        pass

    def first_batch(self, dataset, order) -> None:
        pass

    def close(self) -> None:
        pass


def open_events(prepared, primary: bool) -> Events | NoEvents:
    """The events of `prepared`'s run: a fresh run writes its layer table and spec first; a resumed
    one continues after the epochs its metrics.jsonl kept."""
    if not primary:
        return NoEvents()
    resumed_at = prepared.resumed_at
    if resumed_at is None:
        events = Events(prepared.workdir, 0)
        events.text("layers", layer_table(prepared.config))
        events.text("spec", _code_block(prepared.config.spec_text))
    else:
        events = Events(prepared.workdir, resumed_at // prepared.steps_per_epoch + 1)
    return events


def layer_table(config) -> str:
    """The spec's full layer table in markdown (as `summarize --format markdown` prints it)."""
    from archspec import summary
    from archspec.compile import compile_spec

    typed = compile_spec(config.spec_text, config.spec, config.input_shape)
    return summary.to_markdown(summary.summarize(typed, config.spec))


@contextlib.contextmanager
def _without_torch():
    """tensorboardX's package imports PyTorch when it is installed (to accept its tensors, which we never
    pass): 1.5 to 4.5 s before a run's first step. Seen as missing while tensorboardX is imported."""
    if "torch" in sys.modules:  # imported already: nothing to save
        yield
        return
    sys.modules["torch"] = None  # `import torch` raises ImportError, which tensorboardX expects
    try:
        yield
    finally:
        del sys.modules["torch"]


def keep_steps_before(path: Path, step: int) -> None:
    """Rewrite the event file `path` without its summaries and session logs at `step` or later (and
    without a record a kill cut short); a file left with no summary is deleted."""
    from tensorboardX.proto.event_pb2 import Event

    records = read_records(path)
    kept, summaries = [], 0
    for record in records:
        event = Event.FromString(record)
        if event.HasField("summary") or event.HasField("session_log"):
            if event.step >= step:
                continue
            summaries += event.HasField("summary")
        kept.append(record)
    if not summaries:
        path.unlink()
    elif len(kept) != len(records) or path.stat().st_size != sum(len(r) + 16 for r in records):
        from tensorboardX.record_writer import RecordWriter

        temporary = path.with_name(path.name + ".trim")
        writer = RecordWriter(str(temporary))
        for record in kept:
            writer.write(record)
        writer.close()
        os.replace(temporary, path)


def read_records(path: Path) -> list[bytes]:
    """The complete records of a TFRecord file (8-byte length, its CRC, the data, its CRC)."""
    data = path.read_bytes()
    records, offset = [], 0
    while offset + 12 <= len(data):
        length = int.from_bytes(data[offset : offset + 8], "little")
        end = offset + 12 + length + 4
        if end > len(data):
            break  # cut short by a kill while writing
        records.append(data[offset + 12 : offset + 12 + length])
        offset = end
    return records


def _code_block(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
