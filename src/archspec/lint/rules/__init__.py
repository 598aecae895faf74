"""The lint rules, one module per rule, registered by code. Codes are grouped by theme:

- CA1xx  head and task: how the network ends (flatten heads, dense on spatial maps, output activations)
- CA2xx  convolutions: kernel sizes and channel counts
- CA3xx  normalization and regularization: BatchNorm, LRN, dropout
- CA4xx  activations
- CA5xx  depth and topology: receptive field, pooling, shortcut connections
- CA9xx  the lint comments themselves: `# noqa` that suppresses nothing

Every module of this package is one rule and is imported here, so a new rule needs nothing but its
own module (as a layer kind needs nothing but its module in `archspec.layers`).
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")  # registers the module's rule in RULES, by code
