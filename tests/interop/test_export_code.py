"""`cnn-arch export SPEC --to keras|flax|pytorch`: the written code builds the network of the spec.
For every template and the language's harder specs (named tensors, `if`, stream sizes, macros at
several widths), each framework builds the written model and its own counts and output shape equal
the summary; a spec with every layer kind, given our Flax model's weights, computes its outputs."""

from __future__ import annotations

import functools
import math
import subprocess
import sys

import numpy as np
import pytest

from archspec import templates
from archspec.compile import compile_spec
from archspec.errors import SpecError
from archspec.interop.export_code import export_spec
from archspec.layers import REGISTRY
from tests.interop.keras_build import keras
from tests.test_language_features import BLOCK, DENSENET121
from tests.test_named_tensors import CELL, DENSE, UNET

# Every layer kind (a test below checks), in macros called at two widths, with named tensors.
EVERY_KIND = """\
def block(f, stride=1):
    conv f 3 stride=stride padding=same bias=false bn relu
    dwconv 3 padding=same bn(scale=false, momentum=0.9) relu6
    sepconv f 3 padding=same multiplier=2 elu
    normalize

def excite(c):
    multiply:
        identity
        branch:
            gap keepdims=true
            conv c//2 1 silu
            conv c 1 hard_sigmoid

input 20x20x3 -> img
rescale 1/255 offset=-0.5
conv 8 3 padding=1 leaky_relu(0.2)
zeropad 0x1x0x1
maxpool 3 stride=2 padding=same -> a
block 8 -> b
add:
    @a
    @b
block 16 stride=2
excite 16
lrn size=3
concat:
    channels 0:8
    branch:
        channels 8:16
        conv 8 1 swish
shuffle 2
avgpool 3 stride=2 padding=same
groupnorm 4 epsilon=1e-5
selu
convtranspose 8 3 stride=2 padding=same
upsample 2 method=bilinear
crop 1x1x0x2
layernorm center=false
mish
dense 12 gelu
layerscale init=0.5
add:
    identity
    branch:
        droppath 0.1
        tanh
upsample 2
maxpool 2
hard_swish
bn center=false
gmp keepdims=true
softplus
flatten
dropout 0.2
dense 10 linear
sigmoid
dense 10
softmax
"""

# `normalize` in a macro called at two widths: its statistics take each call's channels.
NORMALIZE_TWO_WIDTHS = """\
def block(f):
    conv f 3 padding=same relu
    normalize

input 16x16x3
block 8
block 16
gap
dense 10 softmax
"""

# Parameters holding layers, different in each call: the calls get functions of their own.
LAYERS_AS_ARGUMENTS = """\
def block(f, act=relu, norm=bn, pool=identity):
    conv f 3 padding=same act
    norm
    act
    pool
input 16x16x3
block 8
block 16 act=leaky_relu(0.2) norm=bn(scale=false) pool=maxpool(2)
gap
dense 4
"""

SPECS = {
    **{name: templates.path(name).read_text(encoding="utf-8") for name in templates.names()},
    "nasnet-like cell": CELL,
    "small u-net": UNET,
    "dense block": DENSE,
    "resnet block with an if": BLOCK,
    "densenet-121 (channels//2)": DENSENET121,
    "normalize at two widths": NORMALIZE_TWO_WIDTHS,
    "layers as arguments": LAYERS_AS_ARGUMENTS,
    "every kind": EVERY_KIND,
}
TARGETS = ("keras", "flax", "pytorch")


def _params(targets=TARGETS):
    return [pytest.param(name, target, id=f"{name}-{target}") for name in SPECS for target in targets]


@functools.cache
def smallest_input(name: str) -> tuple[int, ...] | None:
    """The smallest square input the spec compiles at (the cheapest build), None for its own."""
    text = SPECS[name]
    shape = compile_spec(text).input_shape
    for side in (8, 16, 24, 32, 48, 64, 75, 96, 128):
        if len(shape) != 3 or side >= shape[0]:
            return None
        try:
            compile_spec(text, input_shape=(side, side, shape[2]))
            return (side, side, shape[2])
        except SpecError:
            continue
    return None


