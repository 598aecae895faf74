"""What a layer kind is: its signature, and its shape, parameter, MAC, receptive-field and Flax rules,
and its interop facts: its spec text, how it is written as Keras, PyTorch and Flax code, and how a
Keras layer or an ONNX node reads back into it (the contract: /work/wt/INTEROP.md, docs/interop.md).

Every layer kind lives in one small module of this package and registers itself with `@layer`.
Argument values arrive already evaluated (ints, floats, size tuples, words); each argument's type
converts and validates it once, so the rules below only ever see clean values.
"""

from __future__ import annotations

import math
import re
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


class Untranslatable(Exception):
    """A value a reader or writer cannot translate (a Keras argument, an ONNX attribute, a layer a
    framework lacks). `argument` names it (None: the layer as a whole); the caller adds the position
    (spec line, Python line and column, Keras layer name or ONNX node)."""

    def __init__(self, argument: str | None, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.message = message
        self.hint = hint


REQUIRED = object()


@dataclass(frozen=True)
class Arg:
    """One argument of a layer: its name, how to convert a value, its default (already in converted
    form), whether it may be given by position, and how a converted value is written back as spec
    text (None: by its type, see `value_text`)."""

    name: str
    convert: Callable[[str, Any], Any]
    default: Any = REQUIRED
    positional: bool = False
    doc: str = ""
    text: Callable[[Any], str] | None = None


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


# --- spec text: converted values written back ------------------------------------------------


def value_text(value: Any) -> str:
    """A converted value as the spec writes it, so that reading it back gives the same value: `3`,
    `0.001` and `1e-06` (floats by `repr`, exact), `true`, `same`, `224x224x3`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return "x".join(value_text(v) for v in value)
    return str(value)  # int, Word, or a word kept as str (`nearest`)


def pair_text(value: tuple[int, int]) -> str:
    """`3` for (3, 3), `3x5` otherwise."""
    return value_text(value[0]) if value[0] == value[1] else value_text(value)


def padding_text(value) -> str:
    """`valid`, `same`, `N` or `HxW`: the inverse of `padding`."""
    if isinstance(value, str):
        return value
    (top, _), (left, _) = value
    return str(top) if top == left else f"{top}x{left}"


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


# --- weights as other frameworks store them --------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """One array of a layer as another framework stores it (`LayerKind.keras_weights` and the other
    tables): the Flax array it becomes (`kernel`, or dotted in a module of modules:
    `depthwise.kernel`), `convert` from the framework's layout to Flax's, `needs` the switch without
    which the framework leaves it out (Keras: the config key, `use_bias`; PyTorch and ONNX: the array
    may be missing), its `rank` where the rank tells modules apart (a PyTorch conv's 4-D `weight`,
    a Linear's 2-D one), and `features`: its axis (in Flax's layout) that runs over the layer's input
    features, which a channels-first framework orders otherwise after a flatten (see `order`)."""

    flax: str
    convert: Callable[[Any], Any] = lambda array: array  # already Flax's layout
    needs: str | None = None
    rank: int | None = None
    features: int | None = None


def hwio(array):
    """PyTorch's and ONNX's convolution kernel (out, in/groups, kh, kw) as Flax's (kh, kw, in/groups,
    out); a transposed convolution's (in, out, kh, kw) as Flax's transpose_kernel (kh, kw, out, in)."""
    return array.transpose(2, 3, 1, 0)


def in_out(array):
    """PyTorch's Linear weight and ONNX Gemm's B with transB=1, (out, in), as Flax's (in, out)."""
    return array.T


def vector(array):
    """A per-channel array stored with broadcast axes ((C, 1, 1): torchvision's layer scale) as (C,)."""
    return array.reshape(-1)


def keras_depthwise(array):
    """Keras' depthwise kernel (kh, kw, channels, multiplier) as Flax's (kh, kw, 1, channels x
    multiplier): output channel c x multiplier + m in both."""
    kh, kw, channels, multiplier = array.shape
    return array.reshape(kh, kw, 1, channels * multiplier)


