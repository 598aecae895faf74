"""CA201 large-kernel: a 5x5 or larger convolution after the stem."""

from __future__ import annotations

import itertools

from archspec.lint.engine import Rule, Violation, rule

NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}


@rule
class LargeKernel(Rule):
    """## What it does
    Checks for convolutions with a 5x5 or larger kernel after the stem.

    The stem is the network's first weight layer. The finding gives the parameters of a stack of
    3x3 convs with the same receptive field, whose middle layers are as wide as the narrower of
    the conv's input and output.

    ## Why is this bad?
    Two 3x3 convolutions see a 5x5 window, three see 7x7 (VGG, 2014). The stack has fewer weights
    (18·C² instead of 25·C² for 5x5 with C channels in and out) and one more non-linearity between
    its layers. Inception-v2/v3 replaced their 5x5 convolutions this way. The stem is left alone: on
    the raw image a wide first kernel is cheap and common (ResNet's 7x7). Depthwise convolutions are
    not checked either, as their large kernels cost little.

    ## Example
    ```
    conv 64 3 padding=same relu
    conv 128 5 padding=same relu
    ```

    ## Use instead
    ```
    conv 64 3 padding=same relu
    conv 64 3 padding=same relu
    conv 128 3 padding=same relu
    ```
    """

    code = "CA201"
    name = "large-kernel"

    def check_node(self, ctx, node):
        if not node.layer.full_kernel:
            return None
        (kh, kw), dilation = node.attrs["kernel"], node.attrs["dilation"]
        if kh != kw or kh < 5 or dilation != (1, 1) or not _after_weights(ctx, node):
            return None
        channels_in, filters = ctx.shape(ctx.input_of(node))[-1], node.attrs["filters"]
        count = kh // 2  # n stacked 3x3 convs see a (2n+1)x(2n+1) window
        widths = [channels_in, *[min(channels_in, filters)] * (count - 1), filters]
        bias = node.attrs["bias"]
        stacked = sum(9 * a * b // node.attrs["groups"] + (b if bias else 0) for a, b in itertools.pairwise(widths))
        now = ctx.info(node).params  # always more: 25·m·M > 9·m·(m + M) for m <= M
        stack = f"{NUMBERS.get(count, count)} stacked 3x3 convs"
        return Violation(
            node,
            f"`{node.label}` after the stem: {stack} see the same {2 * count + 1}x{2 * count + 1} window "
            f"with {stacked:,} params instead of {now:,} ({1 - stacked / now:.0%} fewer)",
            f"Replace it with {stack} ({' → '.join(map(str, widths))} channels), an activation between "
            f"them and any stride on the last",
        )


def _after_weights(ctx, node) -> bool:
    """Whether a weight layer comes before `node` (it is past the stem): the nearest ones are found first."""
    frontier, seen = list(node.inputs), set(node.inputs)
    while frontier:
        before = ctx.node(frontier.pop())
        if before.layer.has_kernel:
            return True
        for i in before.inputs:
            if i not in seen:
                seen.add(i)
                frontier.append(i)
    return False
