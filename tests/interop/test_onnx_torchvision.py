"""torchvision's models as a PyTorch user exports them (`torch.onnx.export`, weights dropped from the
files: tests/interop/onnx/make_torchvision.py made them) read with torchvision's published compute:
MACs equal to PyTorch's own count of the forward pass and within 1% of the `_ops` in torchvision's
weights metadata (rounded to 3 decimals there). Where the graph keeps BatchNorm (the TorchScript
exporter without constant folding), the parameters are torchvision's `num_params` and BatchNorm's
running statistics, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.interop.test_onnx_import import read

pytest.importorskip("onnx")  # the test extra installs it: this only guards a bare `pip install .`

CORPUS = Path(__file__).parent / "onnx"
PUBLISHED = json.loads((CORPUS / "torchvision.json").read_text(encoding="utf-8"))
FILES = sorted((CORPUS / "torchvision").glob("*.onnx"))


def test_every_model_has_its_published_figures():
    models = {f.stem.removesuffix("_torchscript") for f in FILES}
    assert len(models) >= 19 and models <= set(PUBLISHED)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_macs_and_parameters(path):
    reference = PUBLISHED[path.stem.removesuffix("_torchscript")]
    _, typed = read(str(path))
    assert typed.macs == reference["flop_counter_macs"]
    assert typed.macs == pytest.approx(reference["ops_gmacs"] * 1e9, rel=0.01)
    side = int(reference["input"].split("x")[0])
    assert typed.input_shape == (side, side, 3) and typed.output_shape == (1000,)
    if path.stem.endswith("_torchscript"):
        assert typed.trainable == reference["num_params"]
        assert typed.non_trainable == reference["batchnorm_statistics"]