@functools.cache
def written(name: str, target: str) -> tuple[str, object]:
    shape = smallest_input(name)
    return export_spec(SPECS[name], name, target, shape), compile_spec(SPECS[name], name, shape)


def run(code: str, name: str) -> dict:
    namespace: dict = {}
    exec(compile(code, f"<{name}>", "exec"), namespace)
    return namespace


def summary(typed) -> tuple:
    return typed.params, typed.trainable, typed.output_shape


# --- each framework builds the written model with the summary's counts and output shape -------------


@pytest.mark.parametrize(("name", "target"), _params(("pytorch",)))
def test_pytorch_builds_the_summary_counts_and_shape(name, target):
    """Built on PyTorch's meta device (sizes, no weights); counts: trainable parameters plus the
    buffers (BatchNorm's running mean and variance, Normalize's statistics), not BatchNorm's step
    counter, which is Keras' total."""
    import torch

    code, typed = written(name, target)
    with torch.device("meta"):
        model = run(code, name)["Model"]().eval()
        shape = typed.input_shape
        x = torch.zeros(2, shape[2], shape[0], shape[1]) if len(shape) == 3 else torch.zeros(2, *shape)
        output = tuple(model(x).shape[1:])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    channels_last = (*output[1:], output[0]) if len(output) == 3 else output
    assert (trainable + buffers, trainable, channels_last) == summary(typed)


@pytest.mark.parametrize(("name", "target"), _params(("flax",)))
def test_flax_builds_the_summary_counts_and_shape(name, target):
    """Built abstractly (`nnx.eval_shape`): trainable `nnx.Param`s plus the `nnx.BatchStat`s."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from archspec.variables import rewritable

    code, typed = written(name, target)
    model_class = run(code, name)["Model"]

    def construct():
        rngs = nnx.Rngs(0)
        # Flax 0.12 traces each write of the random stream's counter at a cost that grows with the
        # model (NASNet: 18 s); the Flax model's build_model does the same (see `rewritable`)
        rngs.default.count = rewritable(rngs.default.count)
        return model_class(rngs=rngs)

    model = nnx.eval_shape(construct)
    graph, params, stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)

    def apply(params, stats, rest, x):
        module = nnx.merge(graph, params, stats, rest)
        module.eval()
        return module(x)

    batch = jax.ShapeDtypeStruct((2, *typed.input_shape), jnp.float32)
    output = jax.eval_shape(apply, params, stats, rest, batch)
    count = lambda state: sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(state))  # noqa: E731
    assert (count(params) + count(stats), count(params), tuple(output.shape[1:])) == summary(typed)


@pytest.mark.parametrize(("name", "target"), _params(("keras",)))
def test_keras_builds_the_summary_counts_and_shape(name, target):
    """`count_params()` (BatchNorm's moving statistics counted, as Keras does) and the output. Built
    in a `StatelessScope` that initialises no variable (GoogLeNet at 8x8: 0.4 s, not 60: each
    initialiser compiles)."""
    from tests.interop.keras_build import counts

    module = keras()
    code, typed = written(name, target)
    with module.StatelessScope(initialize_variables=False):
        model = run(code, name)["build_model"]()
    found = counts(model)
    module.backend.clear_session()  # its variables, never initialised, would be at Keras' next `fit` or `predict`
    assert found == summary(typed)


# --- the written models compute what our Flax model computes ---------------------------------------


def test_the_every_kind_spec_has_every_kind():
    kinds = {node.kind for node in compile_spec(EVERY_KIND).graph.nodes}
    assert kinds == set(REGISTRY), f"add to EVERY_KIND: {', '.join(sorted(set(REGISTRY) - kinds))}"


@pytest.fixture(scope="module")
def reference():
    """Our Flax model of EVERY_KIND with random weights and statistics, an input batch and its output."""
    from flax import nnx

    from tests.interop.weights import random_flax_model

    typed = compile_spec(EVERY_KIND)
    model, arrays = random_flax_model(typed)
    x = np.random.default_rng(1).normal(size=(2, *typed.input_shape)).astype(np.float32)
    return typed, arrays, x, np.asarray(nnx.jit(lambda model, x: model(x))(model, x))


def test_written_pytorch_computes_what_the_flax_model_computes(reference):
    import torch

    from tests.interop.weights import load_torch, torch_entries

    typed, arrays, x, want = reference
    model = run(export_spec(EVERY_KIND, "every", "pytorch"), "every")["Model"]().eval()
    load_torch(model, [entry for node, found in arrays for entry in torch_entries(node, found, typed)])
    with torch.no_grad():
        got = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_written_keras_computes_what_the_flax_model_computes(reference):
    from tests.interop.weights import keras_layers_in_creation_order, keras_weights

    _, arrays, x, want = reference
    module = keras()
    namespace = run(export_spec(EVERY_KIND, "every", "keras"), "every")
    with keras_layers_in_creation_order(module) as made, module.StatelessScope(initialize_variables=False):
        model = namespace["build_model"]()  # no initialiser runs (each would compile): the weights come next
    for variable in model.variables:  # (a random seed's state too)
        variable.assign(np.zeros(variable.shape, variable.dtype))
    weighted = [layer for layer in made if layer.weights and not isinstance(layer, module.Model)]
    assert len(weighted) == len(arrays)
    for layer, (node, found) in zip(weighted, arrays):
        layer.set_weights(keras_weights(node, found))
        if hasattr(layer, "finalize_state"):  # Normalization reads its statistics then, as loading does
            layer.finalize_state()
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-4, atol=1e-5)  # compiled: eager is slow


@pytest.mark.parametrize("target", TARGETS)
def test_normalize_in_a_macro_at_two_widths_runs(target):
    """Each call's Normalize takes its own width (the old writer wrote one width for both)."""
    code, typed = written("normalize at two widths", target)
    if target == "keras":
        keras()  # the JAX backend, before the written code imports Keras
    namespace = run(code, "normalize")
    x = np.ones((2, *typed.input_shape), np.float32)
    if target == "pytorch":
        import torch

        output = namespace["Model"]().eval()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).detach().numpy()
    elif target == "flax":
        from flax import nnx

        model = namespace["Model"](rngs=nnx.Rngs(0))
        model.eval()
        output = np.asarray(model(x))
    else:
        output = np.asarray(namespace["build_model"]()(x))
    assert output.shape == (2, 10) and np.allclose(output.sum(axis=-1), 1.0, atol=1e-5)


