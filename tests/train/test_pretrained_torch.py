"""`--init-from` the weights of the PyTorch code `cnn-arch export --to pytorch` writes: its model's
state dict saved with safetensors, and the model exported by torch.onnx (both exporters), each loaded
into the spec's Flax model and checked against PyTorch's outputs (the state dict) or onnxruntime's
(the ONNX file) on the same images."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

# The head PyTorch and the spec flatten in other orders: PyTorch's NCHW channels first (C, H, W), the
# spec's height first (H, W, C). The dense's input features come permuted from a channels-first file.
FLATTEN_SPEC = """\
input 8x8x3
conv 4 3
bn
relu
flatten
dense 10
"""

# A MobileNetV2 in small, with its stages' same-shaped blocks: the written model names them
# `inverted_residual_add.0`, ..., `inverted_residual_add_2.2` and the stage's last `inverted_residual`,
# which a state dict sorts first. Only the module tree tells apart blocks of the same shapes.
MOBILENET_SPEC = """\
def inverted_residual(cin, cout, t=2):
    conv t*cin 1 bias=false bn relu6
    dwconv 3 padding=same bias=false bn relu6
    conv cout 1 bias=false bn

def inverted_residual_add(c, t=2):
    add:
        identity
        inverted_residual c c t

input 8x8x3
conv 8 3 stride=2 padding=same bias=false bn relu6
inverted_residual_add 8 x2
inverted_residual 8 8
inverted_residual_add 8 x3
conv 16 1 bias=false bn relu6
gap
dense 5
"""


def _lenet5() -> str:
    from archspec.templates import path

    return path("lenet5").read_text()  # flatten 5x5x16 -> dense 120, tanh, softmax


SPECS = {"flatten": lambda: FLATTEN_SPEC, "lenet5": _lenet5, "mobilenet": lambda: MOBILENET_SPEC}

# how the model is saved -> keyword arguments of torch.onnx.export (None: its state dict as safetensors)
FILES = {
    "safetensors": None,
    "onnx": {},  # torch.onnx's default (dynamo) exporter: folds each BatchNorm into the conv or linear before it
    "onnx-torchscript": {"dynamo": False, "do_constant_folding": False},  # keeps them
}


class Written:
    """A spec written as PyTorch code, with random weights, and the spec's Flax model to load them into."""

    def __init__(self, spec_text: str):
        import jax
        import torch
        from flax import nnx

        from archspec.compile import compile_spec
        from archspec.interop.export_code import export_spec
        from archspec.train import steps

        namespace: dict = {}
        exec(compile(export_spec(spec_text, "net.arch", "pytorch"), "<written>", "exec"), namespace)
        self.torch_model = namespace["Model"]().eval()
        rng = np.random.default_rng(3)
        state = {}
        for name, value in self.torch_model.state_dict().items():
            if value.is_floating_point():  # statistics and affine weights away from 0 and 1: mix-ups show
                if name.endswith("running_var"):
                    drawn = rng.uniform(0.5, 1.5, value.shape)
                elif value.ndim == 1:
                    drawn = rng.normal(0, 0.5, value.shape)
                else:  # a kernel, He-scaled by its fan-in
                    drawn = rng.normal(0, np.sqrt(2 / np.prod(value.shape[1:])), value.shape)
                value = torch.from_numpy(drawn.astype(np.float32))
            state[name] = value
        self.torch_model.load_state_dict(state)

        self.typed = compile_spec(spec_text, "net.arch")
        self.x = np.random.default_rng(0).uniform(0, 1, (2, *self.typed.input_shape)).astype(np.float32)
        shapes = jax.eval_shape(lambda: steps.init_model(self.typed, seed=0))  # NaN: what the file misses shows
        self.model = jax.tree.map(lambda a: jax.device_put(np.full(a.shape, np.nan, a.dtype)), shapes)
        graphdef = steps.model_graphdef(self.typed)
        self.forward = jax.jit(lambda m, x: nnx.merge(graphdef, m.params, m.model_state)(x, train=False))

    def nchw(self):
        import torch

        return torch.from_numpy(self.x.transpose(0, 3, 1, 2).copy())

    def save(self, how: str, folder) -> tuple[str, np.ndarray]:
        """The model saved `how` (a key of FILES) into `folder`; the reference's outputs on `x`."""
        import onnxruntime
        import torch
        from safetensors.torch import save_file

        if FILES[how] is None:
            path = folder / "model.safetensors"
            save_file({name: value.contiguous() for name, value in self.torch_model.state_dict().items()}, path)
            with torch.no_grad():
                return str(path), self.torch_model(self.nchw()).numpy()
        path = folder / f"{how}.onnx"
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(self.torch_model, (self.nchw(),), str(path), input_names=["x"], **FILES[how])
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (y,) = session.run(None, {"x": self.nchw().numpy()})
        return str(path), y

    def load(self, path: str):
        """The Flax model's outputs on `x` after `--init-from path`, and the report (NaN where the file gave nothing)."""
        from archspec.train import pretrained

        loaded, report = pretrained.initial_model(path, self.typed, self.model, reinit_mismatched=False)
        return np.asarray(self.forward(loaded, self.x)), report


