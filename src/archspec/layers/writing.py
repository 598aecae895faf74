"""What several kinds' code facets share: Keras/TensorFlow `same` padding and how PyTorch says it,
and the helper definitions a written PyTorch file may need. No layer kinds here."""

from __future__ import annotations

from typing import Any

from archspec.layers.base import Code, Module, Op, Varies, call, differs, holds, is_a, python, settled, square

# Defined in a written PyTorch file when a `same` window's padding depends on the input's size and
# that size differs between the calls of one function.
TORCH_PAD_SAME = '''def pad_same(x, kernel, stride, dilation=1, value=0.0):
    """Pad NCHW `x` as Keras/TensorFlow `same` does: the odd pixel goes to the bottom and right."""
    pads = []
    sizes = zip(x.shape[2:], _pair(kernel), _pair(stride), _pair(dilation))
    for size, k, s, d in reversed(list(sizes)):
        total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)'''

# An average over real pixels only (the spec's and Keras' rule) where PyTorch cannot pad itself:
# padding on one side only, or more than half the window.
TORCH_AVG_POOL = '''def avg_pool_padded(x, kernel, stride, pads):
    """Average pooling of NCHW `x` after padding `pads` (left, right, top, bottom), dividing by
    the real pixels under each window, not the padding."""
    total = F.avg_pool2d(F.pad(x, pads), kernel, stride, divisor_override=1)
    ones = torch.ones_like(x[:1, :1])
    count = F.avg_pool2d(F.pad(ones, pads), kernel, stride, divisor_override=1)
    return total / count'''

# A learnable per-channel scale and/or shift, for a normalization PyTorch cannot make with only one
# of the two (its `affine` learns both).
TORCH_CHANNEL_AFFINE = '''class ChannelAffine(nn.Module):
    """A learnable scale and/or shift per channel (dimension 1)."""

    def __init__(self, channels, scale=True, shift=True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels)) if scale else None
        self.bias = nn.Parameter(torch.zeros(channels)) if shift else None

    def forward(self, x):
        view = (1, -1) + (1,) * (x.dim() - 2)
        if self.weight is not None:
            x = x * self.weight.view(view)
        if self.bias is not None:
            x = x + self.bias.view(view)
        return x'''

# A layer on the channels of each pixel (nn.Linear, nn.LayerNorm) applied to an NCHW map.
CHANNELS_LAST = "{m}({0}.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)"
RNGS = Code("rngs")  # the `rngs=rngs` every written Flax module with weights takes


def inputs_list(count: int) -> str:
    """`[{0}, {1}, ...]`: a step's inputs as one list (Keras merges, `torch.cat`)."""
    return "[" + ", ".join(f"{{{i}}}" for i in range(count)) + "]"


def same_pads(size: Any, kernel: Any, stride: Any, dilation: Any) -> tuple[Any, Any]:
    """(before, after) padding of one dimension under `same`, as Keras/TensorFlow/XLA pad it."""
    out = -(-size // stride)
    total = (out - 1) * stride + dilation * (kernel - 1) + 1 - size
    total = total if total > 0 else 0
    return settled(total // 2), settled(total - total // 2)


def torch_padding(
    attrs: dict, kernel: tuple, stride: tuple, dilation: tuple, in_shape: tuple, fill: str | None = None
) -> tuple[list, Any]:
    """How a PyTorch conv or pool takes the spec's padding: (steps before it, its `padding=` as code).
    `fill` is the padding value where it is not zero (`-math.inf` for max pooling)."""
    pad = attrs["padding"]
    value = "" if fill is None else f", value={fill}"
    spacing = f", {square(dilation)}" if differs(dilation, (1, 1)) or value else ""
    at_run_time = Op(f"pad_same({{0}}, {square(kernel)}, {square(stride)}{spacing}{value})", helpers=(TORCH_PAD_SAME,))
    if is_a(pad, str) and holds(lambda: pad == "valid"):
        return [], None
    if is_a(pad, str) and not holds(lambda: pad == "same"):  # `same` in some calls, `valid` in others
        if fill is None and holds(lambda: stride == (1, 1)):
            return [], Code(python(pad))  # PyTorch's convolutions take both words at stride 1
        padded = at_run_time.expression
        return [Op(f'{padded} if {python(pad)} == "same" else {{0}}', helpers=at_run_time.helpers)], None
    if is_a(pad, str):
        if fill is None and holds(lambda: stride == (1, 1)) and not isinstance(kernel[0], int | tuple):
            return [], Code('"same"')  # a kernel size that differs between calls: PyTorch pads `same` itself
        try:
            (top, bottom), (left, right) = (
                same_pads(n, k, s, d) for n, k, s, d in zip(in_shape[:2], kernel, stride, dilation)
            )
            if holds(lambda: top == bottom == left == right == 0):
                return [], None
            if top == bottom and left == right and fill is None:
                return [], Code(square((top, left)))
        except Varies:  # the input's size differs between calls: pad at run time
            return [at_run_time], None
    else:
        (top, bottom), (left, right) = pad
    if holds(lambda: top == bottom == left == right == 0):
        return [], None
    if top == bottom and left == right and (fill is None or (2 * top <= kernel[0] and 2 * left <= kernel[1])):
        return [], Code(square((top, left)))
    value = "" if fill is None else f", value={fill}"
    return [Op(f"F.pad({{0}}, {python((left, right, top, bottom))}{value})")], None


def torch_momentum(momentum):
    """PyTorch's BatchNorm momentum is the weight of the new batch: 1 - Keras' momentum."""
    return float(f"{1 - momentum:.12g}") if isinstance(momentum, float) else 1 - momentum


def torch_affine(norm: str, attrs: dict, channels, apply: str = "{m}({0})") -> list[Module]:
    """A PyTorch normalization `norm(...)` (without its `affine=` keyword) with the spec's learned
    scale (`scale`) and shift (`center`): PyTorch learns both or neither, so one alone is a module
    of its own after it."""
    center, scale = attrs["center"], attrs["scale"]
    if center and scale:
        return [Module(norm + ")", apply=apply)]
    affine = (
        []
        if not (center or scale)
        else [
            Module(
                call("ChannelAffine", channels, scale=scale, shift=center),
                name="affine",
                helpers=(TORCH_CHANNEL_AFFINE,),
            )
        ]
    )
    return [Module(norm + ", affine=False)", apply=apply), *affine]
