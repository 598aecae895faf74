"""Merges, written as blocks: `add:`, `concat:` and `multiply:` join the outputs of their branches.

`attrs["branches"]` holds where each branch starts ("line 12"), so a mismatch names every branch.
"""

from __future__ import annotations

from archspec.layers.base import LayerKind, ShapeError, layer
from archspec.text import describe_shape


def _listing(inputs, attrs) -> str:
    return " and ".join(f"{describe_shape(s)} ({where})" for s, where in zip(inputs, attrs["branches"]))


class _Merge(LayerKind):
    family = "merge"

    def label(self, attrs):
        return f"{self.name} ({len(attrs['branches'])} branches)"


@layer
class Add(_Merge):
    name = "add"
    residual = True
    keras_name = "Add"
    linear = True
    summary = "element-wise sum of the branches (residual connections); shapes must be equal"

    def output_shape(self, attrs, inputs):
        if len(set(inputs)) > 1:
            raise ShapeError(
                f"`add` needs branches of one shape, got {_listing(inputs, attrs)}",
                hint="give the shortcut branch a `conv` with the same filters and stride",
            )
        return inputs[0]

    def apply(self, module, attrs, xs, *, train):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


@layer
class Multiply(_Merge):
    name = "multiply"
    keras_name = "Multiply"
    summary = "element-wise product of the branches (gating, squeeze-excite); 1x1xC broadcasts over HxWxC"

    def output_shape(self, attrs, inputs):
        rank = {len(s) for s in inputs}
        if len(rank) > 1:
            raise ShapeError(f"`multiply` needs branches of one rank, got {_listing(inputs, attrs)}")
        out = []
        for dims in zip(*inputs):
            sizes = set(dims) - {1}
            if len(sizes) > 1:
                raise ShapeError(
                    f"`multiply` needs shapes that broadcast, got {_listing(inputs, attrs)}",
                    hint="sizes must be equal or 1 in every dimension",
                )
            out.append(sizes.pop() if sizes else 1)
        return tuple(out)

    def apply(self, module, attrs, xs, *, train):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


@layer
class Concat(_Merge):
    name = "concat"
    keras_name = "Concat"
    linear = True
    summary = "concatenation of the branches along channels (Inception, DenseNet)"

    def output_shape(self, attrs, inputs):
        ranks = {len(s) for s in inputs}
        if len(ranks) > 1 or len({s[:-1] for s in inputs}) > 1:
            raise ShapeError(
                f"`concat` needs branches with the same spatial size, got {_listing(inputs, attrs)}",
                hint="use `padding=same` and the same stride in every branch",
            )
        return (*inputs[0][:-1], sum(s[-1] for s in inputs))

    def apply(self, module, attrs, xs, *, train):
        import jax.numpy as jnp

        return jnp.concatenate(xs, axis=-1)
