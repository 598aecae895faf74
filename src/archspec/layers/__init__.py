"""The layer kinds of the spec language, one module per family, registered by name in `REGISTRY`."""

from archspec.layers import activation, conv, dense, merge, norm, pool, shape  # noqa: F401  (registration)
from archspec.layers.activation import ACTIVATIONS
from archspec.layers.base import GLOBAL, REGISTRY, ArgError, LayerKind, ShapeError, Window
from archspec.words import Word

# Words that may trail a layer line (`conv 64 3 bn relu`): the kinds that say so.
TRAILING_WORDS = frozenset(name for name, kind in REGISTRY.items() if kind.trailing)

__all__ = [
    "ACTIVATIONS",
    "GLOBAL",
    "REGISTRY",
    "TRAILING_WORDS",
    "ArgError",
    "LayerKind",
    "ShapeError",
    "Window",
    "Word",
]
