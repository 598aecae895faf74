"""`dense U`: a fully connected layer on the last axis (Keras Dense; on an HxWxC input it acts per pixel)."""

from __future__ import annotations

import math

from archspec.layers import keras_config, onnx_attrs
from archspec.layers.base import Arg, Code, LayerKind, Module, boolean, call, keyword, layer, positive
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
