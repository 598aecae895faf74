"""The PyTorch model of a typed spec graph, for `bench_gpu_resnet50.py`'s side-by-side timing: the same
layers, shapes and parameter counts as the Flax model (NCHW, `same` padding as XLA/Keras pads it:
the extra row or column at the bottom/right). Not a converter of weights: a model to time.

`flatten` flattens NCHW order (C, H, W), not the Flax model's (H, W, C): the same sizes, another order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "relu": F.relu,
    "relu6": F.relu6,
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,
    "silu": F.silu,
    "swish": F.silu,
    "hard_swish": F.hardswish,
    "hard_sigmoid": F.hardsigmoid,
    "mish": F.mish,
    "softplus": F.softplus,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softmax": lambda x: torch.softmax(x, dim=1),
    "linear": lambda x: x,
}


class Unsupported(Exception):
    """A layer kind this module has no PyTorch layer for."""


def _same(size: int, out: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(attrs, in_shape, out_shape, kernel, stride, dilation=(1, 1)) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) padding of a sliding window."""
    pad = attrs["padding"]
    if pad == "valid":
        return 0, 0, 0, 0
    if pad == "same":
        return (
            *_same(in_shape[0], out_shape[0], kernel[0], stride[0], dilation[0]),
            *_same(in_shape[1], out_shape[1], kernel[1], stride[1], dilation[1]),
        )
    (top, bottom), (left, right) = pad
    return top, bottom, left, right


class _Padded(nn.Module):
    """A conv or pool after explicit padding when it is not the same on both sides."""

    def __init__(self, inner: nn.Module, pads: tuple[int, int, int, int], value: float = 0.0) -> None:
        super().__init__()
        self.inner, self.pads, self.value = inner, pads, value

    def forward(self, x):
        top, bottom, left, right = self.pads
        if any(self.pads):
            x = F.pad(x, (left, right, top, bottom), value=self.value)
        return self.inner(x)


class _Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


class _Standardize(nn.Module):
    """Keras Normalization: fixed mean and variance (2C+1 values)."""

    def __init__(self, channels: int, vector: bool) -> None:
        super().__init__()
        shape = (1, channels) if vector else (1, channels, 1, 1)
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("variance", torch.ones(shape))
        self.register_buffer("count", torch.zeros(()))

    def forward(self, x):
        return (x - self.mean) / torch.sqrt(self.variance.clamp_min(1e-7))


def _conv(attrs, cin, cout, groups, in_shape, out_shape, bias) -> nn.Module:
    kernel, stride, dilation = attrs["kernel"], attrs["stride"], attrs["dilation"]
    top, bottom, left, right = _pads(attrs, in_shape, out_shape, kernel, stride, dilation)
    if (top, left) == (bottom, right):  # symmetric: the convolution pads itself
        return nn.Conv2d(cin, cout, kernel, stride, (top, left), dilation, groups, bias)
    return _Padded(nn.Conv2d(cin, cout, kernel, stride, 0, dilation, groups, bias), (top, bottom, left, right))


def _pool(kind, attrs, in_shape, out_shape) -> nn.Module:
    size, stride = attrs["size"], attrs["stride"] or attrs["size"]
    pads = _pads(attrs, in_shape, out_shape, size, stride)
    top, bottom, left, right = pads
    if kind == "maxpool":
        if (top, left) == (bottom, right) and max(pads) <= min(size) // 2:
            return nn.MaxPool2d(size, stride, (top, left))
        return _Padded(nn.MaxPool2d(size, stride), pads, value=float("-inf"))
    if (top, left) == (bottom, right) and max(pads) <= min(size) // 2:
        return nn.AvgPool2d(size, stride, (top, left), count_include_pad=False)
    return _Padded(nn.AvgPool2d(size, stride), pads)  # counts the padding: a timing model, not a reference


