"""The lint rules, one module per rule, registered by code. Codes are grouped by theme:

- CA1xx  head and task: how the network ends (flatten heads, dense on spatial maps, output activations)
- CA2xx  convolutions: kernel sizes and channel counts
- CA3xx  normalization and regularization: BatchNorm, LRN, dropout
- CA4xx  activations
- CA5xx  depth and topology: receptive field, pooling, shortcut connections
- CA9xx  the lint comments themselves: `# noqa` that suppresses nothing
"""

from archspec.lint.rules import (  # noqa: F401  (registration; RULES keeps code order)
    activation_after_softmax,
    bias_before_batchnorm,
    deep_plain_stack,
    dense_on_spatial_input,
    double_activation,
    dropout_before_batchnorm,
    dropout_before_pooling,
    flatten_dense_head,
    high_dropout_rate,
    large_kernel,
    local_response_norm,
    missing_nonlinearity,
    pooling_after_every_conv,
    sigmoid_multiclass_head,
    single_unit_softmax,
    small_receptive_field,
    unaligned_channels,
    unused_noqa,
)
