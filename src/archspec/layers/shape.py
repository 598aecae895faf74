"""Layers that only move data: `input`, `flatten`, `zeropad`, `dropout`, `droppath`."""

from __future__ import annotations

import math
from typing import ClassVar

from archspec.layers import keras_config, onnx_attrs
from archspec.layers.base import (
    GLOBAL,
    REGISTRY,
    Arg,
    ArgError,
    Code,
    LayerKind,
    Module,
    Op,
    Untranslatable,
    Window,
    call,
    holds,
    layer,
    non_negative,
    positive,
    python,
    rate,
    spatial,
)
from archspec.text import show

MAX_SIDE = 65_536
MAX_CHANNELS = 1_000_000


def input_shape(name: str, value) -> tuple[int, ...]:
    """`HxWxC` for images, or `N` for a vector input."""
    dims = value if isinstance(value, tuple) else (value,)
    if len(dims) not in (1, 3):
        raise ArgError(f"`{name}` must be HxWxC (or N for a vector), got `{show(value)}`")
    dims = tuple(positive(name, d) for d in dims)
    if len(dims) == 3 and (dims[0] > MAX_SIDE or dims[1] > MAX_SIDE):
        raise ArgError(f"input {show(dims)} is larger than {MAX_SIDE}x{MAX_SIDE}")
    if dims[-1] > MAX_CHANNELS or math.prod(dims) > 2**31:
        raise ArgError(f"input {show(dims)} has {math.prod(dims):,} values, more than a model can take")
    return dims


@layer
class Input(LayerKind):
    name = "input"
    onnx_ops = ()  # the graph input is no node: the reader hands its dims as one
    family = "input"
    keras_name = "Input"
    summary = "the input tensor: `input HxWxC` (batch not included)"
    args = (Arg("shape", input_shape, positional=True, doc="HxWxC, or N for a vector"),)
    keras_classes = ("InputLayer",)
    keras_positional = ("shape", "batch_size", "dtype", "sparse", "ragged", "batch_shape")

    def output_shape(self, attrs, inputs):
        return attrs["shape"]

    # The writers' model input: Keras' Input layer; PyTorch and Flax take it as their call's argument.
    def keras_code(self, attrs, inputs, output):
        return [Module(call("keras.Input", shape=attrs["shape"]), apply="{m}", name="inputs")]

    def pytorch_code(self, attrs, inputs, output):
        return []

    def flax_code(self, attrs, inputs, output):
        return []

    def read_onnx(self, node, inputs):
        """An ONNX graph input of `node.dims[0]` (batch first) in `node.layout`."""
        spec = [0] * len(node.layout)
        for axis, size in enumerate(node.dims[0]):
            spec[node.layout[axis]] = size
        return [("input", {"shape": tuple(spec[1:])})]

    def read_keras(self, class_name, config, inputs):
        # Keras 3 saves `batch_shape`, Keras 2 `batch_input_shape`, both with the batch first;
        # source says `shape` without it.
        for key in ("batch_shape", "batch_input_shape"):
            if config.get(key) is not None:
                shape, where = keras_config.plain(config[key])[1:], key
                break
        else:
            shape, where = keras_config.plain(config.get("shape")), "shape"
        if shape is None or (isinstance(shape, tuple) and None in shape):
            raise Untranslatable(
                where,
                f"the input shape is not fixed ({keras_config.show(shape)})",
                hint="pass --input HxWxC to give it",
            )
        keras_config.check_keys(
            config, ("batch_shape", "batch_input_shape", "shape", "batch_size", "sparse", "ragged", "optional")
        )
        for key in ("sparse", "ragged"):
            if config.get(key):
                raise Untranslatable(key, f"a {key} input has no spec equivalent")
        return [("input", keras_config.bind(self, {"shape": shape}, {"shape": where}))]


