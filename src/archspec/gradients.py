"""Convolutions and max pooling whose gradients (and, for depthwise convolutions, forward pass) are
written out for XLA:CPU, which computes several of them far slower than the forward pass.

Measured on XLA:CPU (JAX 0.10; figures in docs/performance.md):
- A depthwise convolution's weight gradient is lowered as a dense C x C convolution whose diagonal
  is kept (C times the work), and its forward pass runs at a fraction of a GFLOP/s. Here each kernel
  tap is a strided slice of the input times one weight per channel: the forward pass sums the taps,
  the weight gradient reduces each tap against the output gradient, all in fused elementwise loops.
- The input gradient of a strided convolution is a convolution of the zero-dilated output gradient,
  which XLA:CPU runs in its slow generic loop. Here it is the output gradient times the kernel (one
  matrix product for all taps), each tap's share put back at its stride by a `pad` with interior
  zeros, and the shares summed.
- A convolution whose input is smaller than its window (ResNet's last stage at 64x64 input: 3x3 on
  2x2) has its operands swapped by XLA's simplifier, and the swapped one runs in the generic loop
  (40x slower). Here the input is padded beforehand, and the input gradient goes by taps as above.
- Max pooling's gradient is a `select_and_scatter` fed by index arrays as large as the input, the
  largest cost of a small CNN's step. Here each window position is compared with the window's
  maximum in order, the first match takes the gradient (as XLA's and PyTorch's own), and the
  shares are put back as above.

- A convolution of an image's few channels runs at a few GFLOP/s in XLA:CPU; here it is one matrix
  product of the unfolded windows (im2col), differentiated by JAX.
- A 1x1 convolution's gradients go through transposes to XLA's convolution; as a matrix product
  (after a strided slice) they take half to a third of the CPU time.

Everything else is XLA's own (`jax.vjp` of `lax.conv_general_dilated`). The hand-written rules are
used on the CPU only, decided when a function is traced; other platforms get `lax`'s. Tests compare
every rule with `jax.grad` of `lax.conv_general_dilated` / `lax.reduce_window` on random shapes.
"""

from __future__ import annotations

import contextlib
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

NHWC = ("NHWC", "HWIO", "NHWC")
# Up to this many input channels a convolution goes by unfolded windows (`_unfolded`). Forward pass
# and weight gradient, CPU time: 3 channels, 64x32x32 to 32: 3.4 ms against XLA's 6.5; 1 channel
# 1.2 against 1.9, 4 channels 6.4 against 9.1; from 8 channels XLA's is faster (2.0 against 17.7).
FEW_CHANNELS = 4


class Geometry(NamedTuple):
    """A 2-D sliding window over NHWC images: static, hashable."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]  # (top, bottom), (left, right)
    dilation: tuple[int, int]

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return tuple(
            (n + lo + hi - (k - 1) * d - 1) // s + 1
            for n, k, s, (lo, hi), d in zip(size, self.kernel, self.strides, self.pads, self.dilation)
        )

    def taps(self):
        """Window positions (i, j), row by row."""
        return [(i, j) for i in range(self.kernel[0]) for j in range(self.kernel[1])]


_plain = [0]  # > 0 inside `plain_lax()`


def on_cpu() -> bool:
    """Whether the hand-written rules apply to what is traced now."""
    return not _plain[0] and jax.default_backend() == "cpu"


@contextlib.contextmanager
def plain_lax():
    """Trace with `lax`'s operations only (an ONNX export wants one Conv and one MaxPool per layer)."""
    _plain[0] += 1
    try:
        yield
    finally:
        _plain[0] -= 1


def _tap(padded: jax.Array, geometry: Geometry, out: tuple[int, int], i: int, j: int) -> jax.Array:
    """The input values that window position (i, j) meets at every output pixel: (N, Ho, Wo, C)."""
    (sh, sw), (dh, dw) = geometry.strides, geometry.dilation
    n, _, _, c = padded.shape
    start = (0, i * dh, j * dw, 0)
    limit = (n, i * dh + (out[0] - 1) * sh + 1, j * dw + (out[1] - 1) * sw + 1, c)
    return lax.slice(padded, start, limit, (1, sh, sw, 1))


