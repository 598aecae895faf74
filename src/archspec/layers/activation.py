"""Activations, as layers (`relu`) or as trailing words after a conv or dense (`conv 64 3 relu`).

The table maps each name to its `jax.nn` function; the kinds whose output is probabilities
(softmax, sigmoid) are how training picks its loss (see archspec.train).
"""

from __future__ import annotations

import math

from archspec.layers import keras_config, onnx_attrs
from archspec.layers.base import REGISTRY, Arg, Code, LayerKind, Module, Op, Untranslatable, call, layer, real

# name -> (jax.nn function, description)
ACTIVATIONS: dict[str, tuple[str, str]] = {
    "relu": ("relu", "max(x, 0)"),
    "relu6": ("relu6", "min(max(x, 0), 6), MobileNet"),
    "leaky_relu": ("leaky_relu", "x for x > 0 else slope * x (slope 0.01 by default)"),
    "elu": ("elu", "exponential linear unit"),
    "selu": ("selu", "scaled exponential linear unit"),
    "gelu": ("gelu", "Gaussian error linear unit"),
    "silu": ("silu", "x * sigmoid(x)"),
    "swish": ("silu", "x * sigmoid(x) (same as silu), EfficientNet"),
    "hard_swish": ("hard_silu", "x * relu6(x + 3) / 6, MobileNetV3"),
    "hard_sigmoid": ("hard_sigmoid", "relu6(x + 3) / 6"),
    "mish": ("mish", "x * tanh(softplus(x))"),
    "softplus": ("softplus", "log(1 + exp(x))"),
    "tanh": ("tanh", "hyperbolic tangent"),
    "sigmoid": ("sigmoid", "1 / (1 + exp(-x)); a 1-unit sigmoid head trains with binary cross-entropy"),
    "softmax": ("softmax", "probabilities over the last axis; a softmax head trains with cross-entropy"),
    "linear": ("", "the identity (no activation)"),
}


# The ONNX op types each activation reads (the first op of its pattern: Sigmoid then Mul by the same
# input is SiLU), and why the two that have none have none.
ONNX_OPS: dict[str, tuple[str, ...]] = {
    "relu": ("Relu", "Clip", "Max"),
    "relu6": ("Clip", "Max"),
    "leaky_relu": ("LeakyRelu",),
    "elu": ("Elu",),
    "selu": ("Selu",),
    "gelu": ("Gelu", "Div", "Mul"),
    "silu": ("Sigmoid", "Swish"),
    "hard_swish": ("HardSwish", "HardSigmoid"),
    "hard_sigmoid": ("HardSigmoid",),
    "mish": ("Mish", "Softplus"),
    "softplus": ("Softplus",),
    "tanh": ("Tanh",),
    "sigmoid": ("Sigmoid",),
    "softmax": ("Softmax",),
}
ONNX_REFUSALS = {
    "swish": "ONNX's x * sigmoid(x) reads as `silu`, the same function under its other name",
    "linear": "the identity is no ONNX layer: an Identity node is passed through without a spec line",
}
# Single ONNX ops that are an activation, with the parameters the spec's has fixed ((ONNX default, value)).
_ONE_OP = {
    "Relu": ("relu", {}),
    "LeakyRelu": ("leaky_relu", {}),
    "Elu": ("elu", {"alpha": (1.0, 1.0)}),
    "Selu": (
        "selu",
        {"alpha": (1.6732632423543772, 1.6732632423543772), "gamma": (1.0507009873554805, 1.0507009873554805)},
    ),
    "Gelu": ("gelu", {}),
    "Swish": ("silu", {"alpha": (1.0, 1.0)}),
    "HardSwish": ("hard_swish", {}),
    "HardSigmoid": ("hard_sigmoid", {"alpha": (0.2, 1 / 6), "beta": (0.5, 0.5)}),
    "Mish": ("mish", {}),
    "Softplus": ("softplus", {}),
    "Tanh": ("tanh", {}),
    "Sigmoid": ("sigmoid", {}),
    "Softmax": ("softmax", {}),
}
# x * f(x), f a chain of ONNX ops from x: the gates.
_GATES = {("Sigmoid", "Mul"): "silu", ("HardSigmoid", "Mul"): "hard_swish", ("Softplus", "Tanh", "Mul"): "mish"}


