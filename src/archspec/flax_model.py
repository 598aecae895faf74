"""The Flax NNX model built from a typed graph. Each layer kind builds and applies itself
(`LayerKind.build` / `LayerKind.apply`); this module wires them in graph order.

Trainable values are `nnx.Param`; BatchNorm statistics are `nnx.BatchStat` and fixed input
statistics are `archspec.variables.Statistic` — the non-trainable parameters of the summary.
Tests check that the built model's parameter counts and output shapes equal the inferred ones.
"""

from __future__ import annotations

from typing import Any

import jax
from flax import nnx

from archspec.infer import TypedGraph
from archspec.layers import REGISTRY


def _freeze(attrs: dict[str, Any]) -> tuple:
    return tuple(sorted(attrs.items()))


class SpecModel(nnx.Module):
    """A network built from a spec. Call with a batch `x` (N, H, W, C) → outputs.

    `train=True` updates BatchNorm statistics and applies dropout; `logits=True` returns the
    input of a final softmax/sigmoid instead of its probabilities. The nodes in `frozen` (`--freeze`)
    that normalize with batch statistics run in inference mode even then, as a Keras layer with
    `trainable=False` does.
    """

    def __init__(
        self, typed: TypedGraph, *, rngs: nnx.Rngs, dtype: Any = None, frozen: frozenset[int] = frozenset()
    ) -> None:
        graph = typed.graph
        layers: dict[str, nnx.Module] = {}
        plan = []
        for node, info in zip(graph.nodes, typed.infos):
            inputs = [typed.infos[i].shape for i in node.inputs]
            module = node.layer.build(node.attrs, inputs, info.shape, rngs, dtype=dtype)
            name = f"{node.kind}_{node.id}"
            if module is not None:
                layers[name] = module
            plan.append((node.kind, _freeze(node.attrs), node.inputs, name if module is not None else None))
        self.layers = nnx.Dict(layers)
        self.plan = tuple(plan)
        self.frozen = frozenset(frozen)
        self.dtype = dtype
        self.input_shape = typed.input_shape

    @property
    def head_activation(self) -> str | None:
        """`softmax` or `sigmoid` when the model ends in one, else None."""
        kind = self.plan[-1][0]
        return kind if REGISTRY[kind].probability_output else None

    def __call__(self, x: jax.Array, *, train: bool = False, logits: bool = False) -> jax.Array:
        return self.trace(x, train=train, logits=logits)[-1]

    def trace(self, x: jax.Array, *, train: bool = False, logits: bool = False) -> list[jax.Array]:
        """Every node's output in graph order (the input first)."""
        if self.dtype is not None:
            x = x.astype(self.dtype)
        values: list[jax.Array] = []
        last = len(self.plan) - 1
        for index, (kind, attrs, inputs, name) in enumerate(self.plan):
            if index == 0:
                values.append(x)
                continue
            # the loss takes over a probability head's activation: cross-entropy from logits is stabler
            if index == last and logits and REGISTRY[kind].probability_output:
                values.append(values[inputs[0]])
                continue
            module = self.layers[name] if name is not None else None
            layer = REGISTRY[kind]
            training = train and not (layer.batch_statistics and index in self.frozen)
            values.append(layer.apply(module, dict(attrs), [values[i] for i in inputs], train=training))
        return values


def build_model(
    typed: TypedGraph, *, seed: int = 0, dtype: Any = None, frozen: frozenset[int] = frozenset()
) -> SpecModel:
    """Allocate and initialise the model's weights (`frozen`: see `SpecModel`)."""
    from archspec.variables import rewritable

    rngs = nnx.Rngs(params=seed, dropout=seed + 1)
    for stream in (rngs.params, rngs.dropout):
        stream.count = rewritable(stream.count)  # advanced at every draw: see `rewritable`
    return SpecModel(typed, rngs=rngs, dtype=dtype, frozen=frozen)