def _place(share: jax.Array, geometry: Geometry, size: tuple[int, int], i: int, j: int) -> jax.Array:
    """`share` (N, Ho, Wo, C), what window position (i, j) sent back, at the input pixels it read:
    (N, H, W, C), zeros elsewhere (the transpose of `_tap` on the unpadded input)."""
    (sh, sw), (dh, dw), ((top, _), (left, _)) = geometry.strides, geometry.dilation, geometry.pads
    _, ho, wo, _ = share.shape
    first_h, first_w = i * dh - top, j * dw - left  # negative: the first reads fell on the padding
    return lax.pad(
        share,
        jnp.zeros((), share.dtype),
        (
            (0, 0, 0),
            (first_h, size[0] - first_h - (ho - 1) * sh - 1, sh - 1),
            (first_w, size[1] - first_w - (wo - 1) * sw - 1, sw - 1),
            (0, 0, 0),
        ),
    )


def _pad(x: jax.Array, geometry: Geometry, value=0.0) -> jax.Array:
    (top, bottom), (left, right) = geometry.pads
    return lax.pad(x, jnp.asarray(value, x.dtype), ((0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)))


def _accumulator(dtype):
    """Sums of bf16 products are kept in float32, as XLA's convolutions keep them."""
    return jnp.float32 if dtype == jnp.bfloat16 else dtype


# --- convolution ---------------------------------------------------------------------------------------


def conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    batch_group_count=1,
    precision=None,
    preferred_element_type=None,
    **kwargs,
):
    """`lax.conv_general_dilated` (the signature flax's `nnx.Conv` calls) with the gradients above for
    2-D NHWC/HWIO convolutions on the CPU; anything else goes to `lax` unchanged."""
    plain = (
        lhs.ndim == 4
        and _is_nhwc(dimension_numbers)
        and all(d == 1 for d in (lhs_dilation or (1, 1)))
        and batch_group_count == 1
        and preferred_element_type is None
        and not kwargs.get("out_sharding")
    )
    if not plain or not on_cpu():
        return lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation,
            dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count,
            batch_group_count=batch_group_count,
            precision=precision,
            preferred_element_type=preferred_element_type,
            **kwargs,
        )
    kernel = tuple(rhs.shape[:2])
    dilation = tuple(rhs_dilation or (1, 1))
    if isinstance(padding, str):
        dilated = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
        padding = lax.padtype_to_pads(lhs.shape[1:3], dilated, window_strides, padding)
    geometry = Geometry(kernel, tuple(window_strides), tuple(tuple(p) for p in padding), dilation)
    if kernel == (1, 1) and feature_group_count == 1 and geometry.pads == ((0, 0), (0, 0)):
        return _pointwise(lhs, rhs, geometry.strides)
    if feature_group_count == 1 and lhs.shape[-1] <= FEW_CHANNELS:
        return _unfolded(lhs, rhs, geometry)
    return conv(lhs, rhs, geometry, feature_group_count)


def _unfolded(x: jax.Array, w: jax.Array, geometry: Geometry) -> jax.Array:
    """A convolution of a few input channels (an image's) as one matrix product of its unfolded
    windows (im2col): XLA's convolution with 3 input channels reaches a few GFLOP/s."""
    padded = _pad(x, geometry)
    out = geometry.out_size(x.shape[1:3])
    windows = jnp.stack([_tap(padded, geometry, out, i, j) for i, j in geometry.taps()], axis=3)
    n, c, f = x.shape[0], x.shape[-1], w.shape[-1]
    rows = windows.reshape(n * out[0] * out[1], len(geometry.taps()) * c)
    return (rows @ w.reshape(-1, f)).reshape(n, *out, f)


def _pointwise(x: jax.Array, w: jax.Array, strides: tuple[int, int]) -> jax.Array:
    """A 1x1 convolution as the matrix product it is (XLA's own differentiation of products and
    strided slices is fast; its convolution gradients add two transposes)."""
    if strides != (1, 1):
        x = lax.slice(x, (0, 0, 0, 0), x.shape, (1, *strides, 1))
    n, h, wi, c = x.shape
    return (x.reshape(n * h * wi, c) @ w.reshape(c, -1)).reshape(n, h, wi, -1)


