# ruff: noqa: SIM108  (written as scripts write it, an `if` the reader must follow)
"""What real model scripts do, in one file: loops with computed bounds, helpers with defaults,
keyword arguments and **kwargs, shapes read off tensors, `if` on computed values, comprehensions,
f-string names, tensor arithmetic and slicing, and a graph that does not nest (a U-Net-like skip
that two merges read)."""

import keras
from keras import layers

CONFIG = {"widths": [16, 32], "blocks": 2, "classes": 10}


def conv_bn(x, filters, kernel_size=3, strides=1, name=None, **kwargs):
    channel_axis = -1 if keras.backend.image_data_format() == "channels_last" else 1
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=name, **kwargs)(x)
    x = layers.BatchNormalization(axis=channel_axis)(x)
    return layers.Activation("relu")(x)


def block(x, filters, stride=1, expand=None):
    shortcut = x
    if x.shape[-1] != filters or stride != 1:  # project the shortcut when the shape changes
        shortcut = layers.Conv2D(filters, 1, strides=stride)(x)
    y = conv_bn(x, filters, strides=stride)
    y = conv_bn(y, filters if expand is None else expand, kernel_size=(3, 1))
    y = y * 0.5 + shortcut
    return layers.ReLU()(y)


def build(input_tensor=None, input_shape=(32, 32, 3)):
    if input_tensor is None:
        inputs = keras.Input(shape=input_shape)
    else:
        inputs = input_tensor
    x = layers.Rescaling(1 / 255.0)(inputs)
    stem = conv_bn(x, CONFIG["widths"][0], name="stem_conv")
    x = stem
    features = []
    for stage, width in enumerate(CONFIG["widths"]):
        for i in range(CONFIG["blocks"]):
            x = block(x, width, stride=2 if i == 0 and stage > 0 else 1)
        features.append(x)
    channels = x.shape[-1]
    half = keras.ops.shape(x)[-1] // 2
    left, right = x[..., :half], x[..., half:]
    x = layers.concatenate([right, left])
    up = layers.UpSampling2D(2)(x)
    skip = layers.Conv2D(channels, 1)(stem)
    x = layers.add([up, skip])
    x = layers.multiply([x, layers.Activation("sigmoid")(skip)])
    n = 0
    while n < 2:
        x = layers.SeparableConv2D(channels, 3, padding="same", activation="relu")(x)
        n += 1
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2 if len(features) > 1 else 0.5)(x)
    outputs = [layers.Dense(CONFIG["classes"], activation="softmax", name=f"head_{i}")(x) for i in range(1)]
    return keras.Model(inputs, outputs[0], name="everyday")


model = build()
