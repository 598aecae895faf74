"""The lint rules, one module per rule, registered by code. Codes are grouped by theme:

- CA1xx  head and task: how the network ends (flatten heads, dense on spatial maps, output activations)
- CA2xx  convolutions: kernel sizes and channel counts
- CA3xx  normalization and regularization: BatchNorm, LRN, dropout
- CA4xx  activations
- CA5xx  depth and topology: receptive field, pooling, shortcut connections
"""

from archspec.lint.rules import (  # noqa: F401  (registration, in code order)
    flatten_dense_head,
    dense_on_spatial_input,
    single_unit_softmax,
    sigmoid_multiclass_head,
    activation_after_softmax,
    large_kernel,
    unaligned_channels,
    local_response_norm,
    bias_before_batchnorm,
    dropout_before_batchnorm,
    dropout_before_pooling,
    high_dropout_rate,
    missing_nonlinearity,
    double_activation,
    small_receptive_field,
    pooling_after_every_conv,
    deep_plain_stack,
)
