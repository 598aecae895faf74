"""Moving channels, ShuffleNet's two tools: `channels A:B` keeps a range of channels (one half of a
channel split) and `shuffle G` interleaves G channel groups (ShuffleNet's channel shuffle)."""

from __future__ import annotations

from archspec.layers import keras_config
from archspec.layers.base import Arg, ArgError, LayerKind, ShapeError, Untranslatable, layer, non_negative, positive
from archspec.text import describe_shape, show
from archspec.words import Interval


def _interval(name: str, value) -> tuple[int, int]:
    if not isinstance(value, Interval):
        raise ArgError(f"`{name}` must be a range A:B, got `{show(value)}`", hint="e.g. `channels 0:32`")
    start, stop = non_negative(name, value.start), non_negative(name, value.stop)
    if stop <= start:
        raise ArgError(f"the range `{start}:{stop}` is empty", hint="the end comes after the start: `channels 0:32`")
    return start, stop


@layer
class Channels(LayerKind):
    name = "channels"
    family = "reshape"
    keras_name = "Slice"
    linear = True
    summary = "keep channels A up to (not including) B: `channels 0:32`, half of a ShuffleNet split"
    args = (
        Arg(
            "range",
            _interval,
            positional=True,
            doc="A:B, counted from 0; B is not included",
            text=lambda value: f"{value[0]}:{value[1]}",
        ),
    )

    # Keras has no slicing layer: `x[..., a:b]` on a tensor is the `GetItem` operation, `key` its index.
    keras_classes = ("GetItem",)
    keras_positional = ("key",)

    def label(self, attrs):
        start, stop = attrs["range"]
        return f"channels {start}:{stop}"

    def read_keras(self, class_name, config, inputs):
        key = config.get("key")
        key = key if isinstance(key, tuple) else (key,)
        rank = len(inputs[0]) + 1  # with the batch axis
        last = key[-1] if key else None
        before = key[:-1]
        whole = all(k == slice(None) for k in before if k is not Ellipsis)
        covers = Ellipsis in before or len(before) == rank - 1
        if not (
            isinstance(last, slice) and last.step in (None, 1) and whole and covers and before.count(Ellipsis) <= 1
        ):
            raise Untranslatable(
                "key", "only a slice of the channels (`x[..., a:b]`) has a spec equivalent (`channels a:b`)"
            )
        start, stop, _ = last.indices(inputs[0][-1])
        if stop <= start:
            raise Untranslatable("key", f"the slice `{start}:{stop}` of the channels is empty")
        return [("channels", {"range": (start, stop)})]

    def output_shape(self, attrs, inputs):
        start, stop = attrs["range"]
        channels = inputs[0][-1]
        if stop > channels:
            raise ShapeError(
                f"`channels {start}:{stop}` needs {stop} channels, the input has {describe_shape(inputs[0])}",
                hint=f"the last range this input has is `channels {min(start, channels - 1)}:{channels}`",
            )
        return (*inputs[0][:-1], stop - start)

    def apply(self, module, attrs, xs, *, train):
        start, stop = attrs["range"]
        return xs[0][..., start:stop]


@layer
class Shuffle(LayerKind):
    name = "shuffle"
    family = "reshape"
    keras_name = "ChannelShuffle"
    linear = True
    summary = "channel shuffle: `shuffle G` interleaves G channel groups (ShuffleNet, torchvision's order)"
    args = (Arg("groups", positive, positional=True, doc="number of groups; must divide the channels"),)

    # Keras has no shuffle layer: this is the class `cnn-arch export --to keras` writes.
    keras_classes = ("ChannelShuffle",)
    keras_positional = ("groups",)

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("groups",))
        return [("shuffle", keras_config.bind(self, {"groups": config.get("groups")}))]

    def output_shape(self, attrs, inputs):
        channels, groups = inputs[0][-1], attrs["groups"]
        if channels % groups:
            raise ShapeError(f"input channels (={channels}) must be divisible by `groups` (={groups})")
        return inputs[0]

    def apply(self, module, attrs, xs, *, train):
        x, groups = xs[0], attrs["groups"]
        # channel g*(C/G) + k moves to k*G + g, as torchvision's view-transpose-view does
        grouped = x.reshape(*x.shape[:-1], groups, x.shape[-1] // groups)
        return grouped.swapaxes(-1, -2).reshape(x.shape)
