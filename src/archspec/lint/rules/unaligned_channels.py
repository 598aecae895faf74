"""CA202 unaligned-channels: a channel count that is not a multiple of 8 (informational, opt-in)."""

from __future__ import annotations

from archspec.lint.engine import Rule, Violation, rule

ALIGNMENT = 8


@rule
class UnalignedChannels(Rule):
    """## What it does
    Checks for channel counts that are not a multiple of 8.

    It looks at the output channels of convolutions and dense layers; the final classifier is not
    checked, as its width is the number of classes. This rule is informational and not selected by
    default: turn it on with `--extend-select CA202`.

    ## Why is this bad?
    GPU tensor cores multiply fp16/bf16 matrices in tiles whose sides are multiples of 8; other
    widths are padded or fall back to slower kernels. Rounding a width to a multiple of 8 (as
    MobileNet's and EfficientNet's `make_divisible` does) costs little accuracy and can speed up
    training noticeably.

    ## Example
    ```
    conv 6 5 tanh
    flatten
    dense 84 tanh
    dense 10 softmax
    ```

    ## Use instead
    ```
    conv 8 5 tanh
    flatten
    dense 88 tanh
    dense 10 softmax
    ```
    """

    code = "CA202"
    name = "unaligned-channels"
    severity = "info"
    default = False

    def check_node(self, ctx, node):
        arg = node.layer.width_arg
        if arg is None or node.attrs[arg] % ALIGNMENT == 0 or not _weights_after(ctx, node):
            return None
        width = node.attrs[arg]
        lower = width // ALIGNMENT * ALIGNMENT
        choices = f"{lower} or {lower + ALIGNMENT}" if lower else f"{ALIGNMENT}"
        return Violation(
            node,
            f"`{node.label}` has {width} output channels, not a multiple of {ALIGNMENT}",
            f"Use {choices}: GPU tensor cores work on multiples of {ALIGNMENT} (fp16/bf16) and pad the rest",
        )


def _weights_after(ctx, node) -> bool:
    """Whether a weight layer comes after `node` (it is not the classifier): the nearest are found first."""
    frontier, seen = [node], {node.id}
    while frontier:
        for after in ctx.consumers(frontier.pop()):
            if after.layer.has_kernel:
                return True
            if after.id not in seen:
                seen.add(after.id)
                frontier.append(after)
    return False
