"""CA102 dense-on-spatial-input: a `dense` layer applied to an HxWxC tensor."""

from __future__ import annotations

from archspec.lint.engine import Rule, Violation, rule
from archspec.text import describe_shape


@rule
class DenseOnSpatialInput(Rule):
    """## What it does
    Checks for a `dense` layer applied to a map that still has height and width.

    Such a map reaches a dense layer when no `flatten` or global pooling (`gap`, `gmp`) comes
    before it. Reported only when the model's output is still a map: a dense layer used on purpose
    as a per-pixel MLP before a later `gap`, as in ConvNeXt's blocks, is not reported.

    ## Why is this bad?
    On an HxWxC tensor a dense layer acts on the last axis only: it is a 1x1 convolution applied at
    every position, and the model outputs a map of predictions instead of one per image. This is
    almost always a forgotten `gap` or `flatten` before the classifier. (A dense layer on a 1x1xC
    tensor, as in squeeze-excite blocks, is not reported.)

    ## Example
    ```
    conv 64 3 relu
    maxpool 2
    dense 10 softmax
    ```

    ## Use instead
    ```
    conv 64 3 relu
    maxpool 2
    gap
    dense 10 softmax
    ```
    """

    code = "CA102"
    name = "dense-on-spatial-input"
    whole_network = True

    def check(self, ctx):
        output = ctx.typed.output_shape
        if len(output) != 3 or output[0] * output[1] == 1:
            return  # the grid is reduced later: a per-pixel dense layer is deliberate
        for node in ctx.nodes:
            if node.layer.family != "dense":
                continue
            source = ctx.input_of(node)
            shape = ctx.shape(source)
            if len(shape) != 3 or shape[0] * shape[1] == 1 or _follows_spatial_dense(ctx, source):
                continue
            yield Violation(
                node,
                f"`{node.label}` gets a {describe_shape(shape)} tensor: it acts on each of the "
                f"{shape[0] * shape[1]:,} positions separately",
                f"Insert `gap` (or `flatten`) before it; as written the model outputs "
                f"{describe_shape(ctx.typed.output_shape)}",
            )


def _follows_spatial_dense(ctx, node) -> bool:
    """Whether a dense layer on the same spatial grid comes before `node` (report only the first)."""
    grid = ctx.shape(node)[:2]
    while node is not None and ctx.shape(node)[:2] == grid and len(ctx.shape(node)) == 3:
        if node.layer.family == "dense":
            return True
        if node.layer.has_kernel:
            return False
        node = ctx.input_of(node)
    return False
