"""PyTorch code for a lowered spec: macros become functions returning `nn.Sequential`, merge blocks a
small `Merge` module, and lazy layers (`nn.LazyConv2d`...) infer input channels as Keras does.
Channels first (N, C, H, W); Keras' `same` padding with a stride pads like TensorFlow (`SamePad`)."""

from __future__ import annotations

from archspec.errors import UserError
from archspec.interop.code_common import assemble, call, literal
from archspec.interop.lowering import STREAM, CallOp, Function, IfOp, LayerOp, MergeOp, Program, RepeatOp, Sym

ACTIVATIONS = {
    "relu": "nn.ReLU()",
    "relu6": "nn.ReLU6()",
    "elu": "nn.ELU()",
    "selu": "nn.SELU()",
    "gelu": "nn.GELU()",  # exact, as the spec's gelu (Keras' and PyTorch's default)
    "silu": "nn.SiLU()",
    "swish": "nn.SiLU()",
    "hard_swish": "nn.Hardswish()",
    "hard_sigmoid": "nn.Hardsigmoid()",
    "mish": "nn.Mish()",
    "softplus": "nn.Softplus()",
    "tanh": "nn.Tanh()",
    "sigmoid": "nn.Sigmoid()",
    "softmax": "nn.Softmax(dim=1)",
    "linear": "nn.Identity()",
}

HELPERS = {
    "merge": '''class Merge(nn.Module):
    """Runs every branch on the same input and merges them: "add", "multiply" or "concat"."""

    def __init__(self, kind, *branches):
        super().__init__()
        self.kind = kind
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        outputs = [branch(x) for branch in self.branches]
        if self.kind == "concat":
            return torch.cat(outputs, dim=1)
        result = outputs[0]
        for output in outputs[1:]:
            result = result + output if self.kind == "add" else result * output
        return result''',
    "same": '''class SamePad(nn.Module):
    """Keras/TensorFlow `same` padding for a strided window: the odd pixel goes bottom and right."""

    def __init__(self, kernel, stride, dilation=1, value=0.0):
        super().__init__()
        self.kernel, self.stride, self.dilation = (nn.modules.utils._pair(v) for v in (kernel, stride, dilation))
        self.value = value

    def forward(self, x):
        pads = []
        for size, k, s, d in reversed(list(zip(x.shape[2:], self.kernel, self.stride, self.dilation))):
            total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return nn.functional.pad(x, pads, value=self.value)''',
    "depthwise": '''class LazyDepthwiseConv2d(nn.LazyConv2d):
    """One filter group per input channel (x `multiplier`), sized on the first call."""

    def __init__(self, kernel_size, multiplier=1, **kwargs):
        super().__init__(1, kernel_size, **kwargs)
        self.multiplier = multiplier

    def initialize_parameters(self, input, *args, **kwargs):
        if self.has_uninitialized_params():
            self.groups = input.shape[1]
            self.out_channels = input.shape[1] * self.multiplier
        super().initialize_parameters(input, *args, **kwargs)''',
    "zeropad": '''def zero_pad(padding):
    """The spec's `zeropad N`, `HxW` or `TxBxLxR` (top, bottom, left, right) as a module."""
    sides = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    if len(sides) == 2:
        sides = (sides[0], sides[0], sides[1], sides[1])
    top, bottom, left, right = sides
    return nn.ZeroPad2d((left, right, top, bottom))''',
    "rescale": '''class Rescale(nn.Module):
    """x * scale + offset (Keras Rescaling)."""

    def __init__(self, scale, offset=0.0):
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, x):
        return x * self.scale + self.offset''',
    "normalize": '''class Normalize(nn.Module):
    """Fixed per-channel (x - mean) / sqrt(variance), as Keras' Normalization."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels, 1, 1))
        self.register_buffer("variance", torch.ones(channels, 1, 1))
        self.register_buffer("count", torch.zeros(()))

    def forward(self, x):
        return (x - self.mean) / torch.sqrt(self.variance.clamp(min=1e-7))''',
}


def _pair(value) -> str:
    return literal(value)


