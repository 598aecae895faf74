"""CA105 activation-after-softmax: an activation applied to softmax probabilities."""

from __future__ import annotations

from archspec.lint.edits import Fix, remove_layer
from archspec.lint.engine import Rule, Violation, rule


@rule
class ActivationAfterSoftmax(Rule):
    """## What it does
    Checks for an activation (`relu`, `sigmoid`, another `softmax`...) right after `softmax`.

    ## Why is this bad?
    Softmax already outputs class probabilities. Another activation on top distorts them: `relu`
    does nothing to positive values, `sigmoid` squeezes them into 0.5..0.73, a second `softmax`
    flattens them towards uniform. The loss then trains on the wrong numbers.

    ## Example
    ```
    dense 10 softmax
    sigmoid
    ```

    ## Use instead
    ```
    dense 10 softmax
    ```

    ## Fix safety
    This fix is unsafe: without the extra activation the model's outputs change (they become the
    softmax probabilities), and so does what training optimizes.
    """

    code = "CA105"
    name = "activation-after-softmax"
    fix_title = "Remove the activation after `softmax`"

    def check_node(self, ctx, node):
        if not ctx.is_activation(node):
            return None
        source = ctx.input_of(node)
        if source is None or not source.layer.sums_to_one:
            return None
        edit = remove_layer(ctx, node)
        return Violation(
            node,
            f"`{node.kind}` after `softmax` (line {source.line}) distorts the class probabilities",
            f"Remove `{node.kind}`: `softmax` already outputs probabilities",
            Fix(f"Remove `{node.kind}`", (edit,)) if edit else None,
        )
