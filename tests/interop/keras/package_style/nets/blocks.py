# ruff: noqa: F401, RUF059  (written as such libraries write it: `ReLU` is found by `eval`)
"""Blocks: settings in namedtuples, a module-level `layers` set by `global`, the activation named by
a string and found with `eval`, a grouped convolution made of `Lambda` slices, a squeeze-excite
with a Python activation function, a `Dropout` subclass changing a detail."""

import collections

from . import get_submodules_from_kwargs

try:
    from tensorflow import __version__ as TF_VERSION

    TF = TF_VERSION >= "2.0"
except ImportError:
    TF = False
if TF:
    from tensorflow.keras.layers import Dropout, ReLU
else:
    from keras.layers import Dropout, ReLU

BlockArgs = collections.namedtuple("BlockArgs", ["filters", "strides", "se_ratio"])
layers = None


def swish(x):
    return x * layers.Activation("sigmoid")(x)


class FixedDropout(Dropout):
    def _get_noise_shape(self, inputs):
        if self.noise_shape is None:
            return None
        return tuple(inputs.shape[i] if s is None else s for i, s in enumerate(self.noise_shape))


def slice_channels(x, start, stop):
    return x[:, :, :, start:stop]


def grouped_conv(x, filters, groups):
    width = x.shape[-1] // groups
    outputs = []
    for g in range(groups):
        part = layers.Lambda(slice_channels, arguments={"start": g * width, "stop": (g + 1) * width})(x)
        outputs.append(layers.Conv2D(filters // groups, 3, padding="same")(part))
    return layers.Concatenate()(outputs)


def squeeze_excite(x, ratio):
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D()(x)
    s = layers.Lambda(lambda t: t[:, None, None, :])(s)
    s = layers.Conv2D(max(1, int(channels * ratio)), 1, activation=swish)(s)
    s = layers.Conv2D(channels, 1, activation="sigmoid")(s)
    return layers.multiply([x, s])


def block(x, args, activation="ReLU", name="", **kwargs):
    global layers
    backend, layers, models = get_submodules_from_kwargs(kwargs)
    act = eval(activation)
    x = layers.Conv2D(args.filters, 3, strides=args.strides, padding="same", use_bias=False, name=name + "_conv")(x)
    x = layers.BatchNormalization(name=name + "_bn")(x)
    x = act()(x)
    if args.se_ratio:
        x = squeeze_excite(x, args.se_ratio)
    return x
