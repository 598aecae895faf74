"""Keras layer classes and their spec words: positional order, defaults, and how each argument reads
in the spec. The importer reads Keras calls through this table; tests check it against Keras itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archspec.layers import ACTIVATIONS
from archspec.layers.base import Untranslatable  # the one "cannot translate" error of every reader and writer

# Arguments that change how weights start or are penalised, never the architecture or the counts.
IGNORED = frozenset(
    {"name", "dtype", "trainable", "seed", "synchronized", "activity_regularizer"}
    | {
        f"{w}_{k}"
        for w in ("kernel", "bias", "depthwise", "pointwise", "beta", "gamma")
        for k in ("initializer", "regularizer", "constraint")
    }
    | {"moving_mean_initializer", "moving_variance_initializer"}
)

# Keras data-augmentation layers: identity at inference and without weights, so they add no spec line.
AUGMENTATION = frozenset(
    {"RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness"}
)

ALIASES = {
    "MaxPool2D": "MaxPooling2D",
    "AvgPool2D": "AveragePooling2D",
    "AveragePool2D": "AveragePooling2D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
    "Convolution2D": "Conv2D",
    "SeparableConvolution2D": "SeparableConv2D",
}

# Keras activation names the spec spells differently.
ACTIVATION_NAMES = {"hard_silu": "hard_swish", "hard_swish": "hard_swish", "swish": "swish"}


def dims(argument: str, value: Any, size: int = 2) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * size
    if isinstance(value, (tuple, list)) and len(value) == size and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise Untranslatable(argument, f"`{argument}` must be an integer or a tuple of {size}, got `{value!r}`")


def size_text(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def activation_word(argument: str, value: Any) -> str | None:
    """The spec word for a Keras activation (`"relu"`, `keras.activations.relu`), None for linear."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Untranslatable(argument, f"`{argument}` must be an activation name, got `{value!r}`")
    name = ACTIVATION_NAMES.get(value, value)
    if name == "linear":
        return None
    if name not in ACTIVATIONS:
        raise Untranslatable(
            argument,
            f"activation `{value}` has no spec equivalent",
            hint="activations: " + ", ".join(a for a in ACTIVATIONS if a != "linear"),
        )
    return name


def _channels_last(args: dict) -> None:
    if args.get("data_format") not in (None, "channels_last"):
        raise Untranslatable("data_format", "the spec is channels-last; `data_format` must be channels_last")


def _padding(args: dict) -> str | None:
    value = args.get("padding", "valid")
    if not isinstance(value, str) or value.lower() not in ("valid", "same"):
        raise Untranslatable("padding", f'`padding` must be "valid" or "same", got `{value!r}`')
    return "padding=same" if value.lower() == "same" else None


def _bias(args: dict) -> str | None:
    value = args.get("use_bias", True)
    if not isinstance(value, bool):
        raise Untranslatable("use_bias", f"`use_bias` must be True or False, got `{value!r}`")
    return None if value else "bias=false"