# --- the code reads as the framework's own ----------------------------------------------------------


def test_code_is_valid_and_formatted(tmp_path):
    """Every file passes `ruff format --check` and `ruff check` (E, F, W, I): one ruff run over all."""
    from ruff.__main__ import find_ruff_bin

    for index, name in enumerate(SPECS):
        for target in TARGETS:
            (tmp_path / f"model_{index}_{target}.py").write_text(export_spec(SPECS[name], name, target))
    ruff = find_ruff_bin()
    formatting = subprocess.run(
        [ruff, "format", "--isolated", "--line-length", "100", "--check", str(tmp_path)], capture_output=True, text=True
    )
    assert formatting.returncode == 0, formatting.stdout
    checks = subprocess.run(
        [ruff, "check", "--isolated", "--select", "E,F,W,I", "--line-length", "100", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert checks.returncode == 0, checks.stdout


def test_macros_become_functions_and_modules_and_blocks_the_framework_idiom():
    keras_code = export_spec(SPECS["resnet50"], "resnet50", "keras")
    assert "def bottleneck(x, f):" in keras_code
    assert "def bottleneck_projection(x, f, stride=2):" in keras_code
    assert "x = layers.Add()([x, branch_1])" in keras_code  # identity shortcut
    assert "    for _ in range(5):\n        x = bottleneck(x, 256)" in keras_code  # `bottleneck 256 x5`
    torch_code = export_spec(SPECS["resnet50"], "resnet50", "pytorch")
    assert "class Bottleneck(nn.Module):\n    def __init__(self, in_channels, f):" in torch_code
    assert "self.bottleneck_3 = nn.Sequential(*[Bottleneck(1024, 256) for _ in range(5)])" in torch_code
    assert "self.conv_3 = nn.Conv2d(f, 4 * f, 1)" in torch_code  # a width from the macro's parameter
    flax_code = export_spec(SPECS["googlenet"], "googlenet", "flax")
    assert "x = jnp.concatenate([branch_1, branch_2, branch_3, branch_4], axis=-1)" in flax_code


def test_named_tensors_are_variables_and_tensor_parameters_arguments():
    keras_code = export_spec(CELL, "cell", "keras")
    assert "def cell(h, f, prev):" in keras_code and "c2 = cell(c1, 16, prev=c0)" in keras_code
    torch_code = export_spec(CELL, "cell", "pytorch")
    assert "def forward(self, h, prev):" in torch_code
    assert "self.cell = Cell(16, 16, 16)" in torch_code  # the stream's and `prev`'s channels, then f
    unet = export_spec(SPECS["unet"], "unet", "flax")
    assert "e1 = self.double_conv(x)" in unet and "x = self.up_block_4(x, e1)" in unet


def test_an_if_is_written_where_the_calls_go_both_ways():
    code = export_spec(BLOCK, "block", "pytorch")
    assert "        if stride != 1 or in_channels != f:\n            self.conv_3 = nn.Conv2d(in_channels, f, 1" in code
    assert "        if self.stride != 1 or x.shape[1] != self.f:\n" in code
    keras_code = export_spec(BLOCK, "block", "keras")
    assert (
        "    if stride != 1 or x.shape[-1] != f:\n" in keras_code and "    else:\n        branch_2 = x\n" in keras_code
    )


def test_framework_defaults_that_differ_from_the_spec_are_written_out():
    text = "input 8x8x3\nconv 4 3 bn relu\nleaky_relu\nlayernorm\ngroupnorm 2\ngap\ndense 2\n"
    torch_code = export_spec(text, "t", "pytorch")
    assert "nn.BatchNorm2d(4, eps=0.001, momentum=0.01)" in torch_code  # PyTorch: 1e-5 and 0.1
    assert "x = F.leaky_relu(x, 0.01)" in torch_code
    assert "nn.LayerNorm(4, eps=0.001)" in torch_code and "nn.GroupNorm(2, 4, eps=0.001)" in torch_code
    flax_code = export_spec(text, "t", "flax")
    assert "nnx.BatchNorm(4, epsilon=0.001, rngs=rngs)" in flax_code  # Flax: 1e-5
    assert 'padding="VALID"' in flax_code  # Flax convolutions pad `same` by default
    assert "nnx.LayerNorm(4, epsilon=0.001, use_fast_variance=False" in flax_code
    assert "layers.LeakyReLU(negative_slope=0.01)" in export_spec(text, "t", "keras")  # Keras: 0.3


def test_a_value_a_framework_cannot_take_is_refused_at_its_line(cli, tmp_path):
    path = tmp_path / "pool.arch"
    path.write_text("input 8x8x3\nconv 4 3\navgpool 3 stride=1 padding=1\ngap\n")
    result = cli("export", str(path), "--to", "keras")
    assert result.code == 2 and "Traceback" not in result.err
    assert "pool.arch:3:1" in result.err and "AveragePooling2D pads only" in result.err
    assert cli("export", str(path), "--to", "pytorch").code == 0


def test_cli_writes_code_and_refuses_a_missing_target(cli, tmp_path):
    out = tmp_path / "net.py"
    result = cli("export", "gap-head", "--to", "keras", "-o", str(out))
    assert result.code == 0, result.err
    assert "def build_model():" in out.read_text()
    assert "x = layers.GlobalAveragePooling2D()(x)" in cli("export", "gap-head", "--to", "keras").out
    missing = cli("export", "gap-head")
    assert missing.code == 2 and "--to keras" in missing.err
    bad = cli("export", "nosuch.arch", "--to", "flax")
    assert bad.code == 2 and "nosuch.arch" in bad.err


def test_exported_code_keeps_the_spec_input_override(cli):
    assert "keras.Input(shape=(64, 64, 3))" in cli("export", "resnet50", "--to", "keras", "--input", "64x64x3").out


def test_no_framework_is_imported_to_write_code():
    code = (
        "import sys; from archspec.interop.export_code import export_spec; from archspec import templates; "
        "[export_spec(templates.path('nasnet-mobile').read_text(), 'n', t) for t in ('keras', 'flax', 'pytorch')]; "
        "print(sorted({'keras', 'torch', 'jax', 'flax'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
