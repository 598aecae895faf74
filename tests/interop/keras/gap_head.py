"""The article's second model: the same trunk with global average pooling, built with model.add."""

import keras
from keras import layers

model = keras.Sequential()
model.add(keras.Input(shape=(224, 224, 3)))
for filters in (32, 64):
    model.add(layers.Conv2D(filters, (3, 3), activation="relu"))
    model.add(layers.Conv2D(filters, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.BatchNormalization())
model.add(layers.GlobalAveragePooling2D())
model.add(layers.Dropout(0.3))
model.add(layers.Dense(10, activation="softmax"))
