"""Normalization: `bn` (BatchNorm, Keras counting: 4 values per channel, 2 trainable), `lrn`
(AlexNet's local response normalization), `normalize` (Keras Normalization: fixed mean and
variance) and `rescale` (multiply and shift, no parameters)."""

from __future__ import annotations

from typing import ClassVar

from archspec.layers import keras_config, onnx_attrs
from archspec.layers.base import (
    Arg,
    Code,
    LayerKind,
    Module,
    Op,
    Stored,
    Untranslatable,
    boolean,
    call,
    keyword,
    layer,
    positive,
    positive_real,
    python,
    real,
    reorder,
    vector,
)
from archspec.layers.writing import RNGS, torch_affine, torch_momentum
from archspec.text import show

KERAS_LRN = '''class LocalResponseNorm(keras.layers.Layer):
    """AlexNet's local response normalization across channels (PyTorch's formula)."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def call(self, x):
        padding = [(0, 0)] * (len(x.shape) - 1) + [(self.size // 2, (self.size - 1) // 2)]
        squares = keras.ops.pad(x * x, padding)
        window = sum(squares[..., i : i + x.shape[-1]] for i in range(self.size))
        return x / (self.k + self.alpha / self.size * window) ** self.beta'''

FLAX_LRN = '''def local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """AlexNet's local response normalization across channels (PyTorch's formula)."""
    padding = [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)]
    squares = jnp.pad(x * x, padding)
    window = sum(squares[..., i : i + x.shape[-1]] for i in range(size))
    return x / (k + alpha / size * window) ** beta'''

TORCH_NORMALIZE = '''class Normalize(nn.Module):
    """Fixed per-channel (x - mean) / sqrt(variance), as Keras' Normalization (2C+1 buffers)."""

    def __init__(self, channels, spatial=True):
        super().__init__()
        shape = (channels, 1, 1) if spatial else (channels,)
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("variance", torch.ones(shape))
        self.register_buffer("count", torch.zeros(()))

    def forward(self, x):
        return (x - self.mean) / torch.sqrt(self.variance.clamp(min=1e-7))'''