def flattened_order(height: int, width: int, channels: int):
    """The input features of an (H, W, C) image flattened as the spec does (height first), each as
    its index where a channels-first framework flattens (C, H, W)."""
    import numpy as np

    return np.arange(channels * height * width).reshape(channels, height, width).transpose(1, 2, 0).reshape(-1)


def reorder(array, order, axis: int | None):
    """`array` with its `axis` over the input features in the spec's order (`order`: see
    `flattened_order`); unchanged without an order or an axis, or where the axis is not that long."""
    if order is None or axis is None or array.shape[axis] != len(order):
        return array
    return array.take(order, axis=axis)


def keras_snake_case(class_name: str) -> str:
    """Keras' own snake case of a class name (`DepthwiseConv2D` -> `depthwise_conv2d`), as its
    `.weights.h5` files name layer groups."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


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
    # Interop. A framework that cannot express the kind names it here with the reason (keys: FRAMEWORKS);
    # every other framework's methods below are overridden. tests/interop/test_kind_registry.py checks.
    refusals: ClassVar[dict[str, str]] = {}
    keras_classes: ClassVar[tuple[str, ...]] = ()  # the Keras classes `read_keras` reads (aliases too)
    # The positional parameters of those classes' constructors, in Keras' order (the source reader
    # names positional arguments with them; a test compares them with Keras' signatures).
    keras_positional: ClassVar[tuple[str, ...]] = ()
    onnx_ops: ClassVar[tuple[str, ...]] = ()  # the ONNX op types `read_onnx` reads (a pattern's first op)

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

    # --- interop: spec text ------------------------------------------------------------------------

    def spec_text(self, attrs: dict) -> str:
        """The node's canonical spec line, the inverse of binding its arguments: positional arguments
        (the trailing ones left out while they are defaults), then the keywords that are not defaults.
        Reading it back gives `attrs` again."""
        positional = [a for a in self.args if a.positional]
        while positional and attrs[positional[-1].name] == positional[-1].default:
            positional.pop()
        parts = [self.name, *(_arg_text(a, attrs[a.name]) for a in positional)]
        for arg in self.args:
            if not arg.positional and attrs[arg.name] != arg.default:
                parts.append(f"{arg.name}={_arg_text(arg, attrs[arg.name])}")
        return " ".join(parts)

    # --- interop: writing code ---------------------------------------------------------------------
    # `attrs` and `inputs`/`output` (spec shapes, channels last, no batch) hold plain values, or, in
    # a macro written as a function, values that differ between its calls: those render as Python
    # expressions through `python()`, and deciding on one raises `Varies` (see `differs`).
    # Each returns the layer as a sequence of `Module` / `Op` steps, applied in order.

    def keras_code(self, attrs: dict, inputs: list[Shape], output: Shape) -> list[Module | Op]:
        """The layer as Keras 3 code (`layers.Conv2D(...)`, functional API)."""
        raise self.missing("keras", "Keras code")

    def pytorch_code(self, attrs: dict, inputs: list[Shape], output: Shape) -> list[Module | Op]:
        """The layer as PyTorch code on NCHW tensors (`nn.Conv2d(...)`, `F.relu({0})`)."""
        raise self.missing("pytorch", "PyTorch code")

    def flax_code(self, attrs: dict, inputs: list[Shape], output: Shape) -> list[Module | Op]:
        """The layer as Flax NNX code on NHWC arrays (`nnx.Conv(..., rngs=rngs)`, `jax.nn.relu({0})`)."""
        raise self.missing("flax", "Flax code")

    # --- interop: reading ----------------------------------------------------------------------------
    # Readers return the nodes a foreign layer becomes, in order, as (kind, attrs) with attrs in the
    # converted form `Arg.convert` gives (a Conv2D with `activation="relu"` is a conv node and a relu
    # node). A value the kind cannot take raises `Untranslatable` naming the foreign argument.

    def read_keras(self, class_name: str, config: dict[str, Any], inputs: list[Shape]) -> list[ReadNode]:
        """The nodes Keras layer `class_name` (one of `keras_classes`) with `config` becomes. `config`
        is the layer's config as saved in a model's config.json, or its keyword arguments in Keras
        source with positional ones named; `inputs` are the input shapes (no batch)."""
        raise self.missing("keras", "Keras reader")

    def keras_parameters(self, class_name: str) -> tuple[str, ...]:
        """The positional parameters of Keras class `class_name`'s constructor (one of `keras_classes`)."""
        return self.keras_positional

    def read_onnx(self, node: OnnxNode, inputs: list[Shape]) -> list[ReadNode]:
        """The nodes ONNX `node` (its op type one of `onnx_ops`) becomes; `inputs` are the spec shapes
        (channels last, no batch) of its tensor inputs."""
        raise self.missing("onnx", "ONNX reader")

    def missing(self, framework: str, what: str) -> Untranslatable:
        """The refusal to translate this kind for `framework`: the reason its module records, or
        (a gap the registry test reports) that nobody wrote it yet."""
        return Untranslatable(None, self.refusals.get(framework) or f"`{self.name}` has no {what} yet")

    # --- interop: weights ----------------------------------------------------------------------------
    # How other frameworks store the kind's weights, for `--init-from` (archspec/train/pretrained.py,
    # which reads the files and matches layers; the kind says what a foreign layer's arrays are).
    # `variables` are the kind's Flax arrays (dotted paths in its module, in the order Keras stores
    # them); the tables say where each framework keeps each of them (`Stored`), and the three methods
    # below read one foreign layer through them: the arrays in Flax's names and layouts, or None when
    # the layer is not one of this kind's. Override a method for what a table cannot say. A kind with
    # variables has each framework's table or method, or its `refusals` names the framework (a refused
    # framework's weights are refused too): tests/interop/test_kind_registry.py checks.
    variables: ClassVar[tuple[str, ...]] = ()
    # Keras class (as config.json names it) -> its arrays in the order Keras stores them (`vars/0`, ...).
    keras_weights: ClassVar[dict[str, tuple[Stored, ...]]] = {}
    # PyTorch: parameter or buffer name -> array, one dict per module the kind's arrays come from, in
    # order (a separable convolution is two modules; a spec `bn(scale=false)` written as PyTorch code is a
    # BatchNorm without affine and a `ChannelAffine` after it). Integer buffers (BatchNorm's step count)
    # are no weights and never reach the kind.
    pytorch_weights: ClassVar[tuple[dict[str, Stored], ...]] = ()
    # ONNX op type -> input position -> array, for inputs that are initializers; the key "added" is the
    # initializer of an `Add` right after the node (a bias added apart: PyTorch's Linear on an image).
    onnx_weights: ClassVar[dict[str, dict[int | str, Stored]]] = {}
    # ONNX op types an exporter folds the kind into when it reads one's output alone (torch.onnx folds an
    # eval-mode BatchNorm into the `Conv` before it): the file then has no node of the kind, and the
    # layer starts with `folded_weights`.
    folds_into: ClassVar[frozenset[str]] = frozenset()

    def folded_weights(self, attrs: dict, shapes: dict[str, tuple], shift=None) -> dict[str, Any] | None:
        """The arrays (of `shapes`, by Flax name) with which the layer passes its input on unchanged at
        inference, adding `shift` (a vector: the bias the exporter gave the layer before, where the
        spec's has none); None where no arrays do. For the kinds of `folds_into`."""
        return None

    def weights_from_keras(self, class_name: str, config: dict | None, arrays: list) -> dict[str, Any] | None:
        """The Flax arrays of Keras layer `class_name` (as config.json names it, or in the snake case a
        bare `.weights.h5` names its group) storing `arrays` in order. Without its `config` (a bare
        `.weights.h5`), optional arrays are told apart by their count, the table's first optional one
        missing first (a BatchNormalization of 3 arrays has no scale)."""
        row = self.keras_weights.get(class_name)
        if row is None:
            row = next((r for name, r in self.keras_weights.items() if keras_snake_case(name) == class_name), None)
        if row is None:
            return None
        if config is not None:
            present = [s for s in row if s.needs is None or config.get(s.needs, True)]
        else:
            present = list(row)
            for optional in [s for s in row if s.needs is not None]:
                if len(present) > len(arrays):
                    present.remove(optional)
        if len(present) != len(arrays):
            return None
        return {s.flax: s.convert(array) for s, array in zip(present, arrays)}

    # `order`, for the channels-first frameworks: where the layer's input is an image flattened into a
    # vector (perhaps through per-feature layers: BatchNorm, dropout), the framework flattened it
    # channels first (C, H, W) and the spec height first (H, W, C); `order[i]` is the framework's
    # index of the spec's input feature i (`flattened_order`), and arrays with `features` take it.

    def weights_from_pytorch(self, part: int, arrays: dict[str, Any], order=None) -> dict[str, Any] | None:
        """The Flax arrays that module `part` of `pytorch_weights` holds, given one module's float
        parameters and buffers by name (`weight`, `running_mean`): None when they are not that module's."""
        if part >= len(self.pytorch_weights):
            return None
        return _read_table(self.pytorch_weights[part], arrays, order)

    def weights_from_onnx(self, node: OnnxNode, order=None) -> dict[str, Any] | None:
        """The Flax arrays of ONNX `node` (its initializers in `constants` at the positions `learned`;
        `fused`: the one node reading its output, if any); `order` where the file flattened an NCHW
        image on the way to it."""
        table = self.onnx_weights.get(node.op_type)
        if table is None:
            return None
        stored: dict[int | str, Any] = {position: node.constants[position] for position in node.learned}
        added = node.fused[0] if node.fused and node.fused[0].op_type == "Add" else None
        own = {table[position].flax for position in stored if position in table}
        if "added" in table and added is not None and len(added.learned) == 1 and table["added"].flax not in own:
            stored["added"] = added.constants[added.learned[0]]
        return _read_table(table, stored, order)