def _is_nhwc(dimension_numbers) -> bool:
    if dimension_numbers is None:
        return False
    if isinstance(dimension_numbers, tuple) and all(isinstance(part, str) for part in dimension_numbers):
        return dimension_numbers == NHWC
    return tuple(dimension_numbers) == tuple(lax.conv_dimension_numbers((1, 1, 1, 1), (1, 1, 1, 1), NHWC))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x: jax.Array, w: jax.Array, geometry: Geometry, groups: int) -> jax.Array:
    """A 2-D convolution of NHWC `x` with HWIO `w` in `groups` groups (depthwise: one per channel)."""
    if _depthwise(x, groups):
        return _depthwise_forward(x, w, geometry)
    return _xla_conv(x, w, geometry, groups)


def _depthwise(x: jax.Array, groups: int) -> bool:
    return groups > 1 and groups == x.shape[-1]


def _xla_conv(x, w, geometry: Geometry, groups: int):
    pads = geometry.pads
    if _smaller_than_window(x.shape[1:3], geometry):
        # XLA swaps the operands of a convolution whose input is smaller than its window and runs the
        # swapped one in its generic loop (40x slower for a 3x3 conv on a 2x2 map); padding beforehand,
        # where XLA cannot fold the padding back in, keeps the input the larger operand.
        x = lax.optimization_barrier(_pad(x, geometry))
        pads = ((0, 0), (0, 0))
    return lax.conv_general_dilated(
        x,
        w,
        geometry.strides,
        pads,
        rhs_dilation=geometry.dilation,
        dimension_numbers=NHWC,
        feature_group_count=groups,
    )


def _smaller_than_window(size: tuple[int, int], geometry: Geometry) -> bool:
    return size[0] * size[1] < geometry.kernel[0] * geometry.kernel[1]


def _conv_forward(x, w, geometry, groups):
    return conv(x, w, geometry, groups), (x, w)


def _conv_backward(geometry: Geometry, groups: int, residuals, g):
    x, w = residuals
    if _depthwise(x, groups):
        return _depthwise_input_grad(w, g, geometry, x.shape), _depthwise_weight_grad(x, g, geometry, w.shape)
    if geometry.strides == (1, 1) and not _smaller_than_window(g.shape[1:3], geometry):
        dx = jax.vjp(lambda x: _xla_conv(x, w, geometry, groups), x)[1](g)[0]
    else:  # XLA's would be a convolution of the zero-dilated gradient, or a swapped one
        dx = _tap_input_grad(w, g, geometry, groups, x.shape)
    dw = jax.vjp(lambda w: _xla_conv(x, w, geometry, groups), w)[1](g)[0]
    return dx, dw


conv.defvjp(_conv_forward, _conv_backward)


def _tap_input_grad(w, g, geometry: Geometry, groups: int, shape) -> jax.Array:
    """dx as g times every tap's weights in one product, each tap's share put back at the input
    pixels it read (strided, or cut where it read padding)."""
    h, wi = shape[1:3]
    kh, kw, cg, f = w.shape
    if groups == 1:  # (N, Ho, Wo, F) x (kh*kw*C, F): the kernel as it lies, no transpose
        shares = lax.dot_general(g, w.reshape(kh * kw * cg, f), (((3,), (1,)), ((), ())))
        shares = shares.reshape(*g.shape[:3], kh * kw, cg)
    else:  # (N, Ho, Wo, G, Fg) x (G, Fg, kh*kw*Cg) -> (G, N, Ho, Wo, kh*kw*Cg)
        fg = f // groups
        grouped = g.reshape(*g.shape[:3], groups, fg)
        weights = w.reshape(kh * kw, cg, groups, fg).transpose(2, 3, 0, 1).reshape(groups, fg, kh * kw * cg)
        shares = lax.dot_general(grouped, weights, (((4,), (1,)), ((3,), (0,))))
        shares = shares.reshape(groups, *g.shape[:3], kh * kw, cg).transpose(1, 2, 3, 4, 0, 5)
        shares = shares.reshape(*g.shape[:3], kh * kw, groups * cg)
    total = None
    for tap, (i, j) in enumerate(geometry.taps()):
        placed = _place(shares[:, :, :, tap, :], geometry, (h, wi), i, j)
        total = placed if total is None else total + placed
    return total.astype(g.dtype)


