"""The PyTorch model of a typed spec graph, for the benchmarks' side-by-side timing
(`bench_gpu_resnet50.py`, `bench_torch_cpu.py`): the code `cnn-arch export SPEC --to pytorch` writes,
run. The same layers, shapes and parameter counts as the Flax model (NCHW; Keras' `same` padding, the
odd pixel at the bottom and right). A model to time, not a converter of weights: `flatten` flattens
PyTorch's (C, H, W) order, not the Flax model's (H, W, C).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archspec.interop.export_code import write_code
from archspec.parse import parse


class TorchSpecModel(nn.Module):
    """The typed graph's network in PyTorch; `forward(x, logits=True)` leaves out a final softmax or
    sigmoid, as the JAX train step does (the loss takes logits)."""

    def __init__(self, typed) -> None:
        super().__init__()
        source = typed.graph.source
        code = write_code(parse(source.text, source.name), typed, source.name, "pytorch", logits=True)
        namespace: dict = {}
        exec(compile(code, f"<{source.name} as PyTorch>", "exec"), namespace)
        self.net = namespace["Model"]()
        head = typed.graph.output
        self.head = None  # the probability head's own PyTorch code, applied when logits are not asked for
        if head.layer.probability_output:
            (step,) = head.layer.pytorch_code(head.attrs, [typed.infos[head.inputs[0]].shape], typed.output_shape)
            self.head = (step.expression, {"torch": torch, "F": F, **namespace})

    def forward(self, x, logits: bool = True):
        out = self.net(x)
        if logits or self.head is None:
            return out
        expression, namespace = self.head
        return eval(expression.format("out"), namespace, {"out": out})


def count_values(model: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) values, counted as Keras does: BatchNorm's running mean and
    variance are non-trainable parameters (its step counter is not)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return trainable, buffers
