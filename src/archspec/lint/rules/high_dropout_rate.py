"""CA305 high-dropout-rate: a dropout rate above 0.5."""

from __future__ import annotations

from archspec.lint.engine import Rule, Violation, rule

MAX_RATE = 0.5


@rule
class HighDropoutRate(Rule):
    """## What it does
    Checks for `dropout` with a rate above 0.5.

    ## Why is this bad?
    A rate is the fraction of values zeroed while training: above 0.5 most of the signal is gone
    at every step, so training slows down and the model underfits more than it is regularized.
    The original dropout paper used 0.5 for dense layers and less for convolutions; 0.1 to 0.5 is
    the usual range.

    ## Example
    ```
    dropout 0.8
    dense 10 softmax
    ```

    ## Use instead
    ```
    dropout 0.5
    dense 10 softmax
    ```
    """

    code = "CA305"
    name = "high-dropout-rate"

    def check_node(self, ctx, node):
        rate = node.attrs.get("rate") if node.layer.family == "dropout" else None
        if rate is None or rate <= MAX_RATE:
            return None
        return Violation(
            node,
            f"`{node.label}` zeroes {rate:.0%} of the values at every training step",
            f"Use a rate of at most {MAX_RATE:g}; 0.1 to 0.5 is the usual range",
        )
