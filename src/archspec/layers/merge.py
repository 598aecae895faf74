"""Merges, written as blocks: `add:`, `concat:` and `multiply:` join the outputs of their branches.

`attrs["branches"]` holds where each branch starts ("line 12"), so a mismatch names every branch.
"""

from __future__ import annotations

from archspec.layers import keras_config, onnx_attrs
from archspec.layers.base import LayerKind, Module, Op, ShapeError, layer
from archspec.layers.writing import inputs_list
from archspec.text import describe_shape


def _listing(inputs, attrs) -> str:
    return " and ".join(f"{describe_shape(s)} ({where})" for s, where in zip(inputs, attrs["branches"]))


class _Merge(LayerKind):
    family = "merge"
    operator: str = ""  # Python's operator for it, where it has one

    def label(self, attrs):
        return f"{self.name} ({len(attrs['branches'])} branches)"

    def keras_code(self, attrs, inputs, output):
        return [
            Module(f"layers.{self.keras_classes[0]}()", apply="{m}(" + inputs_list(len(inputs)) + ")", name=self.name)
        ]

    def pytorch_code(self, attrs, inputs, output):
        return [Op(f" {self.operator} ".join(f"{{{i}}}" for i in range(len(inputs))))]

    def flax_code(self, attrs, inputs, output):
        return self.pytorch_code(attrs, inputs, output)

    def read_keras(self, class_name, config, inputs):
        """A Keras merge layer, or the `keras.ops` function of the same name on tensors. The reader
        fills `branches` (where each input comes from), as expansion does for a block."""
        keras_config.check_keys(config, ("axis",) if self.name == "concat" else ())
        if self.name == "concat":
            keras_config.channel_axis(config, "axis", len(inputs[0]))
        return [(self.name, {})]


@layer
class Add(_Merge):
    name = "add"
    onnx_ops = ("Add",)  # of two computed tensors
    residual = True
    keras_name = "Add"
    operator = "+"
    keras_classes = ("Add",)
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

    def read_onnx(self, node, inputs):
        onnx_attrs.alone(node)
        if len(node.streams) < 2:
            raise onnx_attrs.OtherKind("an `Add` of a constant")
        if len({node.dims[p] for p in node.streams}) > 1:
            raise onnx_attrs.Untranslatable(
                None, "`Add` of tensors of different shapes (broadcasting); the spec's `add` joins equal shapes"
            )
        return [("add", {})]


@layer
class Multiply(_Merge):
    name = "multiply"
    onnx_ops = ("Mul",)  # of two computed tensors
    keras_name = "Multiply"
    operator = "*"
    keras_classes = ("Multiply",)
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

    def read_onnx(self, node, inputs):
        onnx_attrs.alone(node)
        if len(node.streams) < 2:
            raise onnx_attrs.OtherKind("a `Mul` by a constant")
        return [("multiply", {})]


@layer
class Concat(_Merge):
    name = "concat"
    onnx_ops = ("Concat",)
    keras_name = "Concat"
    keras_classes = ("Concatenate",)
    keras_positional = ("axis",)
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

    def pytorch_code(self, attrs, inputs, output):
        return [Op(f"torch.cat({inputs_list(len(inputs))}, dim=1)")]

    def flax_code(self, attrs, inputs, output):
        return [Op(f"jnp.concatenate({inputs_list(len(inputs))}, axis=-1)")]

    def read_onnx(self, node, inputs):
        onnx_attrs.alone(node)
        if len(node.streams) != len(node.dims):
            raise onnx_attrs.Untranslatable(None, "`Concat` with a constant; the spec concatenates computed tensors")
        if onnx_attrs.spec_axis(node, node.attributes["axis"]) != onnx_attrs.channel_axis(node):
            raise onnx_attrs.Untranslatable("axis", "`Concat` along an axis that is not the channels")
        return [("concat", {})] if len(inputs) > 1 else []
