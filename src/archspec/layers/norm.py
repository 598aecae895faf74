"""Normalization: `bn` (BatchNorm, Keras counting: 4 values per channel, 2 trainable), `lrn`
(AlexNet's local response normalization), `normalize` (Keras Normalization: fixed mean and
variance) and `rescale` (multiply and shift, no parameters)."""

from __future__ import annotations

from archspec.layers import onnx_attrs
from archspec.layers.base import Arg, LayerKind, boolean, layer, positive, positive_real, real
from archspec.text import show


@layer
class BatchNorm(LayerKind):
    name = "bn"
    onnx_ops = ("BatchNormalization",)
    family = "norm"
    keras_name = "BatchNorm"
    trailing = True
    linear = True  # at inference: a fixed scale and shift per channel
    batch_statistics = True
    summary = "batch normalization over the last axis (Keras defaults: momentum 0.99, epsilon 0.001)"
    args = (
        Arg("momentum", real, 0.99, doc="moving-average momentum of the statistics"),
        Arg("epsilon", positive_real, 1e-3, doc="added to the variance"),
        Arg("center", boolean, True, doc="learn a shift (beta)"),
        Arg("scale", boolean, True, doc="learn a scale (gamma)"),
    )

    def param_count(self, attrs, inputs, output):
        channels = inputs[0][-1]
        return channels * (int(attrs["center"]) + int(attrs["scale"])), 2 * channels

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        module = nnx.BatchNorm(
            inputs[0][-1],
            momentum=attrs["momentum"],
            epsilon=attrs["epsilon"],
            use_bias=attrs["center"],
            use_scale=attrs["scale"],
            dtype=dtype,
            rngs=rngs,
        )
        from archspec.variables import rewritable

        module.mean, module.var = rewritable(module.mean), rewritable(module.var)  # written at every step
        return module

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0], use_running_average=not train)

    def read_onnx(self, node, inputs):
        """ONNX's momentum is Keras' (the running value's weight: PyTorch's 0.1 is written 0.9); its
        scale and shift are always there, so a Keras `scale=False` reads back with a scale of 1."""
        onnx_attrs.alone(node)
        if node.layout[1] != onnx_attrs.channel_axis(node):
            raise onnx_attrs.Untranslatable(None, "`BatchNormalization` of a tensor whose axis 1 is not its channels")
        epsilon, momentum = (
            onnx_attrs.single(node.attributes.get(k, d)) for k, d in (("epsilon", 1e-5), ("momentum", 0.9))
        )
        return [("bn", {"momentum": momentum, "epsilon": epsilon, "center": True, "scale": True})]


@layer
class LocalResponseNorm(LayerKind):
    name = "lrn"
    onnx_ops = ("LRN",)
    family = "norm"
    keras_name = "LRN"
    summary = "local response normalization across channels (AlexNet; PyTorch's formula)"
    args = (
        Arg("size", positive, 5, doc="channels in the window"),
        Arg("alpha", real, 1e-4, doc="scale (divided by size)"),
        Arg("beta", real, 0.75, doc="exponent"),
        Arg("k", real, 2.0, doc="additive constant"),
    )

    def apply(self, module, attrs, xs, *, train):
        import jax

        x = xs[0]
        size = attrs["size"]
        squares = jax.lax.reduce_window(
            x * x,
            0.0,
            jax.lax.add,
            (1,) * (x.ndim - 1) + (size,),
            (1,) * x.ndim,
            [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)],
        )
        return x / (attrs["k"] + attrs["alpha"] / size * squares) ** attrs["beta"]

    def read_onnx(self, node, inputs):
        """ONNX's LRN is PyTorch's formula, the spec's: x / (bias + alpha / size * sum of squares)^beta."""
        onnx_attrs.alone(node)
        onnx_attrs.channels_first(node)
        values = {"alpha": 1e-4, "beta": 0.75, "bias": 1.0}
        alpha, beta, k = (onnx_attrs.single(node.attributes.get(name, d)) for name, d in values.items())
        return [("lrn", {"size": node.attributes["size"], "alpha": alpha, "beta": beta, "k": k})]


@layer
class Normalize(LayerKind):
    name = "normalize"
    onnx_ops = ("Sub",)  # then Div (or Mul) by a constant per channel
    family = "norm"
    keras_name = "Normalization"
    linear = True
    summary = "fixed per-channel (x - mean) / sqrt(variance), Keras Normalization: 2C+1 non-trainable values"
    args = ()

    def param_count(self, attrs, inputs, output):
        return 0, 2 * inputs[0][-1] + 1

    def build(self, attrs, inputs, output, rngs, dtype=None):
        import jax.numpy as jnp
        from flax import nnx

        from archspec.variables import Statistic

        channels = inputs[0][-1]

        class Standardize(nnx.Module):
            def __init__(self):
                self.mean = Statistic(jnp.zeros((channels,)))
                self.variance = Statistic(jnp.ones((channels,)))
                self.count = Statistic(jnp.zeros(()))

            def __call__(self, x):
                # float32 statistics, the activations' own dtype out (bf16 compute stays bf16)
                return ((x - self.mean[...]) / jnp.sqrt(jnp.maximum(self.variance[...], 1e-7))).astype(x.dtype)

        return Standardize()

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])

    def read_onnx(self, node, inputs):
        """(x - mean) / std with a fixed value per channel: Keras' Normalization, or torchvision-style
        input normalization kept in the graph."""
        if onnx_attrs.fused_ops(node) not in (("Div",), ("Mul",)) or node.streams != (0,):
            raise onnx_attrs.OtherKind("a `Sub` not followed by a scaling per channel")
        (scaled,) = node.fused
        if not onnx_attrs.per_channel(node, 1) or scaled.streams != (0,) or not onnx_attrs.per_channel(scaled, 1):
            raise onnx_attrs.OtherKind("a `Sub` and a scaling not one value per channel")
        return [("normalize", {})]


@layer
class Rescale(LayerKind):
    name = "rescale"
    onnx_ops = ("Mul", "Div", "Add", "Sub")  # by one number
    family = "norm"
    keras_name = "Rescaling"
    linear = True
    summary = "x * scale + offset, e.g. `rescale 1/255` (Keras Rescaling)"
    args = (
        Arg("scale", real, positional=True, doc="multiplier"),
        Arg("offset", real, 0.0, doc="added after scaling"),
    )

    def label(self, attrs):
        return f"rescale {show(attrs['scale'])}" + (f" +{show(attrs['offset'])}" if attrs["offset"] else "")

    def apply(self, module, attrs, xs, *, train):
        return xs[0] * attrs["scale"] + attrs["offset"]

    def read_onnx(self, node, inputs):
        onnx_attrs.alone(node)
        if len(node.streams) != 1:
            raise onnx_attrs.OtherKind(f"`{node.op_type}` of two computed tensors")
        position = node.streams[0]
        number = onnx_attrs.scalar(node, 1 - position)
        if number is None:
            raise onnx_attrs.OtherKind(f"`{node.op_type}` by more than one number")
        number = onnx_attrs.single(number)
        if node.op_type == "Mul":
            return [("rescale", {"scale": number, "offset": 0.0})]
        if node.op_type == "Add":
            return [("rescale", {"scale": 1.0, "offset": number})]
        if node.op_type == "Sub":
            return [
                ("rescale", {"scale": 1.0, "offset": -number} if position == 0 else {"scale": -1.0, "offset": number})
            ]
        if position == 1:
            raise onnx_attrs.Untranslatable(None, "`Div` of a number by a tensor has no spec layer")
        return [("rescale", {"scale": onnx_attrs.single(1 / number), "offset": 0.0})]
