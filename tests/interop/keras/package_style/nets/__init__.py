"""The Keras modules this package builds with, as keras_applications lets the caller choose them."""

_KERAS_BACKEND = None
_KERAS_LAYERS = None
_KERAS_MODELS = None


def get_submodules_from_kwargs(kwargs):
    backend = kwargs.get("backend", _KERAS_BACKEND)
    layers = kwargs.get("layers", _KERAS_LAYERS)
    models = kwargs.get("models", _KERAS_MODELS)
    return backend, layers, models
