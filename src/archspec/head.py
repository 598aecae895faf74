"""The dense-head analysis behind the project's headline finding: how much of the model sits in
the dense layers after a `flatten`, and what global average pooling would leave.

Shared by `summarize` (its closing suggestion) and the lint rule for flatten heads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # kept out of the import so that the CLI can read the threshold at start-up
    from archspec.infer import TypedGraph
    from archspec.ir import Node

# Report a dense head (CA101) and suggest global pooling (summarize) above this share of the parameters.
DENSE_SHARE_THRESHOLD = 0.5


@dataclass(frozen=True)
class DenseHead:
    flatten: Node  # the `flatten` the head starts at
    head_params: int  # parameters of every layer after the flatten
    total_params: int
    with_gap: int | None  # total parameters if the flatten became `gap` (None: cannot be re-typed)
    lean: int | None  # total with `gap` then only the final classifier
    classifier: Node | None  # the head's last dense layer

    @property
    def share(self) -> float:
        return self.head_params / self.total_params if self.total_params else 0.0

    @property
    def gap_saves(self) -> bool:
        """Whether `gap` in place of the flatten leaves strictly fewer parameters. It does not when the map
        reaching the flatten is already 1x1: then `gap` computes the same thing."""
        return self.with_gap is not None and self.with_gap < self.total_params

    def worth_reporting(self, threshold: float) -> bool:
        """The head holds more than `threshold` of the parameters and `gap` would save some, or cannot be
        typed at all (then the head is still reported, without a fix). CA101 and the summary ask this."""
        return self.share > threshold and (self.with_gap is None or self.gap_saves)


def dense_head(typed: TypedGraph) -> DenseHead | None:
    """Analyse the head after the last `flatten` of a spatial tensor; None when there is none."""
    graph = typed.graph
    flattens = [n for n in graph.nodes if n.kind == "flatten" and len(typed.infos[n.inputs[0]].shape) == 3]
    if not flattens:
        return None
    flatten = flattens[-1]
    head = _descendants(typed, flatten)
    head_params = sum(typed.infos[i].params for i in head)
    denses = [graph.nodes[i] for i in sorted(head) if graph.nodes[i].layer.family == "dense"]
    classifier = denses[-1] if denses else None
    with_gap = _params_with_gap(typed, flatten)
    lean = None
    if classifier is not None and with_gap is not None:
        channels = typed.infos[flatten.inputs[0]].shape[-1]
        trunk = typed.params - head_params
        after = sum(typed.infos[i].params for i in head if i > classifier.id)
        classifier_params = sum(classifier.layer.param_count(classifier.attrs, [(channels,)], (0,)))
        lean = trunk + classifier_params + after
    return DenseHead(flatten, head_params, typed.params, with_gap, lean, classifier)


def _descendants(typed: TypedGraph, start: Node) -> set[int]:
    reached = {start.id}
    for node in typed.graph.nodes[start.id + 1 :]:
        if any(i in reached for i in node.inputs):
            reached.add(node.id)
    return reached


def _params_with_gap(typed: TypedGraph, flatten: Node) -> int | None:
    from archspec.errors import SpecError
    from archspec.infer import infer

    graph = typed.graph
    nodes = list(graph.nodes)
    nodes[flatten.id] = replace(flatten, kind="gap", attrs={"keepdims": False})
    try:
        return infer(replace(graph, nodes=tuple(nodes))).params
    except SpecError:  # a layer after the flatten needed its exact size
        return None
