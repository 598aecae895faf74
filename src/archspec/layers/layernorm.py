"""Per-example normalization and scaling, ConvNeXt's and the GroupNorm networks': `layernorm`
(Keras LayerNormalization over channels), `groupnorm G` (Keras GroupNormalization) and
`layerscale` (a learnable per-channel scale, ConvNeXt's gamma)."""

from __future__ import annotations

from typing import ClassVar

from archspec.layers import keras_config, onnx_attrs
from archspec.layers.base import (
    GLOBAL,
    Arg,
    LayerKind,
    Module,
    ShapeError,
    Stored,
    Untranslatable,
    boolean,
    call,
    keyword,
    layer,
    positive,
    positive_real,
    real,
    vector,
)
from archspec.layers.writing import CHANNELS_LAST, RNGS, torch_affine

KERAS_LAYER_SCALE = '''class LayerScale(keras.layers.Layer):
    """A learnable scale per channel, x * gamma (ConvNeXt's layer scale)."""

    def __init__(self, init=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        initializer = keras.initializers.Constant(self.init)
        channels = input_shape[-1]
        self.gamma = self.add_weight(shape=(channels,), initializer=initializer, name="gamma")

    def call(self, x):
        return x * self.gamma'''

TORCH_LAYER_SCALE = '''class LayerScale(nn.Module):
    """A learnable scale per channel (dimension 1), x * gamma (ConvNeXt's layer scale)."""

    def __init__(self, channels, init=1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), init))

    def forward(self, x):
        return x * self.gamma.view((1, -1) + (1,) * (x.dim() - 2))'''

FLAX_LAYER_SCALE = '''class LayerScale(nnx.Module):
    """A learnable scale per channel, x * gamma (ConvNeXt's layer scale)."""

    def __init__(self, channels, init=1e-6):
        self.gamma = nnx.Param(jnp.full((channels,), init))

    def __call__(self, x):
        return x * self.gamma[...]'''

_AFFINE = (
    Arg("center", boolean, True, doc="learn a shift (beta)"),
    Arg("scale", boolean, True, doc="learn a scale (gamma)"),
)

# How frameworks store a normalization's learned scale and shift: Keras' gamma and beta, PyTorch's
# `weight` and `bias` (each absent where not learned; written PyTorch code learns one alone in a
# `ChannelAffine` module after a norm without any)
_KERAS_AFFINE = (Stored("scale", needs="scale"), Stored("bias", needs="center"))
_TORCH_AFFINE = (
    {
        "weight": Stored("scale", needs="scale", rank=1, features=0),
        "bias": Stored("bias", needs="center", rank=1, features=0),
    },
)


def _affine_count(attrs: dict, channels: int) -> int:
    return channels * (int(attrs["center"]) + int(attrs["scale"]))


def _read_norm(kind: LayerKind, config: dict, inputs, read: tuple[str, ...]) -> list:
    keras_config.check_keys(config, ("axis", *read))
    keras_config.channel_axis(config, "axis", len(inputs[0]))
    return [(kind.name, keras_config.bind(kind, {key: config.get(key) for key in read}))]


@layer
class LayerNorm(LayerKind):
    name = "layernorm"
    onnx_ops = ("LayerNormalization",)
    family = "norm"
    keras_name = "LayerNormalization"
    summary = "layer normalization over the channels of each pixel (Keras defaults: epsilon 0.001; ConvNeXt 1e-6)"
    args = (Arg("epsilon", positive_real, 1e-3, doc="added to the variance"), *_AFFINE)
    keras_classes = ("LayerNormalization",)
    keras_positional = ("axis", "epsilon", "center", "scale")

    def read_keras(self, class_name, config, inputs):
        return _read_norm(self, config, inputs, ("epsilon", "center", "scale"))

    def param_count(self, attrs, inputs, output):
        return _affine_count(attrs, inputs[0][-1]), 0

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        return nnx.LayerNorm(
            inputs[0][-1],
            epsilon=attrs["epsilon"],
            use_bias=attrs["center"],
            use_scale=attrs["scale"],
            use_fast_variance=False,  # Keras computes the variance around the mean
            dtype=dtype,
            rngs=rngs,
        )

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])

    def keras_code(self, attrs, inputs, output):
        norm = call(
            "layers.LayerNormalization",
            epsilon=keyword(attrs["epsilon"], 1e-3),
            center=keyword(attrs["center"], True),
            scale=keyword(attrs["scale"], True),
        )
        return [Module(norm, name="norm")]

    def pytorch_code(self, attrs, inputs, output):
        # over the channels of each pixel: on an NCHW map, channels last and back (as torchvision's LayerNorm2d)
        apply = CHANNELS_LAST if len(inputs[0]) == 3 else "{m}({0})"
        norm = call("nn.LayerNorm", inputs[0][-1], eps=keyword(attrs["epsilon"], 1e-5))
        steps = torch_affine(norm[:-1].replace("affine", "elementwise_affine"), attrs, inputs[0][-1], apply)
        return [_affine_keyword(step) for step in steps]

    def flax_code(self, attrs, inputs, output):
        norm = call(
            "nnx.LayerNorm",
            inputs[0][-1],
            epsilon=keyword(attrs["epsilon"], 1e-6),  # Flax's default is 1e-6
            use_bias=keyword(attrs["center"], True),
            use_scale=keyword(attrs["scale"], True),
            use_fast_variance=False,  # the variance around the mean, as Keras and PyTorch compute it
            rngs=RNGS,
        )
        return [Module(norm, name="norm")]

    def read_onnx(self, node, inputs):
        """Over the last ONNX axis, which must be the channels: PyTorch's LayerNorm after a permute to
        channels-last (ConvNeXt), or a Linear's input."""
        onnx_attrs.alone(node)
        rank = len(node.layout)
        if node.attributes.get("axis", -1) % rank != rank - 1 or node.layout[-1] != onnx_attrs.channel_axis(node):
            raise onnx_attrs.Untranslatable(
                "axis",
                "`LayerNormalization` over more than the channels of each pixel; the spec's `layernorm` "
                "normalizes each pixel's channels",
            )
        epsilon = onnx_attrs.single(node.attributes.get("epsilon", 1e-5))
        return [("layernorm", {"epsilon": epsilon, "center": onnx_attrs.learned(node, 2), "scale": True})]

    variables = ("scale", "bias")
    keras_weights: ClassVar[dict] = {"LayerNormalization": _KERAS_AFFINE}
    pytorch_weights = _TORCH_AFFINE
    onnx_weights: ClassVar[dict] = {
        "LayerNormalization": {1: Stored("scale", features=0), 2: Stored("bias", needs="center", features=0)}
    }


