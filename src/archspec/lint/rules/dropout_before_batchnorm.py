"""CA303 dropout-before-batchnorm: `dropout` directly followed by `bn`."""

from __future__ import annotations

from archspec.lint.edits import Fix, swap_layers
from archspec.lint.engine import Rule, Violation, rule


@rule
class DropoutBeforeBatchNorm(Rule):
    """## What it does
    Checks for `dropout` right before `bn`.

    ## Why is this bad?
    During training BatchNorm collects its moving variance from dropped-out activations; at inference
    dropout is off, the variance is different, and BatchNorm normalizes with the wrong statistics
    ("variance shift", Li et al., 2019). Accuracy drops for no gain. Put dropout after the last
    BatchNorm, usually right before the classifier.

    ## Example
    ```
    conv 64 3 relu
    dropout 0.3
    bn
    ```

    ## Use instead
    ```
    conv 64 3 relu
    bn
    dropout 0.3
    ```

    ## Fix safety
    This fix is unsafe: with the two layers swapped, BatchNorm normalizes other values while
    training, and the trained network is a different one.
    """

    code = "CA303"
    name = "dropout-before-batchnorm"
    fix_title = "Move `dropout` after `bn`"

    def check_node(self, ctx, node):
        if node.layer.family != "dropout":
            return None
        following = ctx.next(node)
        if following is None or not following.layer.batch_statistics:
            return None
        edits = swap_layers(ctx, node, following)
        return Violation(
            node,
            f"`{node.label}` right before `bn` (line {following.line}): BatchNorm learns its variance with "
            f"dropout on and uses it with dropout off",
            "Move the dropout after `bn`",
            Fix(self.fix_title, edits) if edits else None,
        )
