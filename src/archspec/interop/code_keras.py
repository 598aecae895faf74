"""Keras 3 code for a lowered spec: functional API, `build_model()` returns a `keras.Model`."""

from __future__ import annotations

from archspec.errors import UserError
from archspec.interop.code_common import FunctionalWriter, call, literal
from archspec.interop.lowering import LayerOp, Sym
from archspec.layers import ACTIVATIONS

# Spec activation -> Keras activation name (Keras 3 knows every one of these by name).
KERAS_ACTIVATIONS = {name: name for name in ACTIVATIONS} | {"hard_swish": "hard_silu"}

LRN = '''class LocalResponseNorm(keras.layers.Layer):
    """AlexNet's local response normalization across channels (PyTorch's formula)."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def call(self, x):
        squares = keras.ops.pad(x * x, [(0, 0), (0, 0), (0, 0), (self.size // 2, (self.size - 1) // 2)])
        window = sum(squares[..., i : i + x.shape[-1]] for i in range(self.size))
        return x / (self.k + self.alpha / self.size * window) ** self.beta'''

ZERO_PADDING = '''def zero_padding(padding):
    """The spec's `zeropad N`, `HxW` or `TxBxLxR` as ((top, bottom), (left, right))."""
    sides = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    if len(sides) == 2:
        sides = (sides[0], sides[0], sides[1], sides[1])
    return (sides[0], sides[1]), (sides[2], sides[3])'''


PAD_NOTE = "zeros pad like the spec's -inf here when the input is non-negative (after relu)"


def _keyword(value, default) -> str | None:
    return None if not isinstance(value, Sym) and value == default else literal(value)


class KerasWriter(FunctionalWriter):
    target = "keras"

    def imports(self) -> list[str]:
        return ["import keras", "from keras import layers"]

    def helper_source(self) -> list[str]:
        sources = super().helper_source()
        return sources + [text for key, text in (("zeropad", ZERO_PADDING), ("lrn", LRN)) if key in self.helpers]

    def model(self, body: list[str]) -> list[str]:
        shape = ", ".join(map(str, self.program.input_shape)) + ("," if len(self.program.input_shape) == 1 else "")
        return [
            "def build_model():",
            f"    inputs = keras.Input(shape=({shape}))",
            "    x = inputs",
            *body,
            "    return keras.Model(inputs, x)",
        ]

    def merge(self, kind: str, branches: list[str]) -> str:
        layer = {"add": "Add", "concat": "Concatenate", "multiply": "Multiply"}[kind]
        return f"layers.{layer}()([{', '.join(branches)}])"

    def _padded(self, attrs: dict) -> tuple[str | None, str | None]:
        """(a ZeroPadding2D to run first, the `padding=` keyword): Keras layers take no numeric padding."""
        pad = attrs["padding"]
        if isinstance(pad, (Sym, str)):
            return None, _keyword(pad, "valid")
        (top, bottom), (left, right) = pad
        return (None if top == bottom == left == right == 0 else self._zeropad((top, bottom, left, right))), None

    def layer(self, op: LayerOp, x: str, out: str) -> list[str]:
        a, kind = op.attrs, op.kind
        if kind in ("conv", "dwconv", "sepconv"):
            before, padding = self._padded(a)
            common = dict(
                strides=_keyword(a["stride"], (1, 1)),
                padding=padding,
                dilation_rate=_keyword(a["dilation"], (1, 1)),
            )
            if kind == "conv":
                text = call(
                    "layers.Conv2D",
                    literal(a["filters"]),
                    literal(a["kernel"]),
                    **common,
                    groups=_keyword(a["groups"], 1),
                    use_bias=_keyword(a["bias"], True),
                )
            else:
                head = [literal(a["filters"])] if kind == "sepconv" else []
                layer = "SeparableConv2D" if kind == "sepconv" else "DepthwiseConv2D"
                text = call(
                    f"layers.{layer}",
                    *head,
                    literal(a["kernel"]),
                    **common,
                    depth_multiplier=_keyword(a["multiplier"], 1),
                    use_bias=_keyword(a["bias"], True),
                )
            if before:
                return [f"{out} = {before}({x})", f"{out} = {text}({out})"]
            return [f"{out} = {text}({x})"]
        if kind in ("maxpool", "avgpool"):
            layer = "MaxPooling2D" if kind == "maxpool" else "AveragePooling2D"
            stride = None if a["stride"] is None else literal(a["stride"])
            before, padding = self._padded(a)
            text = call(f"layers.{layer}", literal(a["size"]), strides=stride, padding=padding)
            if not before:
                return [f"{out} = {text}({x})"]
            if kind == "avgpool":
                raise UserError("Keras cannot leave numeric padding out of an average (`avgpool padding=N`)")
            # Keras pools take no numeric padding: a ZeroPadding2D first, with a comment saying when it is exact.
            return [f"# {PAD_NOTE}", f"{out} = {before}({x})", f"{out} = {text}({out})"]
        simple = {
            "dense": lambda: call("layers.Dense", literal(a["units"]), use_bias=_keyword(a["bias"], True)),
            "flatten": lambda: "layers.Flatten()",
            "gap": lambda: call("layers.GlobalAveragePooling2D", keepdims=_keyword(a["keepdims"], False)),
            "gmp": lambda: call("layers.GlobalMaxPooling2D", keepdims=_keyword(a["keepdims"], False)),
            "dropout": lambda: call("layers.Dropout", literal(a["rate"])),
            "bn": lambda: call(
                "layers.BatchNormalization",
                momentum=_keyword(a["momentum"], 0.99),
                epsilon=_keyword(a["epsilon"], 1e-3),
                center=_keyword(a["center"], True),
                scale=_keyword(a["scale"], True),
            ),
            "normalize": lambda: "layers.Normalization()",
            "rescale": lambda: call("layers.Rescaling", literal(a["scale"]), offset=_keyword(a["offset"], 0.0)),
            "zeropad": lambda: self._zeropad(a["padding"]),
            "lrn": lambda: self._lrn(a),
            "leaky_relu": lambda: call("layers.LeakyReLU", negative_slope=literal(a["slope"])),
        }
        if kind in simple:
            return [f"{out} = {simple[kind]()}({x})"]
        if kind in KERAS_ACTIVATIONS:
            return [f'{out} = layers.Activation("{KERAS_ACTIVATIONS[kind]}")({x})']
        raise UserError(f"`{kind}` has no Keras equivalent in the exporter")

    def _zeropad(self, padding) -> str:
        if isinstance(padding, Sym):
            self.helpers.add("zeropad")
            return f"layers.ZeroPadding2D(zero_padding({padding.text}))"
        top, bottom, left, right = padding
        if top == bottom == left == right:
            return f"layers.ZeroPadding2D({top})"
        return f"layers.ZeroPadding2D({literal(((top, bottom), (left, right)))})"

    def _lrn(self, a: dict) -> str:
        self.helpers.add("lrn")
        defaults = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
        return call("LocalResponseNorm", **{k: _keyword(a[k], d) for k, d in defaults.items()})