def _depthwise_forward(x, w, geometry: Geometry) -> jax.Array:
    """y = the sum over taps of x_tap * w[i, j]: one fused loop. With a channel multiplier m, input
    channel c feeds outputs c*m .. c*m + m-1 (Keras' and PyTorch's order)."""
    out = geometry.out_size(x.shape[1:3])
    padded = _repeat(_pad(x, geometry), w.shape[-1] // x.shape[-1])
    weights = w.astype(_accumulator(x.dtype))
    total = None
    for i, j in geometry.taps():
        tap = _tap(padded, geometry, out, i, j).astype(weights.dtype) * weights[i, j, 0]
        total = tap if total is None else total + tap
    return total.astype(x.dtype)


def _depthwise_input_grad(w, g, geometry: Geometry, shape) -> jax.Array:
    n, h, wi, c = shape
    if geometry.strides == (1, 1):  # the forward pass of g with the kernel turned round: one fused loop
        extent = [(k - 1) * d for k, d in zip(geometry.kernel, geometry.dilation)]
        pads = tuple((e - lo, e - hi) for e, (lo, hi) in zip(extent, geometry.pads))
        turned = Geometry(geometry.kernel, (1, 1), pads, geometry.dilation)
        total = _depthwise_forward(g, w[::-1, ::-1], turned)
        multiplier = w.shape[-1] // c
        return total.reshape(n, h, wi, c, multiplier).sum(-1) if multiplier > 1 else total
    grads = g.astype(_accumulator(g.dtype))
    weights = w.astype(grads.dtype)
    total = None
    for i, j in geometry.taps():
        placed = _place(grads * weights[i, j, 0], geometry, (h, wi), i, j)
        total = placed if total is None else total + placed
    multiplier = w.shape[-1] // c
    if multiplier > 1:
        total = total.reshape(n, h, wi, c, multiplier).sum(-1)
    return total.astype(g.dtype)


def _depthwise_weight_grad(x, g, geometry: Geometry, shape) -> jax.Array:
    padded = _repeat(_pad(x, geometry), shape[-1] // x.shape[-1])
    grads = g.astype(_accumulator(g.dtype))
    out = g.shape[1:3]
    rows = [(_tap(padded, geometry, out, i, j).astype(grads.dtype) * grads).sum((0, 1, 2)) for i, j in geometry.taps()]
    return jnp.stack(rows).reshape(shape).astype(g.dtype)


def _repeat(x: jax.Array, multiplier: int) -> jax.Array:
    """Each channel `multiplier` times in a row (a depthwise convolution's channel multiplier)."""
    return x if multiplier == 1 else jnp.repeat(x, multiplier, axis=-1)


# --- max pooling ---------------------------------------------------------------------------------------


def max_pool(x: jax.Array, size: tuple[int, int], strides: tuple[int, int], padding) -> jax.Array:
    """`nnx.max_pool` of NHWC `x` (`padding` "SAME", "VALID" or pairs) with the gradient above on the CPU."""
    from flax import nnx

    if not on_cpu():
        return nnx.max_pool(x, window_shape=size, strides=strides, padding=padding)
    flax_padding = padding if isinstance(padding, str) else tuple(tuple(pair) for pair in padding)
    pads = lax.padtype_to_pads(x.shape[1:3], size, strides, padding) if isinstance(padding, str) else flax_padding
    return _max_pool(x, Geometry(tuple(size), tuple(strides), tuple(tuple(p) for p in pads), (1, 1)), flax_padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _max_pool(x: jax.Array, geometry: Geometry, flax_padding) -> jax.Array:
    from flax import nnx

    # Keywords: jax2onnx's ONNX export replaces nnx.max_pool with a keyword-only version.
    return nnx.max_pool(x, window_shape=geometry.kernel, strides=geometry.strides, padding=flax_padding)


def _max_pool_forward(x, geometry, flax_padding):
    y = _max_pool(x, geometry, flax_padding)
    return y, (x, y)


def _max_pool_backward(geometry: Geometry, flax_padding, residuals, g):
    x, y = residuals
    size = x.shape[1:3]
    padded = _pad(x, geometry, -jnp.inf)
    taken = jnp.zeros(y.shape, bool)
    total = None
    for i, j in geometry.taps():
        wins = (_tap(padded, geometry, y.shape[1:3], i, j) == y) & ~taken
        taken = taken | wins
        placed = _place(jnp.where(wins, g, jnp.zeros((), g.dtype)), geometry, size, i, j)
        total = placed if total is None else total + placed
    return (total,)


_max_pool.defvjp(_max_pool_forward, _max_pool_backward)