# name -> how written code applies it: Keras' activation name, PyTorch's and Flax's expression of
# the input {0} (NCHW in PyTorch: the channels a softmax runs over are dimension 1)
CODE: dict[str, tuple[str, str, str]] = {
    "relu": ("relu", "F.relu({0})", "jax.nn.relu({0})"),
    "relu6": ("relu6", "F.relu6({0})", "jax.nn.relu6({0})"),
    "elu": ("elu", "F.elu({0})", "jax.nn.elu({0})"),
    "selu": ("selu", "F.selu({0})", "jax.nn.selu({0})"),
    "gelu": ("gelu", "F.gelu({0})", "jax.nn.gelu({0}, approximate=False)"),  # exact in all three
    "silu": ("silu", "F.silu({0})", "jax.nn.silu({0})"),
    "swish": ("swish", "F.silu({0})", "jax.nn.silu({0})"),
    "hard_swish": ("hard_silu", "F.hardswish({0})", "jax.nn.hard_silu({0})"),
    "hard_sigmoid": ("hard_sigmoid", "F.hardsigmoid({0})", "jax.nn.hard_sigmoid({0})"),
    "mish": ("mish", "F.mish({0})", "jax.nn.mish({0})"),
    "softplus": ("softplus", "F.softplus({0})", "jax.nn.softplus({0})"),
    "tanh": ("tanh", "torch.tanh({0})", "jnp.tanh({0})"),
    "sigmoid": ("sigmoid", "torch.sigmoid({0})", "jax.nn.sigmoid({0})"),
    "softmax": ("softmax", "torch.softmax({0}, dim=1)", "jax.nn.softmax({0})"),
    "linear": ("linear", "{0}", "{0}"),
}

# The positional parameters of each Keras activation class.
KERAS_POSITIONAL = {
    "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "LeakyReLU": ("negative_slope",),
    "ELU": ("alpha",),
    "Softmax": ("axis",),
}
PROBABILITIES = frozenset({"softmax", "sigmoid"})
IDEMPOTENT = frozenset({"relu", "relu6", "linear"})  # f(f(x)) = f(x)


