"""Moving channels, ShuffleNet's two tools: `channels A:B` keeps a range of channels (one half of a
channel split) and `shuffle G` interleaves G channel groups (ShuffleNet's channel shuffle)."""

from __future__ import annotations

from archspec.layers import keras_config, onnx_attrs
from archspec.layers.base import (
    Arg,
    ArgError,
    Code,
    LayerKind,
    Module,
    Op,
    ShapeError,
    Untranslatable,
    call,
    layer,
    non_negative,
    positive,
    python,
)
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
    onnx_ops = ("Split", "Slice")  # along the channels
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

    def _slice(self, attrs) -> str:
        start, stop = attrs["range"]
        return f"{python(start)}:{python(stop)}"

    def keras_code(self, attrs, inputs, output):
        return [Op(f"{{0}}[..., {self._slice(attrs)}]")]  # a slice of a Keras tensor is a layer of the model

    def pytorch_code(self, attrs, inputs, output):
        return [Op(f"{{0}}[:, {self._slice(attrs)}]")]

    def flax_code(self, attrs, inputs, output):
        return [Op(f"{{0}}[..., {self._slice(attrs)}]")]

    def read_onnx(self, node, inputs):
        """A Split of the channels (ShuffleNet's chunk), one `channels A:B` per output; a Slice of them
        (with a `crop` after it when it also cuts height or width)."""
        onnx_attrs.alone(node)
        if node.op_type == "Slice":
            kept = onnx_attrs.slice_ranges(node)
            if onnx_attrs.channel_axis(node) not in kept:
                raise onnx_attrs.OtherKind("a `Slice` that keeps every channel")
            start, stop, _ = kept[onnx_attrs.channel_axis(node)]
            crop = onnx_attrs.crop_of(kept)
            return [("channels", {"range": (start, stop)}), *([("crop", {"cropping": crop})] if crop else [])]
        axis = node.attributes.get("axis", 0)
        if onnx_attrs.spec_axis(node, axis) != onnx_attrs.channel_axis(node):
            raise onnx_attrs.Untranslatable("axis", "`Split` along an axis that is not the channels")
        sizes = [out[axis] for out in node.out_dims]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return [("channels", {"range": (start, start + size)}) for start, size in zip(starts, sizes)]


@layer
class Shuffle(LayerKind):
    name = "shuffle"
    onnx_ops = ("Reshape",)  # to (G, C/G), Transpose, Reshape back
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

    def keras_code(self, attrs, inputs, output):
        return [Module(call("ChannelShuffle", attrs["groups"]), name="shuffle", helpers=(KERAS_SHUFFLE,))]

    def pytorch_code(self, attrs, inputs, output):
        return [Op(call("channel_shuffle", Code("{0}"), attrs["groups"]), helpers=(TORCH_SHUFFLE,))]

    def flax_code(self, attrs, inputs, output):
        return [Op(call("channel_shuffle", Code("{0}"), attrs["groups"]), helpers=(FLAX_SHUFFLE,))]

    def read_onnx(self, node, inputs):
        """Reshape splitting the channels into (G, C/G), Transpose swapping the two, Reshape back:
        PyTorch's (N, G, C/G, H, W) with perm (0, 2, 1, 3, 4), or channels-last (N, H, W, G, C/G)
        with perm (0, 1, 2, 4, 3)."""
        if onnx_attrs.fused_ops(node) != ("Transpose", "Reshape"):
            raise onnx_attrs.OtherKind("a `Reshape` that is not a channel shuffle")
        transpose, back = node.fused
        source, grouped = node.dims[0], node.out_dims[0]
        axis = node.layout.index(onnx_attrs.channel_axis(node))  # the ONNX axis of the channels
        groups = grouped[axis] if len(grouped) == 5 else 0
        swapped = list(range(5))
        if groups:
            swapped[axis], swapped[axis + 1] = axis + 1, axis
        if (
            not groups
            or grouped != (*source[:axis], groups, source[axis] // groups, *source[axis + 1 :])
            or tuple(transpose.attributes.get("perm", ())) != tuple(swapped)
            or back.out_dims[0] != source
        ):
            raise onnx_attrs.OtherKind("a `Reshape` that is not a channel shuffle")
        return [("shuffle", {"groups": groups})]


KERAS_SHUFFLE = '''class ChannelShuffle(keras.layers.Layer):
    """ShuffleNet's channel shuffle: channel g*(C/G) + k moves to k*G + g (torchvision's order)."""

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def call(self, x):
        *sizes, channels = x.shape
        grouped = keras.ops.reshape(x, (-1, *sizes[1:], self.groups, channels // self.groups))
        return keras.ops.reshape(keras.ops.swapaxes(grouped, -1, -2), (-1, *sizes[1:], channels))'''

TORCH_SHUFFLE = '''def channel_shuffle(x, groups):
    """ShuffleNet's channel shuffle on NCHW `x` (torchvision's)."""
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(batch, channels, height, width)'''

FLAX_SHUFFLE = '''def channel_shuffle(x, groups):
    """ShuffleNet's channel shuffle on NHWC `x`: channel g*(C/G) + k moves to k*G + g."""
    grouped = x.reshape(*x.shape[:-1], groups, x.shape[-1] // groups)
    return grouped.swapaxes(-1, -2).reshape(x.shape)'''
