"""The settings of one training run: a frozen `TrainConfig`, validated once when it is built.

`config.json` in the run folder holds it, so that `--resume`, `evaluate` and `predict` rebuild the
same model and the same data order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from archspec.errors import UserError
from archspec.text import shape_text

OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop", "lion")
SCHEDULES = ("cosine", "constant")
AUGMENTATIONS = ("flip", "crop")
PRECISIONS = ("fp32", "bf16")
# What picks the run's model among its epochs (Keras ModelCheckpoint's `monitor`): the lowest
# validation loss, or the highest validation accuracy (ties going to the lower loss).
MONITORS = ("val_loss", "val_accuracy")
# What a config.json written before a setting existed meant by leaving it out: those runs kept the
# epoch of best validation accuracy and held no test images out, and resume and evaluate as they did.
LEGACY_DEFAULTS = {"monitor": "val_accuracy", "test_split": 0.0}

# Settings that change what is trained: a resumed run must keep them. The others (`data` as a path,
# checkpoint cadence) may change between a run and its resumption.
TRAINING_SETTINGS = (
    "spec_text",
    "input_shape",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "momentum",
    "schedule",
    "warmup_epochs",
    "weight_decay",
    "label_smoothing",
    "augment",
    "val_split",
    "test_split",
    "seed",
    "precision",
    "precise_bn",
    "init_from",
    "reinit_mismatched",
    "freeze",
    "monitor",
)
SEED_LIMIT = 2**32  # seeds are 0 .. 2**32 - 1, what numpy's and JAX's generators take


@dataclass(frozen=True)
class TrainConfig:
    """Everything `train_and_evaluate` needs. Defaults train `gap-head` on `digits` well."""

    spec: str  # display name: a spec path or a template name
    spec_text: str
    input_shape: tuple[int, int, int]
    data: str = "digits"
    epochs: int = 15
    batch_size: int = 32
    lr: float = 3e-3
    optimizer: str = "adamw"
    momentum: float = 0.9  # sgd and rmsprop
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    augment: tuple[str, ...] = ()
    val_split: float = 0.1
    # Share of the training images held out for testing when the data has no test split: every run
    # ends with a number no choice was made on (0: none, and the run says so).
    test_split: float = 0.1
    monitor: str = "val_loss"  # which epoch's model the run keeps: see MONITORS
    seed: int = 0
    precision: str = "fp32"
    skip_bad_files: bool = False
    checkpoint_every: int = 0  # steps; 0 = at the end of every epoch only
    keep_checkpoints: int = 3
    # Evaluate and save with BatchNorm statistics recomputed for the current weights (precise BN),
    # not the moving averages, which lag the weights by hundreds of steps.
    precise_bn: bool = True
    init_from: str | None = None  # weights to start from: a run, a checkpoint, .keras, .weights.h5, .onnx, .safetensors
    reinit_mismatched: bool = False  # layers whose shapes differ from --init-from's start afresh (Keras skip_mismatch)
    freeze: str | None = None  # `LINE` or `@name`: that layer and every layer before it are not trained
    tensorboard_images: bool = False  # the first training batch in the TensorBoard events
    # Bytes the decoded images may take in memory before the data is streamed from disk (None: from
    # the host's and device's free memory); does not change what is trained, so it may change on resume.
    data_memory: int | None = None
    data_workers: int = 0  # Grain worker processes decoding a stream (0: threads in this process)

    def __post_init__(self) -> None:
        _at_least("--epochs", self.epochs, 1)
        _at_least("--batch-size", self.batch_size, 1)
        _at_least("--keep", self.keep_checkpoints, 1)
        _at_least("--checkpoint-every", self.checkpoint_every, 0)
        _at_least("--seed", self.seed, 0)
        _at_least("--data-workers", self.data_workers, 0)
        if self.data_memory is not None:
            _at_least("--data-memory", self.data_memory, 0)
        if self.seed >= SEED_LIMIT:
            raise UserError(f"`--seed` (={self.seed}) must be below 2**32 (={SEED_LIMIT:,})")
        if not self.lr > 0:
            raise UserError(f"`--lr` (={self.lr:g}) must be above 0")
        _choice("--optimizer", self.optimizer, OPTIMIZERS)
        _choice("--schedule", self.schedule, SCHEDULES)
        _choice("--precision", self.precision, PRECISIONS)
        _choice("--monitor", self.monitor, MONITORS)
        for kind in self.augment:
            _choice("--augment", kind, AUGMENTATIONS)
        if not 0 <= self.momentum < 1:
            raise UserError(f"`--momentum` (={self.momentum:g}) must be at least 0 and below 1")
        if not self.weight_decay >= 0:
            raise UserError(f"`--weight-decay` (={self.weight_decay:g}) must not be negative")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"`--label-smoothing` (={self.label_smoothing:g}) must be at least 0 and below 1")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise UserError(
                f"`--warmup-epochs` (={self.warmup_epochs:g}) must be between 0 and `--epochs` (={self.epochs})"
            )
        if not 0 <= self.val_split < 1:
            raise UserError(f"`--val-split` (={self.val_split:g}) must be at least 0 and below 1")
        if not 0 <= self.test_split < 1:
            raise UserError(f"`--test-split` (={self.test_split:g}) must be at least 0 and below 1")
        if self.reinit_mismatched and self.init_from is None:
            raise UserError("`--reinit-mismatched` needs `--init-from`: it says what to do with the weights loaded")
        if len(self.input_shape) != 3:
            raise UserError(
                f"training needs an image input HxWxC, but the spec's input is {shape_text(self.input_shape)}",
                hint="start the spec with `input HxWxC` or pass --input HxWxC",
            )

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["augment"] = list(self.augment)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {**LEGACY_DEFAULTS, **{k: v for k, v in data.items() if k in known}}
        values["input_shape"] = tuple(values["input_shape"])
        values["augment"] = tuple(values.get("augment", ()))
        return cls(**values)

    def differences(self, other: TrainConfig) -> list[str]:
        """The training settings `other` changes, as `--option: this → other` lines."""
        out = []
        for name in TRAINING_SETTINGS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine == theirs:
                continue
            if name == "spec_text":
                out.append("the spec's text differs")
            else:
                out.append(f"{option_name(name)}: {_show(mine)} → {_show(theirs)}")
        return out


def option_name(setting: str) -> str:
    """The CLI option that sets `setting` (`batch_size` → `--batch-size`)."""
    special = {"spec_text": "the spec", "input_shape": "--input", "keep_checkpoints": "--keep"}
    return special.get(setting, "--" + setting.replace("_", "-"))


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if all(isinstance(v, str) for v in value) else shape_text(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _at_least(option: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"`{option}` (={value}) must be a whole number, at least {minimum}")


def _choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"`{option}` must be one of {', '.join(choices)}; got `{value}`")
