"""The PyTorch user's door: `torch.onnx.export(model, x, "m.onnx")`, then `cnn-arch lint m.onnx`.
A small network with the layers torchvision's use, exported by both of torch's exporters, reads with
PyTorch's own MAC count; without the default exporter's optimizer (`optimize=False`), and by the
TorchScript exporter without constant folding, BatchNorm stays a node of its own and the file reads
with the module's parameters and BatchNorm statistics exactly."""

from __future__ import annotations

import pytest
import torch  # the test extra pins the CPU build

from tests.interop.test_onnx_import import read


def network():
    from torch import nn

    class Block(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
                nn.BatchNorm2d(channels),
            )
            self.gate = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(channels, 4, 1),
                nn.SiLU(),
                nn.Conv2d(4, channels, 1),
                nn.Hardsigmoid(),
            )

        def forward(self, x):
            y = self.body(x)
            return torch.relu(x + y * self.gate(y))

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU6(),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),  # GoogLeNet's
        Block(16),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(16, 10),
    ).eval()


def reference(model, x):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    statistics = sum(m.running_mean.numel() * 2 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    return counter.get_total_flops() // 2, sum(p.numel() for p in model.parameters()), statistics


@pytest.mark.slow  # torch's exporters take seconds
def test_both_exporters(tmp_path, cli):
    import warnings

    model, x = network(), torch.randn(1, 3, 64, 64)
    macs, params, statistics = reference(model, x)
    default, whole, torchscript = (tmp_path / f"{name}.onnx" for name in ("default", "whole", "torchscript"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(default))  # torch's default exporter (torch.export; onnxscript)
        torch.onnx.export(model, (x,), str(whole), optimize=False)  # BatchNorm not folded into the convs
        torch.onnx.export(model, (x,), str(torchscript), dynamo=False, do_constant_folding=False)
    for path in (default, whole, torchscript):
        imported, typed = read(str(path))
        assert typed.macs == macs, imported.text
        assert typed.output_shape == (10,)
        if path != default:  # the optimizer folds BatchNorm and drops zero biases: fewer parameters
            assert (typed.trainable, typed.non_trainable) == (params, statistics), path
    result = cli("lint", str(default))
    assert result.code in (0, 1) and "error" not in result.err, result.err


@pytest.mark.slow  # torch's exporters take seconds
def test_a_batch_norm_without_affine_reads_as_one_that_learns_nothing(tmp_path):
    """nn.BatchNorm2d(affine=False): the exporters write its scale and shift as constants (not the
    file's weights), read as `bn scale=false center=false`: PyTorch's parameters, no more."""
    import warnings

    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, affine=False), nn.ReLU()).eval()
    x = torch.randn(1, 3, 16, 16)
    macs, params, statistics = reference(model, x)
    whole, torchscript = tmp_path / "whole.onnx", tmp_path / "torchscript.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(whole), optimize=False)
        torch.onnx.export(model, (x,), str(torchscript), dynamo=False, do_constant_folding=False)
    for path in (whole, torchscript):
        imported, typed = read(str(path))
        assert "scale=false" in imported.text and "center=false" in imported.text, imported.text
        assert (typed.trainable, typed.non_trainable, typed.macs) == (params, statistics, macs), path
