"""The layer kinds of the spec language, one module per family, registered by name in `REGISTRY`.

Every module of this package but `base` (what a kind is) and the helpers the kinds' interop methods
share (`onnx_attrs`, `writing`) holds layer kinds and is imported here, so a new kind needs nothing but
its own module.
"""

import importlib
import pkgutil

from archspec.layers.base import (
    FRAMEWORKS,
    GLOBAL,
    REGISTRY,
    ArgError,
    LayerKind,
    OnnxNode,
    ReadNode,
    ShapeError,
    Untranslatable,
    Window,
)
from archspec.words import Word

HELPERS = ("base", "onnx_attrs", "writing")  # modules of this package that hold no kinds
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in HELPERS:
        importlib.import_module(f"{__name__}.{_module.name}")  # registers the module's kinds

from archspec.layers.activation import ACTIVATIONS  # noqa: E402  (after the registration above)

# Words that may trail a layer line (`conv 64 3 bn relu`): the kinds that say so.
TRAILING_WORDS = frozenset(name for name, kind in REGISTRY.items() if kind.trailing)

__all__ = [
    "ACTIVATIONS",
    "FRAMEWORKS",
    "GLOBAL",
    "REGISTRY",
    "TRAILING_WORDS",
    "ArgError",
    "LayerKind",
    "OnnxNode",
    "ReadNode",
    "ShapeError",
    "Untranslatable",
    "Window",
    "Word",
]
