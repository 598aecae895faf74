"""CA501 small-receptive-field: the features the head sees cover less than half the input."""

from __future__ import annotations

from archspec.layers import GLOBAL
from archspec.lint.engine import Rule, Violation, rule


@rule
class SmallReceptiveField(Rule):
    """## What it does
    Checks that the features reaching the head see at least half the input.

    It takes the receptive field of the last spatial layer, where `flatten`, `gap` or `gmp` starts
    the head: the window of input pixels each feature depends on. A window smaller than half the
    input's height or width is reported.

    ## Why is this bad?
    A feature can only describe what its window covers. When the last convolutional features see
    16x16 pixels of a 224x224 image, the network recognizes textures and small parts, never a whole
    object; pooling or flattening them afterwards does not add context. Classification networks
    grow the window past the image size with a few downsampling stages (ResNet-50's last features see
    more than 400 pixels).

    ## Example
    ```
    input 224x224x3
    conv 32 3 relu
    maxpool 2
    conv 64 3 relu
    gap
    dense 10 softmax
    ```

    ## Use instead
    ```
    input 224x224x3
    conv 32 3 stride=2 relu
    conv 64 3 stride=2 relu
    conv 128 3 stride=2 relu
    conv 256 3 stride=2 relu
    conv 256 3 stride=2 relu
    conv 256 3 relu
    gap
    dense 10 softmax
    ```
    """

    code = "CA501"
    name = "small-receptive-field"
    whole_network = True

    def check(self, ctx):
        if len(ctx.typed.input_shape) != 3:
            return
        height, width = ctx.typed.input_shape[:2]
        head = ctx.nodes[-1]
        while head.inputs and not (_sees_everything(head) and _spatial(ctx.shape(ctx.nodes[head.inputs[0]]))):
            head = ctx.nodes[head.inputs[0]]
        if not head.inputs:
            return
        window = ctx.info(ctx.nodes[head.inputs[0]]).receptive_field
        if window is None or (2 * window[0] >= height and 2 * window[1] >= width):
            return
        yield Violation(
            head,
            f"Features reaching `{head.kind}` see {window[0]}x{window[1]} pixels of the {height}x{width} input "
            f"({window[0] / height:.0%} of its height): the head cannot see a whole object",
            f"Add downsampling stages (strided convs or pooling) or more convs, until the receptive field "
            f"covers at least {(height + 1) // 2}x{(width + 1) // 2} (half the input)",
        )


def _sees_everything(node) -> bool:
    """A layer whose every output depends on its whole input: where `flatten` or `gap` starts the head."""
    return node.layer.window(node.attrs) == GLOBAL


def _spatial(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[0] * shape[1] > 1
