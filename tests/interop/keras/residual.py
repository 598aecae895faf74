"""A small functional ResNet: residual blocks with identity and projection shortcuts, an Inception-style
concatenation, built by a function in a loop."""

import keras
from keras import layers


def residual_block(x, filters, stride=1):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    if stride != 1:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    y = layers.add([shortcut, y])
    return layers.Activation("relu")(y)


inputs = keras.Input(shape=(32, 32, 3))
x = layers.Rescaling(1.0 / 255)(inputs)
x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
for filters, stride in [(32, 1), (64, 2), (64, 1)]:
    x = residual_block(x, filters, stride)
wide = layers.Conv2D(32, 1, activation="relu")(x)
deep = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
x = layers.Concatenate()([wide, deep, x])
x = layers.GlobalAveragePooling2D()(x)
outputs = layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs, outputs, name="small_resnet")
