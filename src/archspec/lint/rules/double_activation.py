"""CA402 double-activation: two activations in a row."""

from __future__ import annotations

from archspec.lint.edits import Fix, remove_layer
from archspec.lint.engine import Rule, Violation, rule


@rule
class DoubleActivation(Rule):
    """## What it does
    Checks for an activation applied right after another one (`relu relu`, `relu sigmoid`).
    An activation after `softmax` is reported by CA105 instead.

    ## Why is this bad?
    A repeated `relu` or `relu6` does nothing; two different activations in a row are almost always
    a mistake: `dense 10 relu softmax` clips every negative logit to 0 before softmax, so the model
    cannot rule a class out. Either way one of them should go.

    ## Example
    ```
    conv 64 3 relu relu
    dense 10 relu softmax
    ```

    ## Use instead
    ```
    conv 64 3 relu
    dense 10 softmax
    ```

    ## Fix safety
    The fix is safe for an activation that gives the same result applied twice as once (`relu`,
    `relu6`): removing the repeat leaves the network's function unchanged. Removing a repeat of any other
    activation (`tanh tanh`, `sigmoid sigmoid`) changes the outputs, so that fix is unsafe.
    """

    code = "CA402"
    name = "double-activation"
    fix_title = "Remove the repeated activation"

    def check_node(self, ctx, node):
        if not ctx.is_activation(node):
            return None
        source = ctx.input_of(node)
        if source is None or source.layer.sums_to_one or not ctx.is_activation(source):
            return None
        fix = None
        if node.kind == source.kind:
            edit = remove_layer(ctx, node)
            # removing a repeat is safe only where the repeat changed nothing
            fix = Fix(f"Remove the repeated `{node.kind}`", (edit,), safe=node.layer.idempotent) if edit else None
            help = f"Remove the repeated `{node.kind}`"
        else:
            help = f"Keep one of `{source.kind}` and `{node.kind}`"
        return Violation(
            node,
            f"`{node.kind}` right after `{source.kind}` (line {source.line}): two activations in a row",
            help,
            fix,
        )
