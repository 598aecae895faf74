"""Flax code for a lowered spec: a `flax.linen` module with a compact `__call__`. Linen's layers
infer their input sizes, so each spec macro can stay a plain function called inside `__call__`.
BatchNorm statistics land in the `batch_stats` collection, fixed input statistics in `stats`."""

from __future__ import annotations

from archspec.errors import UserError
from archspec.interop.code_common import FunctionalWriter, call, literal
from archspec.interop.lowering import LayerOp, Sym
from archspec.layers import ACTIVATIONS

PAIR = '''def pair(size):
    """A kernel or window size as (height, width): linen reads a bare integer as a 1-D size."""
    return (size, size) if isinstance(size, int) else tuple(size)'''

ZERO_PAD = '''def zero_pad(x, padding):
    """The spec's `zeropad N`, `HxW` or `TxBxLxR` (top, bottom, left, right) on an NHWC batch."""
    sides = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    if len(sides) == 2:
        sides = (sides[0], sides[0], sides[1], sides[1])
    return jnp.pad(x, ((0, 0), (sides[0], sides[1]), (sides[2], sides[3]), (0, 0)))'''

LRN = '''def local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """AlexNet's local response normalization across channels (PyTorch's formula)."""
    squares = jnp.pad(x * x, ((0, 0), (0, 0), (0, 0), (size // 2, (size - 1) // 2)))
    window = sum(squares[..., i : i + x.shape[-1]] for i in range(size))
    return x / (k + alpha / size * window) ** beta'''

NORMALIZE = '''class Normalize(nn.Module):
    """Fixed per-channel (x - mean) / sqrt(variance), as Keras' Normalization."""

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        mean = self.variable("stats", "mean", jnp.zeros, (channels,)).value
        variance = self.variable("stats", "variance", jnp.ones, (channels,)).value
        self.variable("stats", "count", jnp.zeros, ())
        return (x - mean) / jnp.sqrt(jnp.maximum(variance, 1e-7))'''


def _padding(value) -> str:
    if isinstance(value, Sym):
        return f"{value.text}.upper()"
    if isinstance(value, str):
        return f'"{value.upper()}"'
    (top, bottom), (left, right) = value
    return f"(({top}, {bottom}), ({left}, {right}))"


def _size(value, writer) -> str:
    if isinstance(value, Sym):
        writer.helpers.add("pair")
        return f"pair({value.text})"
    return "(" + ", ".join(map(str, value)) + ")"