def _affine_keyword(step: Module) -> Module:
    """nn.LayerNorm calls its `affine` `elementwise_affine`."""
    from dataclasses import replace

    return replace(step, create=step.create.replace(", affine=False)", ", elementwise_affine=False)"))


@layer
class GroupNorm(LayerKind):
    name = "groupnorm"
    onnx_ops = ("GroupNormalization", "InstanceNormalization")
    family = "norm"
    keras_name = "GroupNormalization"
    summary = "group normalization: `groupnorm G` normalizes G channel groups over the whole image (epsilon 0.001)"
    args = (
        Arg("groups", positive, positional=True, doc="number of channel groups; must divide the channels"),
        Arg("epsilon", positive_real, 1e-3, doc="added to the variance"),
        *_AFFINE,
    )
    keras_classes = ("GroupNormalization",)
    keras_positional = ("groups", "axis", "epsilon", "center", "scale")

    def read_keras(self, class_name, config, inputs):
        config = {"groups": 32, **config}  # Keras' default
        return _read_norm(self, config, inputs, ("groups", "epsilon", "center", "scale"))

    def output_shape(self, attrs, inputs):
        channels = inputs[0][-1]
        if channels % attrs["groups"]:
            raise ShapeError(
                f"input channels (={channels}) must be divisible by `groups` (={attrs['groups']})",
                hint=f"`groupnorm 1` is per-example normalization over everything; {channels} has divisors "
                + ", ".join(str(d) for d in range(1, min(channels, 64) + 1) if channels % d == 0),
            )
        return inputs[0]

    def param_count(self, attrs, inputs, output):
        return _affine_count(attrs, inputs[0][-1]), 0

    def window(self, attrs):
        return GLOBAL  # each value is normalized with statistics of the whole image

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        return nnx.GroupNorm(
            inputs[0][-1],
            num_groups=attrs["groups"],
            epsilon=attrs["epsilon"],
            use_bias=attrs["center"],
            use_scale=attrs["scale"],
            use_fast_variance=False,
            dtype=dtype,
            rngs=rngs,
        )

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])

    def keras_code(self, attrs, inputs, output):
        norm = call(
            "layers.GroupNormalization",
            attrs["groups"],
            epsilon=keyword(attrs["epsilon"], 1e-3),
            center=keyword(attrs["center"], True),
            scale=keyword(attrs["scale"], True),
        )
        return [Module(norm, name="norm")]

    def pytorch_code(self, attrs, inputs, output):
        norm = call("nn.GroupNorm", attrs["groups"], inputs[0][-1], eps=keyword(attrs["epsilon"], 1e-5))
        return torch_affine(norm[:-1], attrs, inputs[0][-1])

    def flax_code(self, attrs, inputs, output):
        norm = call(
            "nnx.GroupNorm",
            inputs[0][-1],
            num_groups=attrs["groups"],
            epsilon=keyword(attrs["epsilon"], 1e-6),  # Flax's default is 1e-6
            use_bias=keyword(attrs["center"], True),
            use_scale=keyword(attrs["scale"], True),
            use_fast_variance=False,
            rngs=RNGS,
        )
        return [Module(norm, name="norm")]

    def read_onnx(self, node, inputs):
        """Instance normalization is group normalization with one channel per group."""
        onnx_attrs.alone(node)
        onnx_attrs.channels_first(node)
        channels = inputs[0][-1]
        epsilon = onnx_attrs.single(node.attributes.get("epsilon", 1e-5))
        if node.op_type == "InstanceNormalization":
            return [("groupnorm", {"groups": channels, "epsilon": epsilon, "center": True, "scale": True})]
        if onnx_attrs.weight_dims(node, 1, "scale") != (channels,):
            raise onnx_attrs.Untranslatable(
                None, "`GroupNormalization` with a scale per group (opset 18); the spec's has one per channel"
            )
        groups = node.attributes["num_groups"]
        return [("groupnorm", {"groups": groups, "epsilon": epsilon, "center": True, "scale": True})]

    variables = ("scale", "bias")
    keras_weights: ClassVar[dict] = {"GroupNormalization": _KERAS_AFFINE}
    pytorch_weights = _TORCH_AFFINE
    # GroupNormalization since opset 21 (a scale per channel; opset 18's per group matches no spec
    # layer's shapes); InstanceNormalization is one channel per group. PyTorch's TorchScript export
    # (opset 20 and below) writes GroupNorm as InstanceNormalization of reshaped groups, then Mul and
    # Add: neither the reader nor this reads that.
    onnx_weights: ClassVar[dict] = {
        op: {1: Stored("scale"), 2: Stored("bias")} for op in ("GroupNormalization", "InstanceNormalization")
    }


