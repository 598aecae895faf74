# ruff: noqa: RUF059  (written as such libraries write it)
"""The network: a stem, blocks from a list of settings, a grouped convolution, a head."""

import string

from . import get_submodules_from_kwargs
from .blocks import BlockArgs, FixedDropout, block, grouped_conv

BLOCKS = [BlockArgs(16, 1, 0.25), BlockArgs(32, 2, None)]


def build(input_shape, classes=10, **kwargs):
    backend, layers, models = get_submodules_from_kwargs(kwargs)
    inputs = layers.Input(shape=input_shape)
    x = layers.Conv2D(16, 3, padding="same")(inputs)
    for i, args in enumerate(BLOCKS):
        x = block(x, args._replace(filters=args.filters), name=string.ascii_lowercase[i], **kwargs)
    x = grouped_conv(x, 32, groups=4)
    x = layers.GlobalAveragePooling2D()(x)
    x = FixedDropout(0.2, noise_shape=(None, 1))(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return models.Model(inputs, outputs)