FLAX_NORMALIZE = '''class Normalize(nnx.Module):
    """Fixed per-channel (x - mean) / sqrt(variance), as Keras' Normalization (2C+1 statistics)."""

    def __init__(self, channels):
        self.mean = nnx.BatchStat(jnp.zeros((channels,)))
        self.variance = nnx.BatchStat(jnp.ones((channels,)))
        self.count = nnx.BatchStat(jnp.zeros(()))

    def __call__(self, x):
        return (x - self.mean[...]) / jnp.sqrt(jnp.maximum(self.variance[...], 1e-7))'''


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
    keras_classes = ("BatchNormalization",)
    keras_positional = ("axis", "momentum", "epsilon", "center", "scale")

    def param_count(self, attrs, inputs, output):
        channels = inputs[0][-1]
        return channels * (int(attrs["center"]) + int(attrs["scale"])), 2 * channels

    def read_keras(self, class_name, config, inputs):
        # renorm's extra statistics would change the counts: refused unless off, by check_keys
        keras_config.check_keys(config, ("axis", "momentum", "epsilon", "center", "scale", "renorm_momentum"))
        keras_config.channel_axis(config, "axis", len(inputs[0]))
        values = {key: config.get(key) for key in ("momentum", "epsilon", "center", "scale")}
        return [("bn", keras_config.bind(self, values))]

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

    def keras_code(self, attrs, inputs, output):
        bn = call(
            "layers.BatchNormalization",
            momentum=keyword(attrs["momentum"], 0.99),
            epsilon=keyword(attrs["epsilon"], 1e-3),
            center=keyword(attrs["center"], True),
            scale=keyword(attrs["scale"], True),
        )
        return [Module(bn, name="bn")]

    def pytorch_code(self, attrs, inputs, output):
        # PyTorch's defaults are eps 1e-5 and momentum 0.1 (= Keras 0.9): written whenever they differ
        norm = call(
            "nn.BatchNorm2d" if len(inputs[0]) == 3 else "nn.BatchNorm1d",
            inputs[0][-1],
            eps=keyword(attrs["epsilon"], 1e-5),
            momentum=keyword(torch_momentum(attrs["momentum"]), 0.1),
        )
        return torch_affine(norm[:-1], attrs, inputs[0][-1])

    def flax_code(self, attrs, inputs, output):
        bn = call(
            "nnx.BatchNorm",
            inputs[0][-1],
            momentum=keyword(attrs["momentum"], 0.99),
            epsilon=keyword(attrs["epsilon"], 1e-5),  # Flax's default is 1e-5
            use_bias=keyword(attrs["center"], True),
            use_scale=keyword(attrs["scale"], True),
            rngs=RNGS,
        )
        return [Module(bn, name="bn")]

    def read_onnx(self, node, inputs):
        """ONNX's momentum is Keras' (the running value's weight: PyTorch's 0.1 is written 0.9). Its
        scale and shift are always there: one that is not a weight of the file (a `Constant` node, not
        an initializer) of ones, or zeros for the shift, is one the layer does not learn
        (`cnn-arch export`'s `bn(scale=false)`, PyTorch's BatchNorm2d(affine=False))."""
        import numpy as np

        onnx_attrs.alone(node)
        if node.layout[1] != onnx_attrs.channel_axis(node):
            raise onnx_attrs.Untranslatable(None, "`BatchNormalization` of a tensor whose axis 1 is not its channels")
        epsilon, momentum = (
            onnx_attrs.single(node.attributes.get(k, d)) for k, d in (("epsilon", 1e-5), ("momentum", 0.9))
        )

        def learned(position: int, fixed_value: float) -> bool:
            value = node.constants[position] if position < len(node.constants) else None
            return position in node.learned or value is None or not np.all(np.asarray(value) == fixed_value)

        return [("bn", {"momentum": momentum, "epsilon": epsilon, "center": learned(2, 0.0), "scale": learned(1, 1.0)})]

    variables = ("scale", "bias", "mean", "var")
    keras_weights: ClassVar[dict] = {
        "BatchNormalization": (
            Stored("scale", needs="scale"),
            Stored("bias", needs="center"),
            Stored("mean"),
            Stored("var"),
        )
    }
    # nn.BatchNorm2d; the affine part of a BatchNorm PyTorch cannot say (a scale or a shift alone) is
    # a `ChannelAffine` module after one without affine, as written PyTorch code has it (`torch_affine`)
    pytorch_weights = (
        {
            "weight": Stored("scale", needs="scale", rank=1, features=0),
            "bias": Stored("bias", needs="center", rank=1, features=0),
            "running_mean": Stored("mean", rank=1, features=0),
            "running_var": Stored("var", rank=1, features=0),
        },
        {
            "weight": Stored("scale", needs="scale", rank=1, features=0),
            "bias": Stored("bias", needs="center", rank=1, features=0),
        },
    )
    # ONNX's BatchNormalization always has its scale and shift (a Keras `scale=False` exported: a scale of 1)
    # a scale or shift the layer does not learn is a `Constant` node, not an initializer (`read_onnx`)
    onnx_weights: ClassVar[dict] = {
        "BatchNormalization": {
            1: Stored("scale", needs="scale", features=0),
            2: Stored("bias", needs="center", features=0),
            3: Stored("mean", features=0),
            4: Stored("var", features=0),
        }
    }
    # torch.onnx's exporters (both, by default) fold an eval-mode BatchNorm into the convolution before
    # it; the default (dynamo) one into a Linear's `Gemm` too
    folds_into = frozenset({"Conv", "Gemm"})

    def folded_weights(self, attrs, shapes, shift=None):
        """Variance 1 - epsilon (so that it divides by 1), a scale of 1 and a shift of 0; its mean 0, or
        minus `shift` (which it then adds, with or without a shift of its own)."""
        import numpy as np

        epsilon, channels = attrs["epsilon"], shapes["mean"][0]
        if epsilon >= 1 or (shift is not None and shift.shape != (channels,)):
            return None
        mean = np.zeros(channels, np.float32) if shift is None else -shift
        arrays = {"mean": mean, "var": np.full(channels, 1 - epsilon, np.float32)}
        if "scale" in shapes:
            arrays["scale"] = np.ones(channels, np.float32)
        if "bias" in shapes:
            arrays["bias"] = np.zeros(channels, np.float32)
        return arrays


