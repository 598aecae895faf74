"""`dense U`: a fully connected layer on the last axis (Keras Dense; on an HxWxC input it acts per pixel)."""

from __future__ import annotations

import math
from typing import ClassVar

from archspec.layers import keras_config, onnx_attrs
from archspec.layers.base import (
    Arg,
    Code,
    LayerKind,
    Module,
    Stored,
    boolean,
    call,
    in_out,
    keyword,
    layer,
    positive,
    reorder,
    vector,
)
from archspec.layers.writing import CHANNELS_LAST


@layer
class Dense(LayerKind):
    name = "dense"
    onnx_ops = ("Gemm", "MatMul")
    summary = "fully connected layer: `dense U` (U units) on the last axis"
    args = (
        Arg("units", positive, positional=True, doc="number of outputs"),
        Arg("bias", boolean, True, doc="add a bias per unit"),
    )
    family = "dense"
    keras_name = "Dense"
    width_arg = "units"
    keras_classes = ("Dense",)
    keras_positional = ("units", "activation", "use_bias")
    takes_suffix = True
    has_kernel = True
    linear = True

    def output_shape(self, attrs, inputs):
        return (*inputs[0][:-1], attrs["units"])

    def read_keras(self, class_name, config, inputs):
        keras_config.check_keys(config, ("units", "activation", "use_bias"))
        attrs = keras_config.bind(
            self, {"units": config.get("units"), "bias": config.get("use_bias")}, {"bias": "use_bias"}
        )
        return [("dense", attrs), *keras_config.activation(config)]

    def param_count(self, attrs, inputs, output):
        units = attrs["units"]
        return inputs[0][-1] * units + (units if attrs["bias"] else 0), 0

    def macs(self, attrs, inputs, output):
        positions = math.prod(inputs[0][:-1])
        return positions * inputs[0][-1] * attrs["units"]

    def build(self, attrs, inputs, output, rngs, dtype=None):
        from flax import nnx

        return nnx.Linear(inputs[0][-1], attrs["units"], use_bias=attrs["bias"], dtype=dtype, rngs=rngs)

    def apply(self, module, attrs, xs, *, train):
        return module(xs[0])

    def keras_code(self, attrs, inputs, output):
        return [Module(call("layers.Dense", attrs["units"], use_bias=keyword(attrs["bias"], True)))]

    def pytorch_code(self, attrs, inputs, output):
        linear = call("nn.Linear", inputs[0][-1], attrs["units"], bias=keyword(attrs["bias"], True))
        # on an NCHW map, per pixel over its channels (torchvision's ConvNeXt permutes the same way)
        return [Module(linear, apply=CHANNELS_LAST if len(inputs[0]) == 3 else "{m}({0})", name="linear")]

    def flax_code(self, attrs, inputs, output):
        bias = keyword(attrs["bias"], True)
        return [
            Module(call("nnx.Linear", inputs[0][-1], attrs["units"], use_bias=bias, rngs=Code("rngs")), name="linear")
        ]

    def read_onnx(self, node, inputs):
        """`Gemm` (PyTorch's Linear on vectors), or `MatMul` by a weight matrix on the channel axis
        (its Linear on a channels-last image: ConvNeXt), its bias added apart."""
        if node.streams != (0,):
            raise onnx_attrs.Untranslatable(
                None, f"`{node.op_type}` of two computed tensors (attention) has no spec layer"
            )
        if node.layout[-1] != onnx_attrs.channel_axis(node):
            raise onnx_attrs.Untranslatable(None, f"`{node.op_type}` over an axis that is not the channels")
        weight = onnx_attrs.weight_dims(node, 1, "weights")
        if len(weight) != 2:
            raise onnx_attrs.Untranslatable(
                None, f"`{node.op_type}` with a {len(weight)}-D weight; `dense` holds a matrix"
            )
        if node.op_type == "Gemm":
            if node.attributes.get("transA", 0):
                raise onnx_attrs.Untranslatable("transA", "`Gemm` reading its input transposed has no spec layer")
            units = weight[0] if node.attributes.get("transB", 0) else weight[1]
            bias = onnx_attrs.learned(node, 2) | onnx_attrs.added_bias(node)
        else:
            units, bias = weight[1], onnx_attrs.added_bias(node)
        return [("dense", {"units": units, "bias": bias})]

    variables = ("kernel", "bias")
    keras_weights: ClassVar[dict] = {"Dense": (Stored("kernel"), Stored("bias", needs="use_bias"))}
    pytorch_weights = (
        {"weight": Stored("kernel", in_out, rank=2, features=0), "bias": Stored("bias", needs="bias", rank=1)},
    )
    # Gemm's B is (in, out), or (out, in) with transB=1 (PyTorch's Linear on vectors): weights_from_onnx;
    # MatMul's is (in, out), its bias an Add after it (PyTorch's Linear on a channels-last image)
    onnx_weights: ClassVar[dict] = {
        "Gemm": {1: Stored("kernel", features=0), 2: Stored("bias", vector, needs="bias")},
        "MatMul": {1: Stored("kernel", features=0), "added": Stored("bias", vector, needs="bias")},
    }

    def weights_from_onnx(self, node, order=None):
        if node.op_type == "Gemm" and node.attributes.get("transA", 0):
            return None
        if node.op_type != "Gemm" or not node.attributes.get("transB", 0):
            return super().weights_from_onnx(node, order)
        arrays = super().weights_from_onnx(node)  # B as stored, (out, in)
        if arrays:
            arrays["kernel"] = reorder(in_out(arrays["kernel"]), order, 0)
        return arrays
