"""A `keras.Model` subclass built of `keras.layers.Layer` subclasses: `__init__` makes the layers
(some in a list), `call` applies them in a straight line; calling it on an input builds it."""

import keras
from keras import layers


class ConvBlock(layers.Layer):
    def __init__(self, filters, downsample=False, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(filters, 3, strides=2 if downsample else 1, padding="same")
        self.norm = layers.BatchNormalization()
        self.project = layers.Conv2D(filters, 1, strides=2) if downsample else None

    def call(self, inputs, training=None):
        x = self.norm(self.conv(inputs), training=training)
        shortcut = inputs if self.project is None else self.project(inputs)
        return keras.ops.relu(x + shortcut)


class SmallNet(keras.Model):
    def __init__(self, classes=5, widths=(8, 16)):
        super().__init__()
        self.stem = layers.Conv2D(widths[0], 3, padding="same", activation="relu")
        self.blocks = [ConvBlock(w, downsample=i > 0) for i, w in enumerate(widths)]
        self.pool = layers.GlobalMaxPooling2D()
        self.classifier = layers.Dense(classes)

    def call(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.pool(x))


model = SmallNet()
outputs = model(keras.Input(shape=(24, 24, 3)))
