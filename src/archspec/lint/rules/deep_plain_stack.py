"""CA503 deep-plain-stack: more than 20 weight layers deep and no shortcut connection."""

from __future__ import annotations

from archspec.lint.engine import Rule, Violation, rule

MAX_PLAIN_DEPTH = 20


@rule
class DeepPlainStack(Rule):
    """## What it does
    Checks for a network more than 20 weight layers deep with no shortcut connection.

    Depth counts convolutions and dense layers along the longest path. A shortcut is an `add:` block,
    or a merge with a branch that has no weight layers: an `identity` branch in `concat:`, as in
    DenseNet, or the pass-through half of a channel split (`channels 0:c//2`), as in ShuffleNetV2.

    ## Why is this bad?
    Past about 20 layers, plain stacks get *worse* with depth, in training error as well as test
    error: the degradation problem that ResNet (He et al., 2015) solved with identity shortcuts,
    which let gradients and features skip layers. VGG stopped at 19 weight layers for this reason.

    ## Example
    ```
    input 56x56x64
    repeat 24:
        conv 64 3 padding=same bn relu
    ```

    ## Use instead
    ```
    input 56x56x64
    repeat 12:
        add:
            identity
            branch:
                conv 64 3 padding=same bn relu
                conv 64 3 padding=same bn
    ```
    """

    code = "CA503"
    name = "deep-plain-stack"
    whole_network = True

    def check(self, ctx):
        nodes = ctx.nodes
        if any(node.layer.residual for node in nodes):  # the usual shortcut, found without the depths
            return
        depth = [0] * len(nodes)
        for node in nodes:
            depth[node.id] = max((depth[i] for i in node.inputs), default=0) + int(node.layer.has_kernel)
        deepest = max(depth)
        if deepest <= MAX_PLAIN_DEPTH or any(_is_shortcut(ctx, node) for node in nodes):
            return
        node = next(n for n in nodes if depth[n.id] == MAX_PLAIN_DEPTH + 1 and n.layer.has_kernel)
        yield Violation(
            node,
            f"{deepest} weight layers deep with no shortcut connection (layer {MAX_PLAIN_DEPTH + 1} is here): "
            f"plain networks this deep train worse than shallower ones",
            "Add residual connections: wrap pairs of convs in `add:` with an `identity` branch "
            "(see `cnn-arch summarize resnet50`)",
            span=ctx.top_level_span(node),
        )


def _is_shortcut(ctx, node) -> bool:
    """An `add`, or a merge with an input that a weightless path joins to the fork of another input."""
    if node.layer.residual:
        return True
    if len(node.inputs) < 2:
        return False
    return any(
        _reaches(ctx, fork, other)
        for branch in node.inputs
        for fork in _weightless_path(ctx, branch)
        for other in node.inputs
        if other != branch
    )


def _weightless_path(ctx, start: int) -> list[int]:
    """`start` and the nodes above it reached through weightless single-input layers (`channels 0:8`)."""
    path = [start]
    current = ctx.nodes[start]
    while not current.layer.has_kernel and len(current.inputs) == 1:
        current = ctx.nodes[current.inputs[0]]
        path.append(current.id)
    return path


def _reaches(ctx, source: int, target: int) -> bool:
    """Whether node `source` is an ancestor of node `target` (ids are topological)."""
    frontier, seen = [target], {target}
    while frontier:
        current = frontier.pop()
        if current == source:
            return True
        for i in ctx.nodes[current].inputs:
            if i >= source and i not in seen:
                seen.add(i)
                frontier.append(i)
    return False