class FlaxWriter(FunctionalWriter):
    target = "flax"
    extra_params = ", train=False"
    call_extra = ", train=train"

    def imports(self) -> list[str]:
        return ["import flax.linen as nn", "import jax", "import jax.numpy as jnp"]

    def helper_source(self) -> list[str]:
        sources = super().helper_source()
        known = (("pair", PAIR), ("zeropad", ZERO_PAD), ("lrn", LRN), ("normalize", NORMALIZE))
        return sources + [text for key, text in known if key in self.helpers]

    def model(self, body: list[str]) -> list[str]:
        shape = ", ".join(map(str, self.program.input_shape))
        return [
            "class Model(nn.Module):",
            f'    """Call on a batch of shape (N, {shape}).',
            "",
            "    `train=True` updates the BatchNorm statistics and applies dropout.",
            '    """',
            "",
            "    @nn.compact",
            "    def __call__(self, x, train=False):",
            *["    " + line for line in body],
            "        return x",
        ]

    def merge(self, kind: str, branches: list[str]) -> str:
        if kind == "concat":
            return f"jnp.concatenate([{', '.join(branches)}], axis=-1)"
        return (" + " if kind == "add" else " * ").join(branches)

    def layer(self, op: LayerOp, x: str, out: str) -> list[str]:
        a, kind = op.attrs, op.kind
        if kind in ("conv", "dwconv", "sepconv"):
            common = dict(
                strides=None if a["stride"] == (1, 1) else literal(a["stride"]),
                padding=_padding(a["padding"]),
                kernel_dilation=None if a["dilation"] == (1, 1) else literal(a["dilation"]),
            )
            kernel = _size(a["kernel"], self)
            if kind == "conv":
                groups = None if a["groups"] == 1 else literal(a["groups"])
                text = call(
                    "nn.Conv",
                    literal(a["filters"]),
                    kernel,
                    **common,
                    feature_group_count=groups,
                    use_bias=None if a["bias"] is True else literal(a["bias"]),
                )
                return [f"{out} = {text}({x})"]
            # Depthwise: one group per input channel; sepconv adds the pointwise 1x1 after it.
            multiplier = "" if a["multiplier"] == 1 else f" * {literal(a['multiplier'])}"
            depthwise = call(
                "nn.Conv",
                f"{x}.shape[-1]{multiplier}",
                kernel,
                **common,
                feature_group_count=f"{x}.shape[-1]",
                use_bias=None if kind == "dwconv" and a["bias"] is True else literal(kind == "dwconv" and a["bias"]),
            )
            lines = [f"{out} = {depthwise}({x})"]
            if kind == "sepconv":
                bias = None if a["bias"] is True else literal(a["bias"])
                lines.append(f"{out} = {call('nn.Conv', literal(a['filters']), '(1, 1)', use_bias=bias)}({out})")
            return lines
        if kind in ("maxpool", "avgpool"):
            stride = a["stride"] if a["stride"] is not None else a["size"]
            extra = {"count_include_pad": "False"} if kind == "avgpool" else {}
            pool = "nn.max_pool" if kind == "maxpool" else "nn.avg_pool"
            text = call(
                pool, x, _size(a["size"], self), strides=_size(stride, self), padding=_padding(a["padding"]), **extra
            )
            return [f"{out} = {text}"]
        if kind == "zeropad":
            if isinstance(a["padding"], Sym):
                self.helpers.add("zeropad")
                return [f"{out} = zero_pad({x}, {a['padding'].text})"]
            top, bottom, left, right = a["padding"]
            return [f"{out} = jnp.pad({x}, ((0, 0), ({top}, {bottom}), ({left}, {right}), (0, 0)))"]
        simple = {
            "dense": lambda: (
                f"{call('nn.Dense', literal(a['units']), use_bias=None if a['bias'] is True else literal(a['bias']))}({x})"
            ),
            "flatten": lambda: f"{x}.reshape(({x}.shape[0], -1))",
            "gap": lambda: call(
                f"{x}.mean", "axis=(1, 2)", keepdims=None if a["keepdims"] is False else literal(a["keepdims"])
            ),
            "gmp": lambda: call(
                f"{x}.max", "axis=(1, 2)", keepdims=None if a["keepdims"] is False else literal(a["keepdims"])
            ),
            "dropout": lambda: f"nn.Dropout({literal(a['rate'])}, deterministic=not train)({x})",
            "bn": lambda: self._batchnorm(a) + f"({x})",
            "rescale": lambda: f"{x} * {literal(a['scale'])}" + (f" + {literal(a['offset'])}" if a["offset"] else ""),
            "lrn": lambda: self._lrn(a, x),
            "normalize": lambda: self._normalize(x),
            "leaky_relu": lambda: f"jax.nn.leaky_relu({x}, negative_slope={literal(a['slope'])})",
            "gelu": lambda: f"jax.nn.gelu({x}, approximate=False)",  # the spec's gelu is the exact one
        }
        if kind in simple:
            return [f"{out} = {simple[kind]()}"]
        if kind in ACTIVATIONS:
            function = ACTIVATIONS[kind][0]
            return [f"{out} = jax.nn.{function}({x})"] if function else []
        raise UserError(f"`{kind}` has no Flax equivalent in the exporter")

    def _batchnorm(self, a: dict) -> str:
        return call(
            "nn.BatchNorm",
            "use_running_average=not train",
            momentum=literal(a["momentum"]),
            epsilon=literal(a["epsilon"]),
            use_bias=None if a["center"] is True else literal(a["center"]),
            use_scale=None if a["scale"] is True else literal(a["scale"]),
        )

    def _lrn(self, a: dict, x: str) -> str:
        self.helpers.add("lrn")
        defaults = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
        return call("local_response_norm", x, **{k: None if a[k] == d else literal(a[k]) for k, d in defaults.items()})

    def _normalize(self, x: str) -> str:
        self.helpers.add("normalize")
        return f"Normalize()({x})"
