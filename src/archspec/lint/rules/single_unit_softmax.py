"""CA103 single-unit-softmax: `softmax` over a single unit."""

from __future__ import annotations

from archspec.lint.edits import Fix, replace
from archspec.lint.engine import Rule, Violation, rule


@rule
class SingleUnitSoftmax(Rule):
    """## What it does
    Checks for `softmax` applied to a tensor with one unit in its last axis.

    ## Why is this bad?
    Softmax normalizes over the last axis. With one unit it always outputs exactly 1.0, whatever the
    input: the model cannot learn anything, and its gradient is zero. A single yes/no output (binary
    classification) needs `sigmoid`, which a 1-unit head trains with binary cross-entropy.

    ## Example
    ```
    gap
    dense 1 softmax
    ```

    ## Use instead
    ```
    gap
    dense 1 sigmoid
    ```

    ## Fix safety
    This fix is unsafe: the output changes from a constant 1.0 to a sigmoid score, and training
    switches to binary cross-entropy. Train the model again.
    """

    code = "CA103"
    name = "single-unit-softmax"
    fix_title = "Replace `softmax` with `sigmoid`"

    def check_node(self, ctx, node):
        if not node.layer.sums_to_one or ctx.shape(node)[-1] != 1:
            return None
        return Violation(
            node,
            "`softmax` over 1 unit always outputs 1.0",
            "Use `sigmoid` for a single yes/no output",
            Fix(self.fix_title, (replace(node.span, "sigmoid"),)),
        )