def _number(args: dict, argument: str, default: Any) -> Any:
    value = args.get(argument, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Untranslatable(argument, f"`{argument}` must be a number, got `{value!r}`")
    return value


def _sliding(args: dict, word: str, head: list[str], multiplier: bool = False, groups: bool = False) -> str:
    _channels_last(args)
    parts = [word, *head]
    strides = dims("strides", args.get("strides", 1))
    if strides != (1, 1):
        parts.append(f"stride={size_text(strides)}")
    parts.append(_padding(args))
    dilation = dims("dilation_rate", args.get("dilation_rate", 1))
    if dilation != (1, 1):
        parts.append(f"dilation={size_text(dilation)}")
    if groups and _number(args, "groups", 1) != 1:
        parts.append(f"groups={args['groups']}")
    if multiplier and _number(args, "depth_multiplier", 1) != 1:
        parts.append(f"multiplier={args['depth_multiplier']}")
    parts.append(_bias(args))
    parts.append(activation_word("activation", args.get("activation")))
    return " ".join(p for p in parts if p)


def _positive(args: dict, argument: str) -> int:
    value = args.get(argument)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Untranslatable(argument, f"`{argument}` must be a positive integer, got `{value!r}`")
    return value


def conv(args):
    kernel = size_text(dims("kernel_size", args.get("kernel_size")))
    return _sliding(args, "conv", [str(_positive(args, "filters")), kernel], groups=True)


def dwconv(args):
    return _sliding(args, "dwconv", [size_text(dims("kernel_size", args.get("kernel_size")))], multiplier=True)


def sepconv(args):
    kernel = size_text(dims("kernel_size", args.get("kernel_size")))
    return _sliding(args, "sepconv", [str(_positive(args, "filters")), kernel], multiplier=True)


def dense(args):
    parts = ["dense", str(_positive(args, "units")), _bias(args), activation_word("activation", args.get("activation"))]
    return " ".join(p for p in parts if p)


def _pool(word: str):
    def translate(args):
        _channels_last(args)
        size = dims("pool_size", args.get("pool_size", 2))
        parts = [word, size_text(size)]
        strides = args.get("strides")
        if strides is not None and dims("strides", strides) != size:
            parts.append(f"stride={size_text(dims('strides', strides))}")
        parts.append(_padding(args))
        return " ".join(p for p in parts if p)

    return translate


def _global(word: str):
    def translate(args):
        _channels_last(args)
        return word + (" keepdims=true" if args.get("keepdims", False) is True else "")

    return translate


def flatten(args):
    _channels_last(args)
    return "flatten"


def dropout(args):
    if args.get("noise_shape") is not None:
        raise Untranslatable("noise_shape", "dropout with a `noise_shape` has no spec equivalent")
    return f"dropout {_number(args, 'rate', None):g}"


def batchnorm(args):
    if args.get("axis", -1) not in (-1, 3):
        raise Untranslatable("axis", "the spec normalizes the channel axis; `axis` must be -1")
    if args.get("renorm", False):
        raise Untranslatable("renorm", "batch renormalization has no spec equivalent")
    parts = ["bn"]
    for argument, default in (("momentum", 0.99), ("epsilon", 1e-3)):
        value = _number(args, argument, default)
        if value != default:
            parts.append(f"{argument}={value!r}")
    for argument in ("center", "scale"):
        if args.get(argument, True) is False:
            parts.append(f"{argument}=false")
    return " ".join(parts)


def activation(args):
    word = activation_word("activation", args.get("activation"))
    return word or "linear"


def relu(args):
    cap, slope, threshold = args.get("max_value"), args.get("negative_slope", 0.0), args.get("threshold", 0.0)
    if slope == 0.0 and threshold == 0.0 and cap in (None, 6, 6.0):
        return "relu" if cap is None else "relu6"
    raise Untranslatable(None, "only ReLU() and ReLU(max_value=6) have spec equivalents (`relu`, `relu6`)")


def leaky_relu(args):
    slope = args.get("negative_slope", args.get("alpha", 0.3))  # `alpha` in tf.keras 2
    return f"leaky_relu {_number({'negative_slope': slope}, 'negative_slope', 0.3)!r}"


def softmax(args):
    if args.get("axis", -1) != -1:
        raise Untranslatable("axis", "the spec's softmax is over the last axis; `axis` must be -1")
    return "softmax"


def zeropad(args):
    _channels_last(args)
    value = args.get("padding", 1)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"zeropad {value}"
    if isinstance(value, (tuple, list)) and len(value) == 2:
        if all(isinstance(v, int) for v in value):
            return f"zeropad {size_text(tuple(value))}" if value[0] == value[1] else f"zeropad {value[0]}x{value[1]}"
        (top, bottom), (left, right) = (dims("padding", v) for v in value)
        return f"zeropad {top}x{bottom}x{left}x{right}"
    raise Untranslatable("padding", f"`padding` must be an integer or tuple, got `{value!r}`")


def rescaling(args):
    scale, offset = _number(args, "scale", None), _number(args, "offset", 0.0)
    inverse = 1 / scale if scale else 0
    if inverse and abs(inverse - round(inverse)) < 1e-9 * inverse:  # 1.0 / 255 reads `1/255`
        return f"rescale 1/{round(inverse)}" + (f" offset={offset!r}" if offset else "")
    return f"rescale {scale!r}" + (f" offset={offset!r}" if offset else "")


def concatenate(args):
    if args.get("axis", -1) not in (-1, 3):
        raise Untranslatable("axis", "the spec concatenates channels; `axis` must be -1")
    return "concat"


# Keras class -> (positional parameter names in Keras' order, translation to one spec line).
LAYERS: dict[str, tuple[tuple[str, ...], Callable[[dict], str]]] = {
    "Conv2D": (
        (
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "data_format",
            "dilation_rate",
            "groups",
            "activation",
            "use_bias",
        ),
        conv,
    ),
    "DepthwiseConv2D": (
        (
            "kernel_size",
            "strides",
            "padding",
            "depth_multiplier",
            "data_format",
            "dilation_rate",
            "activation",
            "use_bias",
        ),
        dwconv,
    ),
    "SeparableConv2D": (
        (
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "data_format",
            "dilation_rate",
            "depth_multiplier",
            "activation",
            "use_bias",
        ),
        sepconv,
    ),
    "Dense": (("units", "activation", "use_bias"), dense),
    "MaxPooling2D": (("pool_size", "strides", "padding", "data_format"), _pool("maxpool")),
    "AveragePooling2D": (("pool_size", "strides", "padding", "data_format"), _pool("avgpool")),
    "GlobalAveragePooling2D": (("data_format", "keepdims"), _global("gap")),
    "GlobalMaxPooling2D": (("data_format", "keepdims"), _global("gmp")),
    "Flatten": (("data_format",), flatten),
    "Dropout": (("rate", "noise_shape", "seed"), dropout),
    "BatchNormalization": (("axis", "momentum", "epsilon", "center", "scale"), batchnorm),
    "Activation": (("activation",), activation),
    "ReLU": (("max_value", "negative_slope", "threshold"), relu),
    "LeakyReLU": (("negative_slope",), leaky_relu),
    "Softmax": (("axis",), softmax),
    "ZeroPadding2D": (("padding", "data_format"), zeropad),
    "Rescaling": (("scale", "offset"), rescaling),
    "Add": ((), lambda args: "add"),
    "Multiply": ((), lambda args: "multiply"),
    "Concatenate": (("axis",), concatenate),
}
MERGES = {"Add": "add", "Multiply": "multiply", "Concatenate": "concat"}
# Keras' functional spellings of the merges: `layers.add([a, b])`.
MERGE_FUNCTIONS = {"add": "Add", "multiply": "Multiply", "concatenate": "Concatenate"}
