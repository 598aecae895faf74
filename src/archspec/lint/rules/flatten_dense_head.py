"""CA101 flatten-dense-head: the dense layers after a `flatten` hold most of the parameters."""

from __future__ import annotations

from archspec.head import dense_head
from archspec.lint.edits import Fix, replace
from archspec.lint.engine import Rule, Violation, rule


@rule
class FlattenDenseHead(Rule):
    """## What it does
    Checks for a dense head after `flatten` that holds most of the model's parameters.

    It reports the head when its share passes `dense-share-threshold` (default 0.5), with the
    parameter counts now, with global average pooling (`gap`) instead of `flatten`, and with a
    lean head (`gap` then only the final classifier).

    It stays quiet when `gap` would save nothing: when the map reaching `flatten` is already 1x1,
    `gap` computes the same values, so the rule fires only when the parameter count with `gap` is
    strictly below the count now (and the share is above the threshold).

    ## Why is this bad?
    `flatten` turns an HxWxC feature map into H·W·C inputs for the first dense layer, so that layer's
    weights grow with the image size: in the Keras tutorial CNN at 224x224 the head holds 99.4% of
    11.6 M parameters. Global average pooling (`gap`) keeps one value per channel. Since ResNet,
    mainstream networks end with `gap` and one classifier: the head becomes independent of the input
    size, tolerates where in the image a feature appears, and overfits less, at a tiny fraction of the
    parameters.

    ## Example
    ```
    conv 64 3 relu
    maxpool 2
    flatten
    dropout 0.3
    dense 64 relu
    dense 10 softmax
    ```

    ## Use instead
    ```
    conv 64 3 relu
    maxpool 2
    gap
    dropout 0.3
    dense 10 softmax
    ```

    ## Fix safety
    This fix is unsafe: `gap` in place of `flatten` changes what the network computes and removes
    most of its parameters (99% of the flatten-head template's). A trained model no longer fits the new
    spec; train it again.

    ## Options
    - `dense-share-threshold` (`--dense-share-threshold`): the share of all parameters above which
      the dense head is reported, from 0 to 1.
    """

    code = "CA101"
    name = "flatten-dense-head"
    whole_network = True
    fix_title = "Replace `flatten` with `gap`"

    def check(self, ctx):
        head = dense_head(ctx.typed)
        if head is None or not head.worth_reporting(ctx.settings.dense_share_threshold):
            return
        counts = [f"{head.total_params:,} params now"]
        if head.with_gap is not None:
            counts.append(f"{head.with_gap:,} with `gap`")
        if head.lean is not None:
            counts.append(f"{head.lean:,} with a lean head")
        message = f"Dense head after `flatten` holds {head.share:.1%} of the parameters: {', '.join(counts)}"
        if head.with_gap is None:
            help = "A layer after `flatten` needs its exact size, so `gap` cannot simply replace it"
            yield Violation(head.flatten, message, help)
            return
        help = (
            f"Replace `flatten` with `gap` (global average pooling): "
            f"{1 - head.with_gap / head.total_params:.1%} fewer parameters"
        )
        if head.lean is not None:
            help += f"; keep only the final `{head.classifier.label}` after it for {head.lean:,}"
        fix = Fix(self.fix_title, (replace(head.flatten.span, "gap"),))
        yield Violation(head.flatten, message, help, fix)
