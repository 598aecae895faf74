"""CA302 bias-before-batchnorm: a conv or dense layer with a bias directly followed by `bn`."""

from __future__ import annotations

from archspec.layers import TRAILING_WORDS
from archspec.lint.edits import Edit, Fix, append_word, insert, replace
from archspec.lint.engine import Rule, Violation, rule
from archspec.syntax import Call, Num, Ref


@rule
class BiasBeforeBatchNorm(Rule):
    """## What it does
    Checks for a convolution or dense layer with a bias right before `bn`.

    Layers have a bias unless they say `bias=false`; the finding counts the parameters the biases take.

    ## Why is this bad?
    BatchNorm subtracts the batch mean from every channel, which removes any constant the layer
    before it added: the bias learns nothing, and BatchNorm's own shift (beta) plays its role. The
    biases cost parameters, memory and a little compute. Torchvision's ResNets and Keras'
    MobileNets and EfficientNets build these convolutions with `bias=false` (Keras' ResNet50 keeps
    them, which is why its count is higher).

    ## Example
    ```
    conv 64 3 padding=same bn relu
    ```

    ## Use instead
    ```
    conv 64 3 padding=same bias=false bn relu
    ```

    ## Fix safety
    This fix is unsafe: the biases leave the model, so its parameter count changes and a trained
    checkpoint no longer loads. (BatchNorm cancels a bias exactly, so the retrained network can compute
    the same functions with fewer parameters.)
    """

    code = "CA302"
    name = "bias-before-batchnorm"
    fix_title = "Set `bias=false`"

    def check_node(self, ctx, node):
        if not _wasted_bias(ctx, node):
            return None
        biases = ctx.shape(node)[-1]
        firing = [n for n in ctx.expansions(node) if n is node or _wasted_bias(ctx, n)]
        help = f"Set `bias=false`: {biases:,} fewer params"
        if len(firing) > 1:
            help += f" here, {sum(ctx.shape(n)[-1] for n in firing):,} over its {len(firing)} expansions"
        edit = _bias_off(ctx, node)
        return Violation(
            node,
            f"`{node.label}` has a bias right before `bn`: BatchNorm subtracts the mean, so its "
            f"{biases:,} bias params do nothing",
            help,
            Fix(self.fix_title, (edit,)) if edit else None,
        )


def _wasted_bias(ctx, node) -> bool:
    """A conv or dense layer with a bias, feeding only a `bn`."""
    if not node.layer.has_kernel or not node.attrs["bias"]:
        return False
    following = ctx.next(node)
    return following is not None and following.layer.batch_statistics


def _bias_off(ctx, node) -> Edit | None:
    """`bias=true` → `bias=false`, or insert `bias=false` before the trailing `bn`/activation words."""
    site = ctx.site(node)
    if site is None or site.statement.span != node.span:
        return None
    statement = site.statement
    for kwarg in statement.kwargs:
        if kwarg.name == "bias":
            value = kwarg.value
            literal = (isinstance(value, Ref) and value.name.lower() == "true") or (
                isinstance(value, Num) and value.value == 1
            )
            return replace(value.span, "false") if literal else None  # a macro argument: leave it to the user
    for arg in statement.args:
        if (isinstance(arg, Ref) and arg.name in TRAILING_WORDS) or (
            isinstance(arg, Call) and arg.func in TRAILING_WORDS
        ):
            return insert(arg.span.line, arg.span.column, "bias=false ")
    return append_word(ctx.lines, statement, "bias=false")
