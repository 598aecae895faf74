"""Activations, as layers (`relu`) or as trailing words after a conv or dense (`conv 64 3 relu`).

The table maps each name to its `jax.nn` function; the kinds whose output is probabilities
(softmax, sigmoid) are how training picks its loss (see archspec.train).
"""

from __future__ import annotations

from archspec.layers.base import Arg, LayerKind, layer, real

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


PROBABILITIES = frozenset({"softmax", "sigmoid"})
IDEMPOTENT = frozenset({"relu", "relu6", "linear"})  # f(f(x)) = f(x)


class Activation(LayerKind):
    family = "activation"
    keras_name = "Activation"
    trailing = True

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
        "sums_to_one": _name == "softmax",
        "idempotent": _name in IDEMPOTENT,
    }
    layer(type(_name, (Activation,), {"name": _name, "summary": _doc, "args": _args, **_traits}))
