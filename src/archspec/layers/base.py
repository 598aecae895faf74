"""What a layer kind is: its signature, and its shape, parameter, MAC, receptive-field and Flax rules.

Every layer kind lives in one small module of this package and registers itself with `@layer`.
Argument values arrive already evaluated (ints, floats, size tuples, words); each argument's type
converts and validates it once, so the rules below only ever see clean values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from archspec.text import describe_shape, show
from archspec.words import Word

Shape = tuple[int, ...]


class ArgError(Exception):
    """An argument value a layer cannot take; the caller adds the spec position."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ShapeError(Exception):
    """A layer cannot take its input's shape; the caller adds the spec position."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


REQUIRED = object()


@dataclass(frozen=True)
class Arg:
    """One argument of a layer: its name, how to convert a value, its default (already in converted
    form), whether it may be given by position."""

    name: str
    convert: Callable[[str, Any], Any]
    default: Any = REQUIRED
    positional: bool = False
    doc: str = ""


# --- argument types ------------------------------------------------------------------------


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgError(f"`{name}` must be a whole number, got `{show(value)}`")
    if isinstance(value, float):
        if not value.is_integer():
            raise ArgError(f"`{name}` must be a whole number, got {value:g}")
        value = int(value)
    return value


def positive(name: str, value: Any) -> int:
    number = _integer(name, value)
    if number < 1:
        raise ArgError(f"`{name}` (={number}) must be at least 1")
    return number


def non_negative(name: str, value: Any) -> int:
    number = _integer(name, value)
    if number < 0:
        raise ArgError(f"`{name}` (={number}) must not be negative")
    return number


def pair(name: str, value: Any) -> tuple[int, int]:
    """A size in two dimensions: `3` means 3x3, `3x5` is 3 high and 5 wide."""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ArgError(f"`{name}` must be N or HxW, got `{show(value)}`")
        return positive(name, value[0]), positive(name, value[1])
    number = positive(name, value)
    return number, number


def padding(name: str, value: Any) -> str | tuple[tuple[int, int], tuple[int, int]]:
    """`valid`, `same`, N (N on every side) or HxW (H above and below, W left and right)."""
    if isinstance(value, Word):
        if value.text in ("valid", "same"):
            return value.text
        raise ArgError(f"`{name}` must be valid, same, N or HxW, got `{value}`")
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ArgError(f"`{name}` must be valid, same, N or HxW, got `{show(value)}`")
        h, w = (non_negative(name, v) for v in value)
        return (h, h), (w, w)
    number = non_negative(name, value)
    return (number, number), (number, number)


def boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):  # a comparison's result: `bias=c > 64`
        return value
    if isinstance(value, Word) and value.text.lower() in ("true", "false"):
        return value.text.lower() == "true"
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    raise ArgError(f"`{name}` must be true or false, got `{show(value)}`")


def real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgError(f"`{name}` must be a number, got `{show(value)}`")
    return float(value)


def positive_real(name: str, value: Any) -> float:
    number = real(name, value)
    if number <= 0:
        raise ArgError(f"`{name}` (={number:g}) must be above 0")
    return number


def rate(name: str, value: Any) -> float:
    number = real(name, value)
    if not 0.0 <= number < 1.0:
        raise ArgError(f"`{name}` (={number:g}) must be at least 0 and below 1")
    return number


def fraction(name: str, value: Any) -> float:
    number = real(name, value)
    if not 0.0 <= number <= 1.0:
        raise ArgError(f"`{name}` (={number:g}) must be between 0 and 1")
    return number


# --- sizes ------------------------------------------------------------------------------


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, pad: str | tuple[int, int]) -> int:
    """One spatial dimension after a sliding window (convolution or pooling). Keras/XLA rules."""
    effective = dilation * (kernel - 1) + 1
    if pad == "same":
        return math.ceil(size / stride)
    low, high = (0, 0) if pad == "valid" else pad
    padded = size + low + high
    if padded < effective:
        return 0
    return (padded - effective) // stride + 1


def spatial(kind: str, shape: Shape) -> tuple[int, int, int]:
    """The (H, W, C) of an input a spatial layer needs, or a ShapeError naming the layer."""
    if len(shape) != 3:
        raise ShapeError(
            f"`{kind}` needs an HxWxC input, got {describe_shape(shape)}",
            hint="a `flatten`, `gap` or `dense` before it removed the spatial dimensions",
        )
    return shape  # type: ignore[return-value]


def window_fits(kind: str, shape: Shape, kernel: tuple[int, int], dilation: tuple[int, int], pad, what: str) -> None:
    """Refuse a window larger than its (padded) input, the classic shape error."""
    h, w, _ = shape
    pads = ((0, 0), (0, 0)) if pad in ("valid", "same") else pad
    if pad == "same":
        return
    need = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    have = (h + sum(pads[0]), w + sum(pads[1]))
    if have[0] < need[0] or have[1] < need[1]:
        padded = " (with padding)" if pad != "valid" else ""
        raise ShapeError(
            f"{what} needs at least {need[0]}x{need[1]} input, got {have[0]}x{have[1]}{padded}",
            hint="use `padding=same`, a smaller window, or fewer downsampling layers before it",
        )


# --- the layer kind --------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A sliding window for receptive-field arithmetic."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)


GLOBAL = "global"  # the layer sees its whole input: receptive field becomes the whole image


Family = Literal[
    "input", "conv", "dense", "pool", "global_pool", "norm", "activation", "reshape", "pad", "dropout", "merge"
]


class LayerKind:
    """One layer kind: its signature, its traits and its rules. Subclasses set the class attributes
    and override the rules they need. Summary, lint, the Flax model and training ask these traits;
    none of them keeps its own list of kinds."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""  # one line for the layer table of docs/spec-language.md (generated)
    family: ClassVar[Family]
    keras_name: ClassVar[str]  # the Keras class it counts like: the summary's type column
    args: ClassVar[tuple[Arg, ...]] = ()
    takes_suffix: ClassVar[bool] = False  # `conv 64 3 bn relu`: trailing bn / activation words
    trailing: ClassVar[bool] = False  # may itself be such a trailing word (`bn`, `relu`)
    # a kernel with an optional bias (every such kind takes `bias=`): conv, dense and their kin. Lint
    # counts these layers for depth, pairs and widths; BatchNorm, LayerNorm and layer scale hold
    # parameters but no kernel.
    has_kernel: ClassVar[bool] = False
    full_kernel: ClassVar[bool] = False  # a KxK kernel over every input channel of its group (conv, not dwconv)
    linear: ClassVar[bool] = False  # computes an affine map of its input (bn, avgpool, flatten, ...)
    width_arg: ClassVar[str | None] = None  # the argument that sets its output channels (`filters`, `units`)
    depthwise: ClassVar[bool] = False  # filters each channel on its own, mixing none
    probability_output: ClassVar[bool] = False  # outputs probabilities (softmax, sigmoid): the loss takes logits
    sums_to_one: ClassVar[bool] = False  # its outputs over the last axis sum to 1 (softmax)
    neighbour_channel_norm: ClassVar[bool] = False  # divides each value by its neighbouring channels' (lrn)
    residual: ClassVar[bool] = False  # a merge that adds its inputs: the shortcut of a residual block (add)
    idempotent: ClassVar[bool] = False  # applying it twice equals applying it once (relu)
    batch_statistics: ClassVar[bool] = False  # normalizes each channel with training-batch statistics (bn)

    def label(self, attrs: dict) -> str:
        """Short text for the summary's layer column: the kind and its key arguments."""
        shown = [show(attrs[a.name]) for a in self.args if a.positional]
        return " ".join([self.name, *shown])

    def output_shape(self, attrs: dict, inputs: list[Shape]) -> Shape:
        return inputs[0]

    def param_count(self, attrs: dict, inputs: list[Shape], output: Shape) -> tuple[int, int]:
        """(trainable, non-trainable), Keras conventions."""
        return 0, 0

    def macs(self, attrs: dict, inputs: list[Shape], output: Shape) -> int:
        return 0

    def window(self, attrs: dict) -> Window | str | None:
        """How the layer changes the receptive field: a Window, GLOBAL, or None (pointwise)."""
        return None

    def build(self, attrs: dict, inputs: list[Shape], output: Shape, rngs, dtype=None) -> Any:
        """The Flax NNX module holding this layer's variables, or None when it has none."""
        return None

    def apply(self, module: Any, attrs: dict, xs: list, *, train: bool) -> Any:
        """Run the layer in JAX on its inputs `xs` (batch first)."""
        raise NotImplementedError(self.name)


REGISTRY: dict[str, LayerKind] = {}


def layer(cls: type[LayerKind]) -> type[LayerKind]:
    """Class decorator: register a layer kind under `cls.name`."""
    REGISTRY[cls.name] = cls()
    return cls