@layer
class LayerScale(LayerKind):
    name = "layerscale"
    onnx_ops = ("Mul",)  # by a weight per channel
    family = "norm"
    keras_name = "LayerScale"
    linear = True
    summary = "a learnable scale per channel, x * gamma (ConvNeXt's layer scale; `init=` starts gamma, 1e-6)"
    args = (Arg("init", real, 1e-6, doc="the starting value of every gamma"),)
    # Keras has no core layer-scale layer: the one keras.applications' ConvNeXt defines
    # (`init_values`, `projection_dim`); `cnn-arch export --to keras` writes one that says `init`.
    keras_classes = ("LayerScale",)
    keras_positional = ("init_values", "projection_dim")

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("init_values", "projection_dim", "init"))
        if "init" in config:
            config = {**config, "init_values": config["init"]}
        width = config.get("projection_dim")
        if width is not None and width != inputs[0][-1]:
            raise Untranslatable(
                "projection_dim", f"`projection_dim={width}` differs from the input's {inputs[0][-1]} channels"
            )
        return [("layerscale", keras_config.bind(self, {"init": config.get("init_values")}, {"init": "init_values"}))]

    def label(self, attrs):
        return f"layerscale {attrs['init']:g}"

    def param_count(self, attrs, inputs, output):
        return inputs[0][-1], 0

    def build(self, attrs, inputs, output, rngs, dtype=None):
        import jax.numpy as jnp
        from flax import nnx

        channels, init = inputs[0][-1], attrs["init"]

        class Scale(nnx.Module):
            def __init__(self):
                self.gamma = nnx.Param(jnp.full((channels,), init, dtype=jnp.float32))

            def __call__(self, x):
                return x * self.gamma[...].astype(x.dtype)

        return Scale()

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])

    def keras_code(self, attrs, inputs, output):
        return [Module(call("LayerScale", attrs["init"]), name="scale", helpers=(KERAS_LAYER_SCALE,))]

    def pytorch_code(self, attrs, inputs, output):
        return [Module(call("LayerScale", inputs[0][-1], attrs["init"]), name="scale", helpers=(TORCH_LAYER_SCALE,))]

    def flax_code(self, attrs, inputs, output):
        return [Module(call("LayerScale", inputs[0][-1], attrs["init"]), name="scale", helpers=(FLAX_LAYER_SCALE,))]

    def read_onnx(self, node, inputs):
        """A product with one weight per channel (ConvNeXt's gamma, shaped Cx1x1 in PyTorch)."""
        onnx_attrs.alone(node)
        if len(node.streams) != 1 or not onnx_attrs.per_channel(node, 1 - node.streams[0]):
            raise onnx_attrs.OtherKind("a `Mul` by other than one weight per channel")
        value = onnx_attrs.constant(node, 1 - node.streams[0])
        uniform = value is not None and value.size and (value == value.reshape(-1)[0]).all()
        init = onnx_attrs.single(float(value.reshape(-1)[0])) if uniform else self.args[0].default
        return [("layerscale", {"init": init})]

    variables = ("gamma",)
    keras_weights: ClassVar[dict] = {"LayerScale": (Stored("gamma"),)}
    # torchvision's ConvNeXt: `layer_scale` shaped (C, 1, 1); written PyTorch code: `gamma` (C,)
    pytorch_weights = (
        {"layer_scale": Stored("gamma", vector, features=0), "gamma": Stored("gamma", vector, features=0)},
    )
    onnx_weights: ClassVar[dict] = {
        "Mul": {0: Stored("gamma", vector, features=0), 1: Stored("gamma", vector, features=0)}
    }

    def weights_from_onnx(self, node, order=None):
        """A product with a learned array of more than one value (by one number: a `rescale`)."""
        arrays = super().weights_from_onnx(node, order)
        return arrays if arrays and arrays["gamma"].size > 1 else None