def _read_table(table: dict, stored: dict, order=None) -> dict[str, Any] | None:
    """`stored` (a foreign layer's arrays by the framework's keys) read by a `Stored` table: None
    unless every array is the table's (of its rank) and every array the kind always has is there.
    `order`: the input features' order (see `LayerKind.weights_from_pytorch`)."""
    arrays: dict[str, Any] = {}
    for key, array in stored.items():
        entry = table.get(key)
        if entry is None or (entry.rank is not None and len(array.shape) != entry.rank) or entry.flax in arrays:
            return None
        arrays[entry.flax] = reorder(entry.convert(array), order, entry.features)
    if not arrays or any(entry.needs is None and entry.flax not in arrays for entry in table.values()):
        return None
    return arrays


def _arg_text(arg: Arg, value: Any) -> str:
    if arg.text is not None:
        return arg.text(value)
    return {pair: pair_text, padding: padding_text}.get(arg.convert, value_text)(value)


# --- interop: the forms readers and writers exchange ---------------------------------------------

FRAMEWORKS = ("keras", "onnx", "pytorch", "flax")  # the keys of `LayerKind.refusals`

ReadNode = tuple[str, dict[str, Any]]  # (kind name, converted attrs): what a reader makes of a layer


@dataclass(frozen=True)
class OnnxNode:
    """One ONNX node as the ONNX reader hands it to a kind: its op type, its attributes as Python
    values, the value of each constant input (None where the input is computed), and the nodes the
    reader's pattern fused after it (`Sigmoid` then `Mul` is SiLU).

    `dims` are the ONNX dims of each input, weights included (batch first, in the file's layout; None
    for an optional input left out), `out_dims` those of each output, `streams` the positions of the
    inputs computed from the image, `learned` those that are parameters of the file (initializers, not
    constants written as nodes). `layout` says which axis of the spec's tensor (0 the batch, then
    height, width, channels) each ONNX axis of the first computed input is: (0, 3, 1, 2) for NCHW.
    Helpers: `archspec.layers.onnx_attrs`."""

    op_type: str
    attributes: dict[str, Any]
    constants: tuple[Any, ...] = ()
    name: str = ""
    fused: tuple[OnnxNode, ...] = ()
    dims: tuple[tuple[int, ...] | None, ...] = ()
    out_dims: tuple[tuple[int, ...], ...] = ()
    layout: tuple[int, ...] = ()
    streams: tuple[int, ...] = ()  # the positions of the inputs computed from the image (not weights)
    learned: tuple[int, ...] = ()  # the positions of the inputs that are the file's parameters (initializers)


