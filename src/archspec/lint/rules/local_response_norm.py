"""CA301 local-response-norm: AlexNet's local response normalization."""

from __future__ import annotations

from archspec.lint.edits import Fix, remove_layer
from archspec.lint.engine import Rule, Violation, rule
from archspec.text import describe_shape


@rule
class LocalResponseNorm(Rule):
    """## What it does
    Checks for `lrn` (local response normalization) layers.

    ## Why is this bad?
    AlexNet (2012) normalized activations across neighbouring channels with LRN. VGG (2014) measured
    it and found it adds no accuracy while costing memory and compute; later networks dropped it.
    Where a network needs normalization, BatchNorm (`bn`) does the job and also speeds up training.

    ## Example
    ```
    conv 96 11 stride=4 relu
    lrn
    maxpool 3 stride=2
    ```

    ## Use instead
    ```
    conv 96 11 stride=4 relu
    maxpool 3 stride=2
    ```

    ## Fix safety
    This fix is unsafe: without `lrn` the layers after it see activations of another scale, so
    the trained network no longer computes the same function. Train it again.
    """

    code = "CA301"
    name = "local-response-norm"
    fix_title = "Remove the `lrn` line"

    def check_node(self, ctx, node):
        if not node.layer.neighbour_channel_norm:
            return None
        edit = remove_layer(ctx, node)
        return Violation(
            node,
            f"Local response normalization (over a {describe_shape(ctx.shape(node))} tensor) adds no "
            f"measurable accuracy",
            "Remove it; use `bn` where the network needs normalization",
            Fix(self.fix_title, (edit,)) if edit else None,
        )
