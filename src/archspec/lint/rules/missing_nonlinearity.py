"""CA401 missing-nonlinearity: two weight layers with no activation between them."""

from __future__ import annotations

from archspec.lint.edits import Fix, append_word
from archspec.lint.engine import Rule, Violation, rule


@rule
class MissingNonlinearity(Rule):
    """## What it does
    Checks for two weight layers with no activation between them.

    Weight layers are convolutions and dense layers; between them there are only linear layers
    (`bn`, `dropout`, `flatten`, `zeropad`, average pooling) or nothing.

    ## Why is this bad?
    The composition of linear maps is a linear map: without an activation between them, the two
    layers compute nothing one layer could not, with more parameters and compute. Usually an
    activation was forgotten. Deliberate linear pairs are not reported: a depthwise conv followed
    by a pointwise one (a separable convolution) and a narrow linear bottleneck (the middle width is
    below both outer widths, as in MobileNetV2's projection layers).

    ## Example
    ```
    conv 64 3 padding=same bn
    conv 64 3 padding=same bn relu
    ```

    ## Use instead
    ```
    conv 64 3 padding=same bn relu
    conv 64 3 padding=same bn relu
    ```

    ## Fix safety
    This fix is unsafe: an added activation changes what the network computes; train it again.
    """

    code = "CA401"
    name = "missing-nonlinearity"
    fix_title = "Add an activation after the first layer"

    def check_node(self, ctx, second):
        """Reported at the first of the two layers, found from the second."""
        if not second.layer.has_kernel or second.layer.depthwise:
            return None
        between = []
        first = ctx.input_of(second)
        # a weight layer, then linear layers without weights, then a weight layer: one linear map
        while first is not None and first.layer.linear and not first.layer.has_kernel:
            between.append(first)
            first = ctx.input_of(first)
        if first is None or not first.layer.has_kernel or first.layer.depthwise:
            return None
        middle = ctx.shape(first)[-1]
        if middle < ctx.shape(ctx.input_of(first))[-1] and middle < ctx.shape(second)[-1]:
            return None  # a linear bottleneck
        activation = ctx.usual_activation()
        return Violation(
            first,
            f"No activation between `{first.label}` (line {first.line}) and `{second.label}` (line "
            f"{second.line}): together they compute one linear map",
            f"Add an activation after `{first.label}`, e.g. `{activation}`",
            _fix(ctx, first, between, activation),
        )


def _fix(ctx, first, between, activation) -> Fix | None:
    site = ctx.site(first)
    if site is None or site.statement.span != first.span:
        return None
    if any(ctx.site(node) is not site for node in between):
        return None  # a linear layer on its own line: where the activation goes is the user's call
    edit = append_word(ctx.lines, site.statement, activation)
    return Fix(f"Add `{activation}` after `{first.label}`", (edit,)) if edit else None