class Activation(LayerKind):
    family = "activation"
    keras_name = "Activation"
    trailing = True
    # Shared by every activation kind: the config says which one.
    keras_classes = ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax")

    def keras_parameters(self, class_name):
        return KERAS_POSITIONAL[class_name]

    def read_keras(self, class_name, config, inputs):
        if class_name == "Activation":
            keras_config.check_keys(config, ("activation",))
            return keras_config.activation(config) or [("linear", {})]
        if class_name == "Softmax":
            keras_config.check_keys(config, ("axis",))
            keras_config.channel_axis(config, "axis", len(inputs[0]))
            return [("softmax", {})]
        if class_name == "ELU":
            keras_config.check_keys(config, ("alpha",))
            if config.get("alpha", 1.0) != 1.0:
                raise Untranslatable("alpha", f"`alpha={config['alpha']!r}`: the spec's `elu` has alpha 1")
            return [("elu", {})]
        if class_name == "LeakyReLU":
            keras_config.check_keys(config, ("negative_slope", "alpha"))  # `alpha` in Keras 2
            slope = config.get("negative_slope", config.get("alpha", 0.3))
            return [
                ("leaky_relu", keras_config.bind(REGISTRY["leaky_relu"], {"slope": slope}, {"slope": "negative_slope"}))
            ]
        keras_config.check_keys(config, ("max_value", "negative_slope", "threshold"))
        cap, slope, threshold = config.get("max_value"), config.get("negative_slope") or 0.0, config.get("threshold")
        if threshold not in (None, 0, 0.0):
            raise Untranslatable("threshold", f"`threshold={threshold!r}` has no spec equivalent")
        if cap is None:
            return [("relu", {})] if not slope else [("leaky_relu", {"slope": float(slope)})]
        if cap == 6 and not slope:
            return [("relu6", {})]
        raise Untranslatable("max_value", f"`max_value={cap!r}`: the spec has ReLU capped at 6 only (`relu6`)")

    def label(self, attrs):
        return self.name + (f" {attrs['slope']:g}" if "slope" in attrs and attrs["slope"] != 0.01 else "")

    def read_onnx(self, node, inputs):
        return [(self.name, _read_onnx(self.name, node))]

    def apply(self, module, attrs, xs, *, train):
        import jax

        function = ACTIVATIONS[self.name][0]
        if not function:
            return xs[0]
        if self.name == "leaky_relu":
            return jax.nn.leaky_relu(xs[0], negative_slope=attrs["slope"])
        if self.name == "gelu":  # Keras' and PyTorch's GELU is the exact erf form; jax.nn's default is the tanh one
            return jax.nn.gelu(xs[0], approximate=False)
        return getattr(jax.nn, function)(xs[0])

    def keras_code(self, attrs, inputs, output):
        if self.name == "leaky_relu":  # Keras' own default slope is 0.3
            return [Module(call("layers.LeakyReLU", negative_slope=attrs["slope"]), name=self.name)]
        return [Module(call("layers.Activation", CODE[self.name][0]), name=self.name)]

    def pytorch_code(self, attrs, inputs, output):
        if self.name == "leaky_relu":  # PyTorch's default slope is 0.01, the spec's: written anyway
            return [Op(call("F.leaky_relu", Code("{0}"), attrs["slope"]))]
        return [Op(CODE[self.name][1])]

    def flax_code(self, attrs, inputs, output):
        if self.name == "leaky_relu":
            return [Op(call("jax.nn.leaky_relu", Code("{0}"), negative_slope=attrs["slope"]))]
        return [Op(CODE[self.name][2])]


def _read_onnx(name: str, node) -> dict:
    """The attrs of activation `name` read from `node` (and the pattern fused after it), or why not."""
    ops = (node.op_type, *onnx_attrs.fused_ops(node))
    if len(ops) == 1 and node.op_type in _ONE_OP and _ONE_OP[node.op_type][0] == name:
        for parameter, (default, wanted) in _ONE_OP[node.op_type][1].items():
            value = node.attributes.get(parameter, default)
            if not onnx_attrs.close(value, wanted):
                raise Untranslatable(
                    parameter, f"`{node.op_type}` with {parameter}={value:g}; the spec's `{name}` has {wanted:.6g}"
                )
        if node.op_type == "Gelu" and node.attributes.get("approximate", "none") != "none":
            raise Untranslatable(
                "approximate", "`Gelu` with the tanh approximation; the spec's `gelu` is the exact erf form"
            )
        if node.op_type == "Softmax" and onnx_attrs.spec_axis(
            node, node.attributes.get("axis", -1)
        ) != onnx_attrs.channel_axis(node):
            raise Untranslatable("axis", "`Softmax` over an axis that is not the channels")
        return {"slope": onnx_attrs.single(node.attributes.get("alpha", 0.01))} if name == "leaky_relu" else {}
    if node.op_type in ("Clip", "Max") and name in ("relu", "relu6"):
        low, high = _bounds(node)
        bounds = {(0.0, math.inf): "relu", (0.0, 6.0): "relu6"}
        if (low, high) not in bounds:
            raise Untranslatable(
                None, f"`{'`, `'.join(ops)}` to [{low:g}, {high:g}]; the spec has relu (0, inf) and relu6 (0, 6)"
            )
        if bounds[(low, high)] == name:
            return {}
    elif _GATES.get(ops) == name and len(node.fused[-1].streams) == 2:
        fixed = _ONE_OP[node.op_type][1]  # the gate's own parameters (HardSigmoid's alpha and beta)
        if all(onnx_attrs.close(node.attributes.get(p, d), w) for p, (d, w) in fixed.items()):
            return {}
    elif name == "gelu" and ops[1:] == ("Erf", "Add", "Mul", "Mul") and _erf_gelu(node):
        return {}
    raise onnx_attrs.OtherKind(f"`{'`, `'.join(ops)}` is not `{name}`")