class TorchWriter:
    target = "pytorch"

    def __init__(self, program: Program, name: str, typed) -> None:
        self.program = program
        self.name = name
        self.helpers: set[str] = set(program.helpers)

    def write(self) -> str:
        functions = [self.function(f) for f in self.program.functions]
        model = self.model()
        blocks = [HELPERS[key] for key in HELPERS if key in self.helpers]
        if "make_divisible" in self.helpers:
            from archspec.interop.code_common import MAKE_DIVISIBLE

            blocks.insert(0, MAKE_DIVISIBLE)
        if any(STREAM in block for block in [*functions, model]):
            raise UserError(
                "a spec that reads the stream's `channels`, `height` or `width` cannot be exported to "
                "PyTorch yet (its lazy modules learn their sizes only when run)",
                hint="export it to keras or flax, or pass the size as a macro argument",
            )
        head = f'"""Generated by `cnn-arch export {self.name} --to pytorch`."""'
        return assemble(head, ["import math", "import torch", "from torch import nn"], [*blocks, *functions, model])

    def function(self, function: Function) -> str:
        params = ", ".join(p if d is None else f"{p}={d}" for p, d in function.params)
        lines = [f"def {function.name}({params}):"]
        for param, default in function.late_defaults:
            lines += [f"    if {param} is None:", f"        {param} = {default}"]
        return "\n".join([*lines, *self.sequential(function.body, 1, "return ")])

    def model(self) -> str:
        h, w, c = (*self.program.input_shape, 1, 1)[:3] if len(self.program.input_shape) == 3 else (0, 0, 0)
        shape = f"(N, {c}, {h}, {w})" if h else f"(N, {self.program.input_shape[0]})"
        lines = [
            "def build_model():",
            f'    """The network, for inputs {shape}; one batch through it sizes the lazy layers."""',
        ]
        return "\n".join([*lines, *self.sequential(self.program.body, 1, "return ")])

    def sequential(self, ops: list, depth: int, prefix: str = "") -> list[str]:
        """`nn.Sequential(...)` over `ops`, one module per line."""
        pad = "    " * depth
        lines = [f"{pad}{prefix}nn.Sequential("]
        for op in ops:
            lines += self.module(op, depth + 1)
        lines.append(f"{pad})")
        return lines

    def one_module(self, ops: list, depth: int) -> list[str]:
        """`ops` as one module expression (ending in a comma): the module itself when there is one."""
        lines = [line for op in ops for line in self.module(op, depth)]
        if len(ops) == 1 and (isinstance(ops[0], CallOp) or (isinstance(ops[0], LayerOp) and len(lines) == 1)):
            return lines
        lines = self.sequential(ops, depth)
        lines[-1] += ","
        return lines

    def module(self, op, depth: int) -> list[str]:
        pad = "    " * depth
        if isinstance(op, LayerOp):
            return [f"{pad}{m}," for m in self.layer(op)]
        if isinstance(op, CallOp):
            return [f"{pad}{op.name}({', '.join([*op.args, *(f'{k}={v}' for k, v in op.kwargs)])}),"]
        if isinstance(op, RepeatOp):
            inner = self.one_module(op.body, depth + 1)
            inner[-1] = inner[-1].rstrip(",")
            return [f"{pad}*[", *inner, f"{pad}    for _ in range({op.count})", f"{pad}],"]
        if isinstance(op, MergeOp):
            self.helpers.add("merge")
            lines = [f"{pad}Merge(", f'{pad}    "{op.kind}",']
            for branch in op.branches:
                lines += self.one_module(branch, depth + 1) if branch else [f"{pad}    nn.Identity(),"]
            return [*lines, f"{pad}),"]
        if isinstance(op, IfOp):  # `*([...] if test else [...])`: the chosen clause's modules
            lines = [f"{pad}*("]
            for test, body in op.clauses:
                lines += [
                    f"{pad}    [",
                    *(line for inner in body for line in self.module(inner, depth + 2)),
                    f"{pad}    ]",
                ]
                lines += [] if test is None else [f"{pad}    if {test}", f"{pad}    else"]
            if op.clauses[-1][0] is not None:
                lines.append(f"{pad}    []")
            return [*lines, f"{pad}),"]
        raise TypeError(op)

    def layer(self, op: LayerOp) -> list[str]:
        a, kind = op.attrs, op.kind
        if kind in ("conv", "dwconv", "sepconv"):
            before, padding = self._padding(a, a["kernel"], a["stride"], a["dilation"])
            common = dict(
                stride=None if a["stride"] == (1, 1) else _pair(a["stride"]),
                padding=padding,
                dilation=None if a["dilation"] == (1, 1) else _pair(a["dilation"]),
            )
            if kind == "conv":
                groups = None if a["groups"] == 1 else literal(a["groups"])
                bias = None if a["bias"] is True else literal(a["bias"])
                return [
                    *before,
                    call(
                        "nn.LazyConv2d", literal(a["filters"]), _pair(a["kernel"]), **common, groups=groups, bias=bias
                    ),
                ]
            self.helpers.add("depthwise")
            multiplier = None if a["multiplier"] == 1 else literal(a["multiplier"])
            bias = None if kind == "dwconv" and a["bias"] is True else literal(kind == "dwconv" and a["bias"])
            depthwise = call("LazyDepthwiseConv2d", _pair(a["kernel"]), multiplier=multiplier, **common, bias=bias)
            if kind == "dwconv":
                return [*before, depthwise]
            pointwise_bias = None if a["bias"] is True else literal(a["bias"])
            return [*before, depthwise, call("nn.LazyConv2d", literal(a["filters"]), "1", bias=pointwise_bias)]
        if kind in ("maxpool", "avgpool"):
            stride = a["stride"] or a["size"]
            if kind == "avgpool" and a["padding"] != "valid":
                raise UserError("PyTorch's average pooling cannot leave padding out of the average like Keras")
            before, padding = self._padding(a, a["size"], stride, (1, 1), value="-math.inf")
            pool = "nn.MaxPool2d" if kind == "maxpool" else "nn.AvgPool2d"
            return [*before, call(pool, _pair(a["size"]), stride=_pair(stride), padding=padding)]
        if kind == "dense":
            if len(op.shape) != 1:
                raise UserError(
                    "`dense` on an HxWxC input (per pixel) has no direct PyTorch equivalent; use `conv U 1`"
                )
            return [call("nn.LazyLinear", literal(a["units"]), bias=None if a["bias"] is True else literal(a["bias"]))]
        if kind in ("gap", "gmp"):
            pool = "nn.AdaptiveAvgPool2d(1)" if kind == "gap" else "nn.AdaptiveMaxPool2d(1)"
            return [pool] if a["keepdims"] is True else [pool, "nn.Flatten()"]
        if kind == "bn":
            bn = "nn.LazyBatchNorm2d" if len(op.shape) == 3 else "nn.LazyBatchNorm1d"
            if a["center"] is not True or a["scale"] is not True:
                raise UserError(
                    "PyTorch's BatchNorm learns both scale and shift; `center=false`/`scale=false` cannot be exported"
                )
            return [call(bn, eps=literal(a["epsilon"]), momentum=literal(round(1 - a["momentum"], 6)))]
        if kind == "zeropad":
            if isinstance(a["padding"], Sym):
                self.helpers.add("zeropad")
                return [f"zero_pad({a['padding'].text})"]
            top, bottom, left, right = a["padding"]
            return [f"nn.ZeroPad2d(({left}, {right}, {top}, {bottom}))"]
        if kind == "flatten":
            return ["nn.Flatten()"]
        if kind == "dropout":
            return [f"nn.Dropout({literal(a['rate'])})"]
        if kind == "lrn":
            return [
                call(
                    "nn.LocalResponseNorm",
                    literal(a["size"]),
                    alpha=literal(a["alpha"]),
                    beta=literal(a["beta"]),
                    k=literal(a["k"]),
                )
            ]
        if kind == "rescale":
            self.helpers.add("rescale")
            return [call("Rescale", literal(a["scale"]), offset=None if not a["offset"] else literal(a["offset"]))]
        if kind == "normalize":
            self.helpers.add("normalize")
            return [f"Normalize({op.shape[-1]})"]
        if kind == "leaky_relu":
            return [f"nn.LeakyReLU({literal(a['slope'])})"]
        if kind in ACTIVATIONS:
            return [ACTIVATIONS[kind]]
        raise UserError(f"`{kind}` has no PyTorch equivalent in the exporter")

    def _padding(self, a: dict, kernel, stride, dilation, value: str | None = None) -> tuple[list[str], str | None]:
        """(modules to run first, the `padding=` keyword)."""
        pad = a["padding"]
        if isinstance(pad, Sym):
            return [], pad.text
        if pad == "valid":
            return [], None
        if pad == "same":
            if stride == (1, 1) and value is None:
                return [], '"same"'
            self.helpers.add("same")
            extra = {"value": value} if value else {}
            return [call("SamePad", _pair(kernel), _pair(stride), _pair(dilation), **extra)], None
        (top, bottom), (left, right) = pad
        if top == bottom and left == right:
            return [], literal((top, left))
        return [f"nn.ZeroPad2d(({left}, {right}, {top}, {bottom}))"], None
