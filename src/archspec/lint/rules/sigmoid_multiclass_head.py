"""CA104 sigmoid-multiclass-head: the model's output is a `sigmoid` over more than two units."""

from __future__ import annotations

from archspec.lint.engine import Rule, Violation, rule


@rule
class SigmoidMulticlassHead(Rule):
    """## What it does
    Checks for a model whose output layer is `sigmoid` over more than two units.

    ## Why is this bad?
    Sigmoid scores each unit on its own: the outputs do not sum to 1, so they are not a probability
    distribution over classes, and training treats every class as an independent yes/no question.
    When each example has exactly one label, `softmax` (trained with cross-entropy) is the matching
    head. Multi-label tasks, where an image can carry several labels at once, do want `sigmoid`:
    keep it there and add `# noqa: CA104`. (Sigmoid gates inside the network, as in squeeze-excite
    blocks, are not reported.)

    ## Example
    ```
    gap
    dense 10 sigmoid
    ```

    ## Use instead
    ```
    gap
    dense 10 softmax
    ```
    """

    code = "CA104"
    name = "sigmoid-multiclass-head"
    whole_network = True

    def check(self, ctx):
        output = ctx.nodes[-1]
        shape = ctx.shape(output)
        independent = output.layer.probability_output and not output.layer.sums_to_one  # sigmoid
        if independent and len(shape) == 1 and shape[0] > 2:
            yield Violation(
                output,
                f"The output `{output.kind}` scores {shape[0]} units independently: they do not sum to 1",
                "Use `softmax` when each example has one label; for a multi-label task keep `sigmoid` and "
                "add `# noqa: CA104`",
            )
