"""A script using a model package laid out as Keras-2-era libraries are (keras_applications,
qubvel's classification_models, efficientnet): the package's modules beside the script, the Keras
modules passed in as arguments, helpers in sibling modules reached by relative imports."""

import keras
from nets import backbone

model = backbone.build((32, 32, 3), backend=keras.backend, layers=keras.layers, models=keras.models)

if __name__ == "__main__":
    model.summary()