@layer
class Flatten(LayerKind):
    name = "flatten"
    onnx_ops = ("Flatten", "Reshape", "Squeeze")  # to a vector per example
    family = "reshape"
    keras_name = "Flatten"
    linear = True
    summary = "reshape HxWxC into a vector of H*W*C values"
    keras_classes = ("Flatten",)
    keras_positional = ("data_format",)

    def output_shape(self, attrs, inputs):
        return (math.prod(inputs[0]),)

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("data_format",))
        keras_config.channels_last(config)
        return [("flatten", {})]

    def window(self, attrs):
        return GLOBAL

    def apply(self, module, attrs, xs, *, train):
        return xs[0].reshape(xs[0].shape[0], -1)

    def keras_code(self, attrs, inputs, output):
        return [Module("layers.Flatten()", name="flatten")]

    def pytorch_code(self, attrs, inputs, output):
        return [Op("torch.flatten({0}, 1)")]  # channels, then rows, then columns: PyTorch's own order

    def flax_code(self, attrs, inputs, output):
        return [Op("{0}.reshape({0}.shape[0], -1)")]

    def read_onnx(self, node, inputs):
        """An image made a vector per example. PyTorch's Flatten of NCHW orders the values channel-major,
        the spec's flatten of HxWxC height-major: the same values and counts in another order (the dense
        after it sees its rows permuted; over a 1x1 map the orders agree)."""
        onnx_attrs.alone(node)
        if node.op_type == "Flatten" and node.attributes.get("axis", 1) != 1:
            raise onnx_attrs.Untranslatable("axis", "`Flatten` from an axis other than 1; the spec keeps the batch")
        source, out = node.dims[0], node.out_dims[0]
        if len(out) != 2 or out[0] != source[0] or len(inputs[0]) not in (1, 3):
            raise onnx_attrs.OtherKind(f"a `{node.op_type}` that does not make a vector per example")
        target = onnx_attrs.constant(node, 1) if node.op_type == "Reshape" else None
        rows = target is not None and target.size == 2 and target.reshape(-1)[0] == -1 and out[1] == source[-1]
        if rows and node.layout == onnx_attrs.NHWC:  # (-1, C) of channels-last: a row per pixel (jax2onnx's Dense)
            raise onnx_attrs.OtherKind("a `Reshape` of each pixel's channels into a row")
        return [("flatten", {})] if len(inputs[0]) == 3 else []


def sides(name: str, value) -> tuple[int, int, int, int]:
    if isinstance(value, tuple):
        if len(value) == 2:
            h, w = (non_negative(name, v) for v in value)
            return h, h, w, w
        if len(value) == 4:
            top, bottom, left, right = (non_negative(name, v) for v in value)
            return top, bottom, left, right
        raise ArgError(f"`{name}` must be N, HxW or TxBxLxR, got `{show(value)}`")
    n = non_negative(name, value)
    return n, n, n, n


def sides_text(value: tuple[int, int, int, int]) -> str:
    """How `sides` values read back: `1`, `1x2` or `1x2x3x4`."""
    top, bottom, left, right = value
    if top == bottom == left == right:
        return str(top)
    if top == bottom and left == right:
        return f"{top}x{left}"
    return f"{top}x{bottom}x{left}x{right}"


@layer
class ZeroPad(LayerKind):
    name = "zeropad"
    onnx_ops = ("Pad",)  # with zeros
    family = "pad"
    keras_name = "ZeroPad2D"
    linear = True
    summary = "pad with zeros: `zeropad N`, `zeropad HxW` or `zeropad TxBxLxR` (top, bottom, left, right)"
    args = (Arg("padding", sides, positional=True, doc="N, HxW or TxBxLxR", text=sides_text),)

    keras_classes = ("ZeroPadding2D",)
    keras_positional = ("padding", "data_format")

    def label(self, attrs):
        return f"zeropad {sides_text(attrs['padding'])}"

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("padding", "data_format"))
        keras_config.channels_last(config)
        return [("zeropad", keras_config.bind(self, {"padding": keras_config.sides(config, "padding", 1)}))]

    def output_shape(self, attrs, inputs):
        h, w, c = spatial(self.name, inputs[0])
        top, bottom, left, right = attrs["padding"]
        return h + top + bottom, w + left + right, c

    def window(self, attrs):
        return Window((1, 1), (1, 1))

    def apply(self, module, attrs, xs, *, train):
        import jax.numpy as jnp

        top, bottom, left, right = attrs["padding"]
        return jnp.pad(xs[0], ((0, 0), (top, bottom), (left, right), (0, 0)))

    def keras_code(self, attrs, inputs, output):
        top, bottom, left, right = attrs["padding"]
        if holds(lambda: top == bottom == left == right):
            return [Module(call("layers.ZeroPadding2D", top), name="pad")]
        return [Module(call("layers.ZeroPadding2D", ((top, bottom), (left, right))), name="pad")]

    def pytorch_code(self, attrs, inputs, output):
        top, bottom, left, right = attrs["padding"]
        return [Op(f"F.pad({{0}}, {python((left, right, top, bottom))})")]

    def flax_code(self, attrs, inputs, output):
        top, bottom, left, right = attrs["padding"]
        return [Op(f"jnp.pad({{0}}, {python(((0, 0), (top, bottom), (left, right), (0, 0)))})")]

    def read_onnx(self, node, inputs):
        onnx_attrs.alone(node)
        fill, sides = onnx_attrs.pad_amounts(node)
        if fill != 0 or min(sides) < 0:
            raise onnx_attrs.OtherKind("a `Pad` not of zeros, or one that cuts")
        return [("zeropad", {"padding": sides})] if any(sides) else []