@layer
class LocalResponseNorm(LayerKind):
    name = "lrn"
    onnx_ops = ("LRN",)
    family = "norm"
    neighbour_channel_norm = True
    keras_name = "LRN"
    summary = "local response normalization across channels (AlexNet; PyTorch's formula)"
    args = (
        Arg("size", positive, 5, doc="channels in the window"),
        Arg("alpha", real, 1e-4, doc="scale (divided by size)"),
        Arg("beta", real, 0.75, doc="exponent"),
        Arg("k", real, 2.0, doc="additive constant"),
    )
    # Keras has no LRN layer: this is the class `cnn-arch export --to keras` writes.
    keras_classes = ("LocalResponseNorm",)
    keras_positional = ("size", "alpha", "beta", "k")

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("size", "alpha", "beta", "k"))
        return [("lrn", keras_config.bind(self, {key: config.get(key) for key in ("size", "alpha", "beta", "k")}))]

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

    def _keywords(self, attrs: dict, defaults: dict) -> dict:
        return {name: keyword(attrs[name], default) for name, default in defaults.items()}

    def keras_code(self, attrs, inputs, output):
        keywords = self._keywords(attrs, {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0})
        return [Module(call("LocalResponseNorm", **keywords), name="lrn", helpers=(KERAS_LRN,))]

    def pytorch_code(self, attrs, inputs, output):
        keywords = self._keywords(attrs, {"alpha": 1e-4, "beta": 0.75, "k": 1.0})  # PyTorch's k is 1
        return [Op(call("F.local_response_norm", Code("{0}"), attrs["size"], **keywords))]

    def flax_code(self, attrs, inputs, output):
        keywords = self._keywords(attrs, {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0})
        return [Op(call("local_response_norm", Code("{0}"), **keywords), helpers=(FLAX_LRN,))]

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
    keras_classes = ("Normalization",)
    keras_positional = ("axis", "mean", "variance", "invert")

    def param_count(self, attrs, inputs, output):
        return 0, 2 * inputs[0][-1] + 1

    def read_keras(self, class_name, config, inputs):
        if config.get("mean") is not None or config.get("variance") is not None:
            raise Untranslatable(
                "mean",
                "a `Normalization` with fixed `mean` and `variance` holds them as constants, not weights; the "
                "spec's `normalize` keeps 2C+1 statistics, so the counts would differ",
                hint="read the model without this preprocessing (Keras applications: include_preprocessing=False)",
            )
        keras_config.check_keys(config, ("axis",))  # invert: refused
        keras_config.channel_axis(config, "axis", len(inputs[0]))
        return [("normalize", {})]

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

    def keras_code(self, attrs, inputs, output):
        return [Module("layers.Normalization()", name="normalize")]

    def pytorch_code(self, attrs, inputs, output):
        spatial = None if len(inputs[0]) == 3 else False
        create = call("Normalize", inputs[0][-1], spatial=spatial)
        return [Module(create, name="normalize", helpers=(TORCH_NORMALIZE,))]

    def flax_code(self, attrs, inputs, output):
        return [Module(call("Normalize", inputs[0][-1]), name="normalize", helpers=(FLAX_NORMALIZE,))]

    def read_onnx(self, node, inputs):
        """(x - mean) / std with a fixed value per channel: Keras' Normalization, or torchvision-style
        input normalization kept in the graph."""
        if onnx_attrs.fused_ops(node) not in (("Div",), ("Mul",)) or node.streams != (0,):
            raise onnx_attrs.OtherKind("a `Sub` not followed by a scaling per channel")
        (scaled,) = node.fused
        if not onnx_attrs.per_channel(node, 1) or scaled.streams != (0,) or not onnx_attrs.per_channel(scaled, 1):
            raise onnx_attrs.OtherKind("a `Sub` and a scaling not one value per channel")
        return [("normalize", {})]

    variables = ("mean", "variance", "count")
    keras_weights: ClassVar[dict] = {"Normalization": (Stored("mean"), Stored("variance"), Stored("count"))}
    # as written PyTorch code has it: buffers shaped (C, 1, 1) to broadcast over NCHW
    pytorch_weights = (
        {
            "mean": Stored("mean", vector, features=0),
            "variance": Stored("variance", vector, features=0),
            "count": Stored("count", rank=0),
        },
    )

    def weights_from_onnx(self, node, order=None):
        """`Sub` of the mean, then `Div` by the standard deviation or `Mul` by its inverse, each one
        initializer per channel (what exporters fold PyTorch's sqrt(variance) into). ONNX keeps no
        count of the examples the statistics came from (Keras' `count`, which only a further `adapt`
        reads): it loads as 0."""
        import numpy as np

        scaled = node.fused[0] if node.fused else None
        if node.op_type != "Sub" or node.learned != (1,) or scaled is None or scaled.op_type not in ("Div", "Mul"):
            return None
        if scaled.learned != (1,):
            return None
        mean, factor = vector(node.constants[1]), vector(scaled.constants[1])
        variance = factor * factor if scaled.op_type == "Div" else 1 / (factor * factor)
        if mean.shape != variance.shape:
            return None
        count = np.zeros((), mean.dtype)
        return {"mean": reorder(mean, order, 0), "variance": reorder(variance, order, 0), "count": count}


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
    keras_classes = ("Rescaling",)
    keras_positional = ("scale", "offset")

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("scale", "offset"))
        for key in ("scale", "offset"):
            if isinstance(config.get(key), (list, tuple)):
                raise Untranslatable(key, f"a `{key}` per channel has no spec equivalent (`rescale` takes one number)")
        return [("rescale", keras_config.bind(self, {"scale": config.get("scale"), "offset": config.get("offset")}))]

    def label(self, attrs):
        return f"rescale {show(attrs['scale'])}" + (f" +{show(attrs['offset'])}" if attrs["offset"] else "")

    def apply(self, module, attrs, xs, *, train):
        return xs[0] * attrs["scale"] + attrs["offset"]

    def keras_code(self, attrs, inputs, output):
        return [Module(call("layers.Rescaling", attrs["scale"], offset=keyword(attrs["offset"], 0.0)), name="rescale")]

    def _expression(self, attrs) -> list[Op]:
        offset = attrs["offset"]
        text = f"{{0}} * {python(attrs['scale'])}"
        return [Op(text if keyword(offset, 0.0) is None else f"{text} + {python(offset)}")]

    def pytorch_code(self, attrs, inputs, output):
        return self._expression(attrs)

    def flax_code(self, attrs, inputs, output):
        return self._expression(attrs)

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
