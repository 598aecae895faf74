"""The layer kinds of the spec language, one module per family, registered by name in `REGISTRY`."""

from archspec.layers import activation, conv, dense, merge, norm, pool, shape  # noqa: F401  (registration)
from archspec.layers.activation import ACTIVATIONS
from archspec.layers.base import GLOBAL, REGISTRY, ArgError, LayerKind, ShapeError, Window, Word

__all__ = ["ACTIVATIONS", "GLOBAL", "REGISTRY", "ArgError", "LayerKind", "ShapeError", "Window", "Word"]
