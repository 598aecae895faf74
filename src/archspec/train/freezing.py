"""`--freeze UPTO`: which layers keep their weights while the rest train (a frozen trunk under a new head).

UPTO is a spec line or a named tensor (`@trunk`); the layers of that line (or the layer that makes the
tensor) and every layer they read from, directly or not, are frozen. As Keras does for a layer with
`trainable=False`, a frozen BatchNorm runs in inference mode: it normalizes with its moving statistics
and never updates them, in training steps and in the precise-BN recompute alike.
"""

from __future__ import annotations

from archspec.errors import UserError
from archspec.text import did_you_mean


def frozen_nodes(typed, upto: str | None) -> frozenset[int]:
    """The ids of the nodes `--freeze upto` freezes (none for None)."""
    if upto is None:
        return frozenset()
    graph = typed.graph
    text = upto.strip()
    if text.startswith("@"):
        names = {name: node for node, name in graph.names}
        if text[1:] not in names:
            hint = did_you_mean(text[1:], list(names), "`@{}`") or (
                f"the spec names {', '.join('@' + n for n in names)}" if names else "name a tensor with `-> NAME`"
            )
            raise UserError(f"`--freeze {text}`: the spec names no tensor `{text[1:]}`", hint=hint)
        ends = [names[text[1:]]]
    else:
        if not text.isdigit():
            raise UserError(f"`--freeze` takes a spec line number or `@name`, got `{upto}`")
        line = int(text)
        ends = [
            node.id
            for node in graph.nodes
            if node.line == line or any(origin.span.line == line for origin in node.origins)
        ]
        if not ends:
            raise UserError(
                f"`--freeze {line}`: line {line} of {typed.graph.source.name} holds no layer",
                hint="give the line of the last layer to freeze (as `cnn-arch summarize` lists them), or `@name`",
            )
    frozen, todo = set(), list(ends)
    while todo:
        node = todo.pop()
        if node not in frozen:
            frozen.add(node)
            todo.extend(graph.nodes[node].inputs)
    return frozenset(frozen)


def module_names(typed, nodes: frozenset[int]) -> frozenset[str]:
    """The model's module names (`conv_3`) of frozen nodes."""
    return frozenset(f"{typed.graph.nodes[i].kind}_{i}" for i in nodes)


def parameter_counts(params: dict, frozen_modules: frozenset[str]) -> tuple[int, int]:
    """(trainable, frozen) parameters of a model's parameter dict (BatchNorm statistics are neither)."""
    import jax

    counts = [0, 0]
    for name, tree in params["layers"].items():
        counts[name in frozen_modules] += sum(leaf.size for leaf in jax.tree.leaves(tree))
    return counts[0], counts[1]


def split(params: dict, frozen_modules: frozenset[str]) -> tuple[dict, dict]:
    """(trainable, frozen) halves of a parameter dict."""
    layers = params["layers"]
    trainable = {name: tree for name, tree in layers.items() if name not in frozen_modules}
    frozen = {name: tree for name, tree in layers.items() if name in frozen_modules}
    return {**params, "layers": trainable}, {"layers": frozen}


def join(trainable: dict, frozen: dict) -> dict:
    return {**trainable, "layers": {**trainable["layers"], **frozen["layers"]}}
