"""Activations, as layers (`relu`) or as trailing words after a conv or dense (`conv 64 3 relu`).

The table maps each name to its `jax.nn` function; the kinds whose output is probabilities
(softmax, sigmoid) are how training picks its loss (see archspec.train).
"""

from __future__ import annotations

from archspec.layers import keras_config
from archspec.layers.base import REGISTRY, Arg, LayerKind, Untranslatable, layer, real

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


for _name, (_function, _doc) in ACTIVATIONS.items():
    _args = (Arg("slope", real, 0.01, positional=True, doc="slope for x < 0"),) if _name == "leaky_relu" else ()
    _traits = {
        "linear": _name == "linear",
        "probability_output": _name in PROBABILITIES,
        "idempotent": _name in IDEMPOTENT,
    }
    layer(type(_name, (Activation,), {"name": _name, "summary": _doc, "args": _args, **_traits}))
