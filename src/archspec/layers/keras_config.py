"""Keras layer configs read into spec attrs: what the kinds' `read_keras` share (holds no kind).

A config is a layer's config as Keras saves it (`config.json`, `model_config`) or its keyword
arguments in Keras source with the positional ones named; both spell values as Python/JSON does
(lists for tuples, strings for words). A config key that changes the network and that the kind
cannot say is refused by name (`Untranslatable`), never dropped.
"""

from __future__ import annotations

from typing import Any

from archspec.layers.base import REGISTRY, REQUIRED, ArgError, LayerKind, ReadNode, Untranslatable
from archspec.words import Word

# Keys that never change what the network computes at inference or how many parameters it has.
NEUTRAL = frozenset(
    {"name", "trainable", "dtype", "seed", "autocast", "synchronized", "activity_regularizer", "input_dim"}
)
NEUTRAL_ENDINGS = ("_initializer", "_regularizer", "_constraint")


def is_neutral(key: str) -> bool:
    return key in NEUTRAL or key.endswith(NEUTRAL_ENDINGS)


def check_keys(config: dict[str, Any], read: tuple[str, ...]) -> None:
    """Refuse a key the kind does not read, unless it is neutral or switched off (None, False, empty:
    Keras' spelling of an unused feature, like `lora_rank=None` or `renorm=False`)."""
    for key, value in config.items():
        if key in read or is_neutral(key) or value is None or value is False or value in ((), [], {}):
            continue
        raise Untranslatable(key, f"`{key}={show(value)}` has no spec equivalent")


def show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return repr(tuple(value) if isinstance(value, list) else value)


def plain(value: Any) -> Any:
    """JSON lists as tuples (nested too), so sizes compare and convert as the spec's values."""
    if isinstance(value, list):
        return tuple(plain(v) for v in value)
    return value


def bind(kind: LayerKind, values: dict[str, Any], keys: dict[str, str] | None = None) -> dict[str, Any]:
    """The kind's attrs from raw values by spec argument name (defaults for the rest), each converted
    by the kind's own argument type; an error names the Keras key in `keys` (spec name -> Keras key)."""
    keys = keys or {}
    attrs = {}
    for arg in kind.args:
        key = keys.get(arg.name, arg.name)
        if values.get(arg.name) is None:
            if arg.default is REQUIRED:
                raise Untranslatable(key, f"`{key}` is required")
            attrs[arg.name] = arg.default
            continue
        value = plain(values[arg.name])
        try:
            attrs[arg.name] = arg.convert(key, Word(value) if isinstance(value, str) else value)
        except ArgError as error:
            raise Untranslatable(key, error.message, error.hint) from None
    return attrs


def size(config: dict[str, Any], key: str, default: Any = None) -> Any:
    """A Keras size (`3`, `[3, 3]`) as the spec's: an int stays, a square pair becomes its side."""
    value = plain(config.get(key, default))
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        return value[0]
    if (value is not None and not isinstance(value, (int, tuple))) or isinstance(value, bool):
        raise Untranslatable(key, f"`{key}` must be an integer or a pair of integers, got {show(value)}")
    return value


def channels_last(config: dict[str, Any]) -> None:
    if config.get("data_format") not in (None, "channels_last"):
        raise Untranslatable(
            "data_format",
            f"`data_format={show(config['data_format'])}`: the spec is channels-last",
            hint="the spec's shapes are HxWxC; a channels_first model reads as the same layers with channels_last",
        )


def channel_axis(config: dict[str, Any], key: str, rank: int) -> None:
    """Refuse an axis other than the channels (the last one) for an input of `rank` (no batch)."""
    axis = plain(config.get(key, -1))
    if isinstance(axis, tuple) and len(axis) == 1:
        axis = axis[0]
    if axis not in (-1, rank):
        raise Untranslatable(key, f"`{key}={show(axis)}`: the spec works on the channels (the last axis)")


def padding(config: dict[str, Any]) -> str:
    value = config.get("padding", "valid")
    if not isinstance(value, str) or value.lower() not in ("valid", "same"):
        raise Untranslatable("padding", f'`padding` must be "valid" or "same", got {show(value)}')
    return value.lower()


# Keras activation names (as saved, or as strings in source) and their spec kinds, where they differ.
ACTIVATION_ALIASES = {"hard_silu": "hard_swish", "swish": "swish", "silu": "silu", "relu6": "relu6"}
KERAS_LEAKY_SLOPE = 0.2  # keras.activations.leaky_relu's default (the spec's `leaky_relu` says 0.01)


def activation(config: dict[str, Any], key: str = "activation") -> list[ReadNode]:
    """The nodes a Keras `activation=` adds after its layer: none for linear."""
    value = config.get(key)
    if isinstance(value, dict) and isinstance(value.get("config"), str):  # a serialized function
        value = value["config"]
    if value is None:
        return []
    if not isinstance(value, str):
        raise Untranslatable(key, f"`{key}` must be an activation name, got {show(value)}")
    name = ACTIVATION_ALIASES.get(value, value)
    if name == "linear":
        return []
    if name == "leaky_relu":
        return [("leaky_relu", {"slope": KERAS_LEAKY_SLOPE})]
    kind = REGISTRY.get(name)
    if kind is None or kind.family != "activation" or kind.args:
        names = sorted(n for n, k in REGISTRY.items() if k.family == "activation" and n != "linear")
        raise Untranslatable(
            key, f"activation {show(value)} has no spec equivalent", hint="activations: " + ", ".join(names)
        )
    return [(name, {})]


def sides(config: dict[str, Any], key: str, default: Any) -> tuple[int, int, int, int]:
    """Keras padding or cropping (`1`, `(1, 2)`, `((1, 2), (3, 4))`) as (top, bottom, left, right)."""
    value = plain(config.get(key, default))
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value, value, value
    if isinstance(value, tuple) and len(value) == 2:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return value[0], value[0], value[1], value[1]
        if all(isinstance(v, tuple) and len(v) == 2 for v in value):
            (top, bottom), (left, right) = value
            return top, bottom, left, right
    raise Untranslatable(key, f"`{key}` must be N, (H, W) or ((top, bottom), (left, right)), got {show(value)}")
