"""CA502 pooling-after-every-conv: every convolution of a deep network is followed by pooling."""

from __future__ import annotations

from archspec.lint.engine import Rule, Violation, rule

MIN_CONVS = 4
# Layer families that keep the resolution, looked through on the way from a conv to its pooling.
PASS_THROUGH = frozenset({"norm", "dropout", "pad", "activation"})


@rule
class PoolingAfterEveryConv(Rule):
    """## What it does
    Checks for a deep network that pools after every convolution.

    It reports networks of four or more convolutions in which each one is followed by `maxpool` or
    `avgpool` (after its `bn`, activation or dropout).

    ## Why is this bad?
    Each pooling halves the resolution, so every resolution gets a single convolution to build its
    features before the detail is gone, and the feature map shrinks to a few pixels after a handful
    of layers. VGG stacks two or three 3x3 convs before each pooling: a wider receptive field and
    more non-linearity per resolution, with fewer poolings overall.

    ## Example
    ```
    conv 32 3 padding=same relu
    maxpool 2
    conv 64 3 padding=same relu
    maxpool 2
    conv 128 3 padding=same relu
    maxpool 2
    conv 256 3 padding=same relu
    maxpool 2
    ```

    ## Use instead
    ```
    conv 32 3 padding=same relu
    conv 32 3 padding=same relu
    maxpool 2
    conv 64 3 padding=same relu
    conv 64 3 padding=same relu
    maxpool 2
    conv 128 3 padding=same relu
    conv 128 3 padding=same relu
    maxpool 2
    ```
    """

    code = "CA502"
    name = "pooling-after-every-conv"
    whole_network = True

    def check(self, ctx):
        convs = []
        last_pool = None
        for conv in ctx.nodes:  # stops at the first conv not followed by pooling
            if conv.layer.family != "conv":
                continue
            following = ctx.next(conv)
            while following is not None and following.layer.family in PASS_THROUGH:
                following = ctx.next(following)
            if following is None or following.layer.family != "pool":
                return
            convs.append(conv)
            last_pool = following
        if len(convs) < MIN_CONVS:
            return
        before = ctx.shape(ctx.input_of(convs[0]))
        after = ctx.shape(last_pool)
        yield Violation(
            convs[0],
            f"Each of the {len(convs)} convs is followed by pooling: {before[0]}x{before[1]} shrinks to "
            f"{after[0]}x{after[1]} with one conv per resolution",
            "Stack two or three convs before each pooling (as VGG does), or pool less often",
            span=ctx.top_level_span(convs[0]),
        )