@pytest.fixture(scope="module", params=list(SPECS))
def written(request):
    return request.param, Written(SPECS[request.param]())


@pytest.mark.slow  # torch.onnx's default exporter takes seconds (its first call ~3 s)
@pytest.mark.parametrize("how", list(FILES))
def test_a_written_pytorch_model_gives_its_outputs_from_its_state_dict_and_its_onnx_exports(written, how, tmp_path):
    name, net = written
    path, expected = net.save(how, tmp_path)
    got, report = net.load(path)
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, float(np.abs(expected).max()))
    from archspec.train import pretrained

    everything = len(pretrained.target_layers(net.typed, net.model))
    assert report.kept + len(report.folded) == everything and not report.unused
    # the default exporter leaves no BatchNorm after a conv (the MobileNet's 20), and the report says so
    folded = {
        "flatten": ["line 3 `bn`"],
        "lenet5": [],
        "mobilenet": [f"line {n} `bn`" for n in [2, 3, 4] * 6 + [12, 16]],
    }
    assert sorted(report.folded) == (sorted(folded[name]) if how == "onnx" else [])


@pytest.mark.slow  # one export by torch.onnx (~3 s for its first)
def test_a_shift_no_spec_layer_takes_is_a_layer_without_counterpart_not_dropped(tmp_path):
    """`bn(scale=false)` is written as PyTorch's BatchNorm without affine and a shift after it; torch.onnx
    folds the BatchNorm into the conv and leaves the shift an `Add` of its own, which the spec has no
    layer for: named, never lost (the logits would be off by it)."""
    from archspec.errors import UserError

    net = Written("input 6x6x3\nconv 4 3 bias=false bn(scale=false) relu\nflatten\ndense 3\n")
    path, _ = net.save("onnx", tmp_path)
    with pytest.raises(
        UserError, match=r"1 of its layers have no counterpart in the spec, the first `\S+` \(Add input"
    ):
        net.load(path)


@pytest.mark.slow  # jax2onnx's conversion: ~5 s
def test_an_onnx_file_that_flattens_channels_last_loads_unpermuted(tmp_path):
    """jax2onnx's export of the spec's own Flax model flattens NHWC, as the spec does (where torch.onnx's
    flattens NCHW): the dense after it loads as stored, and gives onnxruntime's outputs."""
    import jax
    import onnxruntime
    from flax import nnx

    from archspec.compile import compile_spec
    from archspec.flax_model import build_model
    from archspec.interop.onnx_export import _convert
    from archspec.train import pretrained, steps

    typed = compile_spec("input 4x4x2\nconv 3 3 padding=same relu\nflatten\ndense 5\n", "net.arch")
    model = build_model(typed, seed=1)
    x = np.random.default_rng(0).uniform(0, 1, (1, 4, 4, 2)).astype(np.float32)
    proto = _convert(typed, lambda images: model(images), jax.ShapeDtypeStruct(x.shape, np.float32), "net")
    path = tmp_path / "net.onnx"
    path.write_bytes(proto.SerializeToString())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {session.get_inputs()[0].name: x})

    shapes = jax.eval_shape(lambda: steps.init_model(typed, seed=0))
    blank = jax.tree.map(lambda a: jax.device_put(np.full(a.shape, np.nan, a.dtype)), shapes)
    loaded, report = pretrained.initial_model(str(path), typed, blank, reinit_mismatched=False)
    graphdef = steps.model_graphdef(typed)
    got = np.asarray(nnx.merge(graphdef, loaded.params, loaded.model_state)(x, train=False))
    assert report.kept == 2
    assert np.abs(got - expected).max() <= 1e-5
