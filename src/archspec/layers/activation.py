"""Activations, as layers (`relu`) or as trailing words after a conv or dense (`conv 64 3 relu`).

The table maps each name to its `jax.nn` function; the kinds whose output is probabilities
(softmax, sigmoid) are how training picks its loss (see archspec.train).
"""

from __future__ import annotations

from archspec.layers.base import Arg, Code, LayerKind, Module, Op, call, layer, real

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


for _name, (_function, _doc) in ACTIVATIONS.items():
    _args = (Arg("slope", real, 0.01, positional=True, doc="slope for x < 0"),) if _name == "leaky_relu" else ()
    _traits = {
        "linear": _name == "linear",
        "probability_output": _name in PROBABILITIES,
        "idempotent": _name in IDEMPOTENT,
    }
    layer(type(_name, (Activation,), {"name": _name, "summary": _doc, "args": _args, **_traits}))
