"""`dense U`: a fully connected layer on the last axis (Keras Dense; on an HxWxC input it acts per pixel)."""

from __future__ import annotations

import math

from archspec.layers.base import Arg, LayerKind, boolean, layer, positive


@layer
class Dense(LayerKind):
    name = "dense"
    summary = "fully connected layer: `dense U` (U units) on the last axis"
    args = (
        Arg("units", positive, positional=True, doc="number of outputs"),
        Arg("bias", boolean, True, doc="add a bias per unit"),
    )
    family = "dense"
    keras_name = "Dense"
    width_arg = "units"
    takes_suffix = True
    has_kernel = True
    linear = True

    def output_shape(self, attrs, inputs):
        return (*inputs[0][:-1], attrs["units"])

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
