"""Training output with rich: a progress bar per epoch (terminals only), an epoch table, the results."""

from __future__ import annotations

from typing import Any

from archspec.train.loop import Reporter
from archspec.train.selection import MONITOR_WORDS, final_line, small_validation
from cnn_arch.cli.output import stdout_console, warn_skipped_checkpoints

# (header, width, row key, format) of the epoch table; rows lacking a key show a dash.
COLUMNS = (
    ("epoch", 5, "epoch", "{}"),
    ("train loss", 10, "train_loss", "{:.4f}"),
    ("train acc", 9, "train_accuracy", "{:.2%}"),
    ("train top5", 10, "train_top5_accuracy", "{:.2%}"),
    ("val loss", 8, "val_loss", "{:.4f}"),
    ("val acc", 7, "val_accuracy", "{:.2%}"),
    ("val top5", 8, "val_top5_accuracy", "{:.2%}"),
    ("lr", 9, "lr", "{:.2e}"),
    ("time", 6, "seconds", "{:.1f}s"),
    ("img/s", 8, "images_per_second", "{:,.0f}"),
)
# What the bars say for each stage of `load_dataset`'s progress.
LOADING_LABELS = {"hashing": "checking files", "decoding": "decoding images", "reading": "reading images"}


class RichReporter(Reporter):
    """Prints to stdout; the live progress bar is drawn only on a terminal."""

    def __init__(self, header=None) -> None:
        self.header = header  # printed first at `start`: after set-up has checked the model against the data
        self.console = stdout_console()
        self._progress = None
        self._task = None
        self._columns = COLUMNS
        self._header_shown = False
        self._loading = LoadingBars()
        self._small_validation: str | None = None

    def loading(self, stage: str, done: int, total: int) -> None:
        self._loading(stage, done, total)

    def start(self, info: dict[str, Any]) -> None:
        if self.header is not None:
            self.header()
        count, available = info["devices"], info.get("devices_available", info["devices"])
        devices = f"{count} {'' if count == available else f'of {available} '}{info['platform'].upper()} device"
        devices += "s" if available > 1 else ""
        if info.get("per_core"):  # archspec.train.cores: a pinned process per core, one device each
            devices = f"{info['processes']} CPU processes, one per core"
        elif info["processes"] > 1:
            devices += f" in {info['processes']} processes"
        elif info["platform"] == "cpu" and available == 1:
            from archspec.devices import usable_cores

            if (cores := usable_cores()) > 1:  # a large model's one device: XLA threads its convolutions
                devices += f" using {cores} cores"
        splits = f"{info['train_images']:,} train / {info['val_images']:,} val / {info['test_images']:,} test images"
        precision = " in bf16 (float32 weights)" if info["precision"] == "bf16" else ""
        self.console.print()
        self.console.print(
            f"Training on {devices}{precision}: {splits}, {info['classes']} classes, "
            f"{info['steps_per_epoch']} steps per epoch x {info['epochs']} epochs",
            markup=False,
        )
        if info["held_out"]:
            held = " and ".join(
                f"{'validation' if name == 'val' else 'test'} (--{name}-split {info[f'{name}_split']:g})"
                for name in info["held_out"]
            )
            self.console.print(f"Held out of the training images, stratified and seeded: {held}", markup=False)
        if not info["test_images"]:
            self.console.print(
                "No test images: the data has no test split and --test-split 0 holds none out", markup=False
            )
        if info["val_images"]:
            self.console.print(f"Keeps the epoch of the {MONITOR_WORDS[info['monitor']]} (--monitor)", markup=False)
        self._small_validation = small_validation(info["val_images"])
        if self._small_validation:
            self.console.print(f"warning: {self._small_validation}", markup=False)
        if info.get("data"):
            self.console.print(info["data"], markup=False)
        if info["skipped"]:
            self.console.print(f"Skipped {len(info['skipped'])} unreadable files (--skip-bad-files)", markup=False)
        warn_skipped_checkpoints(info["skipped_checkpoints"])
        if info["resumed_at"] is not None:
            self.console.print(f"Resumed at step {info['resumed_at']:,}", markup=False)
        for line in info["init_report"]:
            self.console.print(line, markup=False)
        trainable, frozen = info["parameters"]
        if info["freeze"] is not None:
            self.console.print(
                f"Frozen up to {_upto(info['freeze'])}: {frozen:,} parameters fixed (their BatchNorm in inference "
                f"mode), {trainable:,} trainable",
                markup=False,
            )
        if info["precise_bn"]:
            self.console.print(
                "Validation and saved models use BatchNorm statistics recomputed for the current weights "
                "(precise BN; --no-precise-bn for the moving averages)",
                markup=False,
            )
        self.console.print(f"Run folder: {info['run_dir']}", markup=False)
        if info["classes"] <= 10:  # no top-5 columns
            self._columns = tuple(c for c in COLUMNS if "top5" not in c[2])
        self.console.print()

    def compiled(self, seconds: float) -> None:
        self.console.print(f"Compiled the train step in {seconds:.1f}s", markup=False)
        self.console.print()

    def epoch_start(self, epoch: int, steps: int, position: int) -> None:
        self._show_header()
        if not self.console.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn(f"epoch {epoch}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task("train", total=steps, completed=position, stats="")
        self._progress.start()

    def progress(self, epoch: int, position: int, metrics: dict[str, float], images_per_second: float) -> None:
        if self._progress is None:
            return
        stats = f"loss {metrics['loss']:.4f}  acc {metrics['accuracy']:.2%}  {images_per_second:,.0f} img/s"
        self._progress.update(self._task, completed=position, stats=stats)

    def epoch_end(self, row: dict[str, Any]) -> None:
        self.close()
        cells = []
        for _, width, key, form in self._columns:
            value = row.get(key)
            cells.append((form.format(value) if value is not None else "-").rjust(width))
        self.console.print("  ".join(cells), markup=False)

    def finish(self, results: dict[str, Any]) -> None:
        self.console.print()
        if self._small_validation:
            self.console.print(f"warning: {self._small_validation}", markup=False)
        self.console.print(final_line(results), markup=False)

    def close(self) -> None:
        self._loading.close()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _show_header(self) -> None:
        if self._header_shown:
            return
        self._header_shown = True
        self.console.print("  ".join(name.rjust(width) for name, width, _, _ in self._columns), markup=False)


def _upto(freeze: str) -> str:
    return freeze if freeze.startswith("@") else f"line {freeze}"


class LoadingBars:
    """A progress bar on stderr while a data folder's files are hashed for the cache key, then one while
    they are decoded; drawn only when stderr is a terminal (or on the `console` given)."""

    def __init__(self, console=None) -> None:
        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
        self.console = console
        self._progress = None
        self._task = None
        self._stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.console.is_terminal:
            return
        if stage != self._stage or self._progress is None:
            self.close()
            self._start(stage, total)
        self._progress.update(self._task, completed=done)
        if done >= total:
            self.close()

    def _start(self, stage: str, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._stage = stage
        self._progress = Progress(
            TextColumn(LOADING_LABELS.get(stage, stage)),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task(stage, total=total)
        self._progress.start()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
