# ruff: noqa: RUF005  (tutorial style: lists and shapes joined with +, as the importer must read them)
"""Cats vs dogs at 100x100, as in the TF2 comparison of Flatten+Dense heads with global pooling:
one conv trunk (Conv2D, BatchNormalization, Activation, MaxPooling2D per block), three heads."""

import keras
from keras import layers

IMAGE_SIZE = (100, 100)


def trunk():
    blocks = [keras.Input(shape=IMAGE_SIZE + (3,))]
    for filters in [32, 64, 128]:
        blocks += [
            layers.Conv2D(filters, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.MaxPooling2D(),
        ]
    return blocks


flatten_dense = keras.Sequential(
    trunk() + [layers.Flatten(), layers.Dense(100, activation="relu"), layers.Dense(1, activation="sigmoid")]
)

flatten_dense_dropout = keras.Sequential(
    trunk()
    + [
        layers.Flatten(),
        layers.Dense(100, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(100, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(1, activation="sigmoid"),
    ]
)

global_pooling = keras.Sequential(trunk() + [layers.GlobalAveragePooling2D(), layers.Dense(1, activation="sigmoid")])

flatten_dense.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
