"""CA304 dropout-before-pooling: `dropout` directly followed by a pooling layer."""

from __future__ import annotations

import math

from archspec.lint.edits import Fix, swap_layers
from archspec.lint.engine import Rule, Violation, rule
from archspec.text import describe_shape

POOLING = ("pool", "global_pool")  # layer families


@rule
class DropoutBeforePooling(Rule):
    """## What it does
    Checks for `dropout` right before a pooling layer: `maxpool`, `avgpool`, `gap` or `gmp`.

    ## Why is this bad?
    Pooling mixes each dropped value with its neighbours: average pooling (above all `gap`, over
    the whole map) washes the dropout noise out, and max pooling mostly picks a surviving neighbour,
    so the regularization is far weaker than the rate says. Dropout on the larger, unpooled tensor
    also costs more memory and time. Dropout after the pooling acts on what the next layer sees.

    ## Example
    ```
    conv 64 3 relu
    dropout 0.3
    gap
    dense 10 softmax
    ```

    ## Use instead
    ```
    conv 64 3 relu
    gap
    dropout 0.3
    dense 10 softmax
    ```

    ## Fix safety
    This fix is unsafe: dropping values after pooling instead of before changes what the network
    computes while training.
    """

    code = "CA304"
    name = "dropout-before-pooling"
    fix_title = "Move `dropout` after the pooling"

    def check_node(self, ctx, node):
        if node.layer.family != "dropout":
            return None
        following = ctx.next(node)
        if following is None or following.layer.family not in POOLING:
            return None
        before, after = ctx.shape(node), ctx.shape(following)
        edits = swap_layers(ctx, node, following)
        return Violation(
            node,
            f"`{node.label}` right before `{following.label}`: it drops values of a {describe_shape(before)} "
            f"tensor that pooling then reduces {math.prod(before) // math.prod(after):,}-fold to "
            f"{describe_shape(after)}",
            f"Move the dropout after `{following.label}`",
            Fix(self.fix_title, edits) if edits else None,
        )