def _bounds(node) -> tuple[float, float]:
    """The [low, high] a Clip (bounds as inputs or, before opset 11, attributes) or Max then Min keeps."""
    if node.op_type == "Max":
        if len(node.streams) != 1 or onnx_attrs.scalar(node, 1 - node.streams[0]) is None:
            raise onnx_attrs.OtherKind("a `Max` of two computed tensors")
        low, high = onnx_attrs.scalar(node, 1 - node.streams[0]), math.inf
        if node.fused:
            minimum = node.fused[0]
            if onnx_attrs.fused_ops(node) != ("Min",) or len(minimum.streams) != 1:
                raise onnx_attrs.OtherKind("a `Max` followed by other than a `Min`")
            high = onnx_attrs.scalar(minimum, 1 - minimum.streams[0])
        return low, high
    onnx_attrs.alone(node)
    if "min" in node.attributes or "max" in node.attributes:
        return node.attributes.get("min", -math.inf), node.attributes.get("max", math.inf)
    bounds = [
        onnx_attrs.scalar(node, p) if onnx_attrs.has_input(node, p) else d for p, d in ((1, -math.inf), (2, math.inf))
    ]
    if None in bounds:
        raise Untranslatable(None, "`Clip` bounds computed at run time")
    return bounds[0], bounds[1]


def _erf_gelu(node) -> bool:
    """PyTorch's exact GELU before opset 20: x / sqrt(2) (or x * 1/sqrt(2)), Erf, + 1, times x and 0.5."""
    _, add, first, second = node.fused  # Erf, Add, and the two Muls
    scale = onnx_attrs.scalar(node, 1)
    if scale is None or node.streams != (0,):
        return False
    factor = scale if node.op_type == "Mul" else 1 / scale
    one = onnx_attrs.scalar(add, 1 - add.streams[0]) if len(add.streams) == 1 else None
    halves = [onnx_attrs.scalar(m, 1 - m.streams[0]) for m in (first, second) if len(m.streams) == 1]
    gated = [m for m in (first, second) if len(m.streams) == 2]
    return (
        onnx_attrs.close(factor, 1 / math.sqrt(2))
        and one is not None
        and onnx_attrs.close(one, 1.0)
        and len(halves) == 1
        and halves[0] is not None
        and onnx_attrs.close(halves[0], 0.5)
        and len(gated) == 1
    )


for _name, (_function, _doc) in ACTIVATIONS.items():
    _args = (Arg("slope", real, 0.01, positional=True, doc="slope for x < 0"),) if _name == "leaky_relu" else ()
    _traits = {
        "linear": _name == "linear",
        "probability_output": _name in PROBABILITIES,
        "sums_to_one": _name == "softmax",
        "idempotent": _name in IDEMPOTENT,
    }
    if _name in ONNX_REFUSALS:  # no ONNX form: the base's refusing reader, with the reason
        _traits.update(refusals={"onnx": ONNX_REFUSALS[_name]}, read_onnx=LayerKind.read_onnx)
    else:
        _traits["onnx_ops"] = ONNX_OPS[_name]
    layer(type(_name, (Activation,), {"name": _name, "summary": _doc, "args": _args, **_traits}))