@layer
class Dropout(LayerKind):
    name = "dropout"
    onnx_ops = ("Dropout",)
    family = "dropout"
    keras_name = "Dropout"
    linear = True  # at inference, the identity
    summary = "dropout: `dropout P` zeroes a fraction P of the values while training"
    args = (Arg("rate", rate, positional=True, doc="fraction dropped, 0 <= P < 1"),)
    keras_classes = ("Dropout",)
    keras_positional = ("rate", "noise_shape", "seed")

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("rate", "noise_shape"))
        if config.get("noise_shape") is not None:  # one draw per example: stochastic depth
            return REGISTRY["droppath"].read_keras(class_name, config, inputs)
        return [("dropout", keras_config.bind(self, {"rate": config.get("rate")}))]

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        return nnx.Dropout(attrs["rate"], rngs=rngs)

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0], deterministic=not train)

    def keras_code(self, attrs, inputs, output):
        return [Module(call("layers.Dropout", attrs["rate"]), name="dropout")]

    def pytorch_code(self, attrs, inputs, output):
        return [Module(call("nn.Dropout", attrs["rate"]), name="dropout")]

    def flax_code(self, attrs, inputs, output):
        return [Module(call("nnx.Dropout", attrs["rate"], rngs=Code("rngs")), name="dropout")]

    def read_onnx(self, node, inputs):
        onnx_attrs.alone(node)
        rate = onnx_attrs.scalar(node, 1) if onnx_attrs.has_input(node, 1) else node.attributes.get("ratio", 0.5)
        if rate is None:
            raise onnx_attrs.Untranslatable("ratio", "`Dropout` with a rate computed at run time")
        return [("dropout", {"rate": onnx_attrs.single(rate)})]


@layer
class DropPath(LayerKind):
    name = "droppath"
    refusals: ClassVar[dict[str, str]] = {
        "onnx": "stochastic depth only acts in training: exporters write inference graphs, where it is the "
        "identity and leaves no node to read"
    }
    family = "dropout"
    keras_name = "StochasticDepth"
    linear = True  # at inference, the identity
    summary = (
        "stochastic depth on a residual branch: `droppath P` zeroes a whole example's branch with probability P "
        "while training (the rest scaled by 1/(1-P)); the identity at inference"
    )
    args = (Arg("rate", rate, positional=True, doc="probability of dropping the branch, 0 <= P < 1"),)

    # Keras has no stochastic-depth layer: `cnn-arch export --to keras` writes a `DropPath` class,
    # and EfficientNet a `Dropout` whose `noise_shape` is 1 but for the batch (`dropout` hands it over).
    keras_classes = ("DropPath",)
    keras_positional = ("rate",)

    def read_keras(self, class_name, config, inputs):
        if class_name == "DropPath":
            keras_config.check_keys(config, ("rate",))
            return [("droppath", keras_config.bind(self, {"rate": config.get("rate")}))]
        shape = keras_config.plain(config.get("noise_shape"))
        if not isinstance(shape, tuple) or len(shape) != len(inputs[0]) + 1 or any(d != 1 for d in shape[1:]):
            raise Untranslatable(
                "noise_shape",
                f"`noise_shape={keras_config.show(shape)}` has no spec equivalent",
                hint="the spec has dropout (no noise_shape) and droppath (noise_shape (None, 1, 1, 1))",
            )
        return [("droppath", keras_config.bind(self, {"rate": config.get("rate")}))]

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        # one draw per example: the mask is shared over every other axis
        return nnx.Dropout(attrs["rate"], broadcast_dims=tuple(range(1, len(inputs[0]) + 1)), rngs=rngs)

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0], deterministic=not train)

    def keras_code(self, attrs, inputs, output):
        return [Module(call("DropPath", attrs["rate"]), name="drop_path", helpers=(KERAS_DROP_PATH,))]

    def pytorch_code(self, attrs, inputs, output):
        return [Module(call("DropPath", attrs["rate"]), name="drop_path", helpers=(TORCH_DROP_PATH,))]

    def flax_code(self, attrs, inputs, output):
        # one draw per example: the mask is shared over every other axis
        dims = tuple(range(1, len(inputs[0]) + 1))
        return [Module(call("nnx.Dropout", attrs["rate"], broadcast_dims=dims, rngs=Code("rngs")), name="drop_path")]


KERAS_DROP_PATH = '''class DropPath(keras.layers.Layer):
    """Stochastic depth: while training, zero a whole example's branch with probability `rate`
    (the rest scaled by 1 / (1 - rate)); the identity at inference."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = keras.random.SeedGenerator()

    def call(self, x, training=False):
        if not training or self.rate == 0:
            return x
        shape = (keras.ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        keep = keras.random.uniform(shape, seed=self.seed) >= self.rate
        return x * keras.ops.cast(keep, x.dtype) / (1 - self.rate)'''

TORCH_DROP_PATH = '''class DropPath(nn.Module):
    """Stochastic depth: while training, zero a whole example's branch with probability `rate`
    (the rest scaled by 1 / (1 - rate)); the identity at inference (torchvision's
    StochasticDepth)."""

    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        if not self.training or self.rate == 0:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device) >= self.rate
        return x * keep / (1 - self.rate)'''