def build_layer(node, in_shapes, out_shape) -> nn.Module | None:
    """The PyTorch module of one node (None for the input). Shapes are channels-last, as inferred."""
    kind, attrs = node.kind, node.attrs
    first = in_shapes[0] if in_shapes else None
    if kind == "input":
        return None
    if kind == "conv":
        return _conv(attrs, first[2], attrs["filters"], attrs["groups"], first, out_shape, attrs["bias"])
    if kind == "dwconv":
        c = first[2]
        return _conv(attrs, c, c * attrs["multiplier"], c, first, out_shape, attrs["bias"])
    if kind == "sepconv":
        c, middle = first[2], first[2] * attrs["multiplier"]
        return nn.Sequential(
            _conv(attrs, c, middle, c, first, out_shape, False),
            nn.Conv2d(middle, attrs["filters"], 1, bias=attrs["bias"]),
        )
    if kind == "dense":
        if len(first) != 1:
            raise Unsupported("`dense` on a feature map (not after gap or flatten)")
        return nn.Linear(first[0], attrs["units"], bias=attrs["bias"])
    if kind == "bn":
        if attrs["center"] != attrs["scale"]:
            raise Unsupported("`bn` with only one of center and scale")
        norm = nn.BatchNorm1d if len(first) == 1 else nn.BatchNorm2d
        return norm(first[-1], eps=attrs["epsilon"], momentum=1 - attrs["momentum"], affine=attrs["center"])
    if kind in ACTIVATIONS:
        return _Fn(ACTIVATIONS[kind])
    if kind == "leaky_relu":
        return _Fn(lambda x, slope=attrs["slope"]: F.leaky_relu(x, slope))
    if kind in ("maxpool", "avgpool"):
        return _pool(kind, attrs, first, out_shape)
    if kind in ("gap", "gmp"):
        keep = attrs["keepdims"]
        reduce = torch.mean if kind == "gap" else torch.amax
        return _Fn(lambda x: reduce(x, dim=(2, 3), keepdim=keep))
    if kind == "flatten":
        return nn.Flatten()
    if kind == "dropout":
        return nn.Dropout(attrs["rate"])
    if kind == "add":
        return _Fn(lambda *xs: sum(xs[1:], xs[0]))
    if kind == "multiply":

        def product(*xs):
            out = xs[0]
            for x in xs[1:]:
                out = out * x
            return out

        return _Fn(product)
    if kind == "concat":
        return _Fn(lambda *xs: torch.cat(xs, dim=1))
    if kind == "zeropad":
        top, bottom, left, right = attrs["padding"]
        return _Fn(lambda x: F.pad(x, (left, right, top, bottom)))
    if kind == "rescale":
        return _Fn(lambda x: x * attrs["scale"] + attrs["offset"])
    if kind == "normalize":
        return _Standardize(first[-1], vector=len(first) == 1)
    if kind == "lrn":
        return nn.LocalResponseNorm(attrs["size"], attrs["alpha"], attrs["beta"], attrs["k"])
    raise Unsupported(f"`{kind}`")


class TorchSpecModel(nn.Module):
    """The typed graph's network in PyTorch; `forward(x, logits=True)` leaves out a final softmax or
    sigmoid, as the JAX train step does (the loss takes logits)."""

    def __init__(self, typed) -> None:
        super().__init__()
        self.layers = nn.ModuleDict()
        self.plan = []
        for node, info in zip(typed.graph.nodes, typed.infos):
            module = build_layer(node, [typed.infos[i].shape for i in node.inputs], info.shape)
            name = f"{node.kind}_{node.id}"
            if module is not None:
                self.layers[name] = module
            self.plan.append((node.kind, tuple(node.inputs), name if module is not None else None))
        self.head = typed.graph.nodes[-1].kind

    def forward(self, x, logits: bool = True):
        return self.trace(x, logits)[-1]

    def trace(self, x, logits: bool = True) -> list:
        """Every node's output in graph order (the input first)."""
        values = []
        last = len(self.plan) - 1
        for index, (kind, inputs, name) in enumerate(self.plan):
            if index == 0:
                values.append(x)
            elif index == last and logits and kind in ("softmax", "sigmoid"):
                values.append(values[inputs[0]])
            else:
                values.append(self.layers[name](*(values[i] for i in inputs)))
        return values


def count_values(model: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) values, counted as Keras does: BatchNorm's running mean and
    variance are non-trainable parameters (its step counter is not)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return trainable, buffers