@dataclass(frozen=True)
class Module:
    """A step of written code that builds a layer object once, `create`, and applies it to the
    step's inputs as `apply` says: `{m}` the object, `{0}`, `{1}`, ... the inputs. `helpers` are
    the sources of classes or functions `create` needs the written file to define."""

    create: str
    apply: str = "{m}({0})"
    helpers: tuple[str, ...] = ()
    name: str = ""  # what to call the object (`self.depthwise`); default: the kind's name


@dataclass(frozen=True)
class Op:
    """A step of written code that is a function of the inputs, `{0}`, `{1}`, ...: `F.relu({0})`."""

    expression: str
    helpers: tuple[str, ...] = ()


class Varies(Exception):
    """A writer's decision depends on a value that differs between the calls of a macro written as
    one function; the writer then decides at run time, or refuses at the spec line."""


class Code(str):
    """Python source to insert as it is (`x.shape[-1]`), where `python()` would quote a string."""


def python(value: Any) -> str:
    """A value as Python source: `3`, `0.001`, `True`, `"same"`, `(1, 2)`; a value that differs
    between the calls of a macro renders as its expression (`4 * f`)."""
    if hasattr(value, "python_text"):
        return value.python_text()
    if isinstance(value, Code):
        return str(value)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, Word):
        return f'"{value.text}"'
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "(" + ", ".join(python(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def square(value: tuple) -> str:
    """A size pair as Python: `3` when square (every framework takes an int), else `(3, 5)`."""
    return python(value[0]) if holds(lambda: value[0] == value[1]) else python(value)


def holds(test: Callable[[], Any]) -> bool:
    """Whether `test()` is true for every call of a macro (False where the calls disagree): for a
    choice of spelling, where the general spelling is always right."""
    try:
        return bool(test())
    except Varies:
        return False


def is_a(value: Any, types: type | tuple[type, ...]) -> bool:
    """`isinstance` for a value that may differ between calls (they must agree on its type)."""
    if hasattr(value, "values") and hasattr(value, "agreed"):
        answers = {isinstance(v, types) for v in value.values}
        if len(answers) != 1:
            raise Varies("a value is a word in some calls and a number in others")
        return answers.pop()
    return isinstance(value, types)


def upper(word: Any) -> Any:
    """A word in capitals (Flax's `"SAME"`), also one that differs between calls."""
    return Code(f"{python(word)}.upper()") if hasattr(word, "agreed") else word.upper()


def differs(value: Any, default: Any) -> bool:
    """Whether a keyword must be written: `value` is not `default` (for some call of a macro)."""
    try:
        return bool(value != default)
    except Varies:
        return True


def settled(value: Any) -> Any:
    """`value` as a plain value where every call of a macro agrees on it (a padding worked out from
    sizes that differ but give the same answer), so code does not compute what it can just say."""
    if hasattr(value, "agreed"):
        try:
            return value.agreed()
        except Varies:
            return value
    if isinstance(value, tuple):
        return tuple(settled(v) for v in value)
    return value


def call(function: str, *args: Any, **kwargs: Any) -> str:
    """`function(a, b, k=v)` with values through `python()`; keywords whose value is None are left out."""
    parts = [python(a) for a in args] + [f"{k}={python(v)}" for k, v in kwargs.items() if v is not None]
    return f"{function}({', '.join(parts)})"


def size_keyword(value: tuple, default: tuple) -> Code | None:
    """A size pair for `call()` (`2`, `(2, 1)`) when it must be written, None when it is `default`."""
    return Code(square(value)) if differs(value, default) else None


def keyword(value: Any, default: Any) -> Any:
    """`value` for `call()` when it must be written, None (left out) when it is the default."""
    return value if differs(value, default) else None


REGISTRY: dict[str, LayerKind] = {}


def layer(cls: type[LayerKind]) -> type[LayerKind]:
    """Class decorator: register a layer kind under `cls.name`."""
    REGISTRY[cls.name] = cls()
    return cls
