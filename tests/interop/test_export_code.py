"""`cnn-arch export SPEC --to keras|flax|pytorch`: the written code builds the network of the spec,
with the parameter counts and output shape of its summary, for every template."""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys

import pytest

from archspec import templates
from archspec.compile import compile_spec
from archspec.interop.export_code import export_spec

# Templates whose layers a code writer has no equivalent for yet: (template, target) -> what the refusal names.
NOT_EXPORTED = {
    **{("convnext-tiny", target): "`layernorm` has no" for target in ("keras", "flax", "pytorch")},
    **{("unet", target): "with named tensors" for target in ("keras", "flax", "pytorch")},  # and convtranspose
    **{("shufflenet-v2", target): "`channels` has no" for target in ("keras", "flax", "pytorch")},
    ("inception-v3", "pytorch"): "`center=false`/`scale=false` cannot be exported",
}


# Code export does not support named tensors yet (it refuses them: tests/test_named_tensors.py)
EXPORTABLE = [
    n for n in templates.names() if not re.search(r"^\s*@\w", templates.path(n).read_text(encoding="utf-8"), re.M)
]


def exportable(target: str) -> list[str]:
    return [name for name in EXPORTABLE if (name, target) not in NOT_EXPORTED]


def exported(name: str, target: str) -> tuple[str, object]:
    text = templates.path(name).read_text(encoding="utf-8")
    return export_spec(text, name, target), compile_spec(text, name)


def run(code: str, name: str) -> dict:
    namespace: dict = {}
    exec(compile(code, f"<{name}>", "exec"), namespace)
    return namespace


@pytest.mark.slow  # compiles Flax models: seconds each
@pytest.mark.parametrize("name", exportable("flax"))
def test_flax_code_has_the_summary_counts(name):
    import jax
    import jax.numpy as jnp

    code, typed = exported(name, "flax")
    model = run(code, name)["Model"]()
    batch = jax.ShapeDtypeStruct((2, *typed.input_shape), jnp.float32)
    output, variables = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x), batch)
    trainable = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables["params"]))
    total = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables))
    assert (total, trainable) == (typed.params, typed.trainable)
    assert output.shape == (2, *typed.output_shape)


@pytest.mark.slow  # compiles Flax models: seconds each
def test_flax_code_runs_and_trains_batchnorm():
    import jax
    import jax.numpy as jnp

    code, typed = exported("gap-head", "flax")
    model = run(code, "gap-head")["Model"]()
    x = jnp.ones((2, *typed.input_shape))
    variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x)
    out, updates = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"])
    assert out.shape == (2, 10)
    assert jnp.allclose(out.sum(axis=-1), 1.0, atol=1e-5)  # the softmax head
    assert set(updates) == {"batch_stats"}


# Keras builds every exported template, in one subprocess on its numpy backend: the same layers, shape
# rules and counts as on JAX, whose initializers compile an XLA program per weight shape (two and a
# half minutes of CPU for the templates, against seven seconds here). A process has one backend.
KERAS_COUNTS = r"""
import json, math, os, sys
os.environ["KERAS_BACKEND"] = "numpy"
import keras
assert keras.backend.backend() == "numpy"
counts = {}
for name, code in json.loads(sys.stdin.read()).items():
    namespace = {}
    exec(compile(code, f"<{name}>", "exec"), namespace)
    model = namespace["build_model"]()
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    counts[name] = [model.count_params(), trainable, list(model.outputs[0].shape[1:])]
print(json.dumps(counts))
"""


@pytest.fixture(scope="module")
def keras_counts() -> dict:
    """(total, trainable, output shape) of every exported template, as Keras builds its code."""
    import json

    codes = {name: exported(name, "keras")[0] for name in exportable("keras")}
    done = subprocess.run([sys.executable, "-c", KERAS_COUNTS], input=json.dumps(codes), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow  # a subprocess builds the models: seconds
@pytest.mark.parametrize("name", exportable("keras"))
def test_keras_code_has_the_summary_counts(keras_counts, name):
    typed = compile_spec(templates.path(name).read_text(encoding="utf-8"), name)
    assert keras_counts[name] == [typed.params, typed.trainable, list(typed.output_shape)]


def test_macros_become_functions_and_blocks_the_framework_idiom():
    keras_code, _ = exported("resnet50", "keras")
    assert "def bottleneck(x, f):" in keras_code
    assert "def bottleneck_projection(x, f, stride=2):" in keras_code
    assert "x = layers.Add()([x, branch_2])" in keras_code  # identity shortcut
    assert "    for _ in range(5):\n        x = bottleneck(x, 256)" in keras_code  # `bottleneck 256 x5`
    flax_code, _ = exported("googlenet", "flax")
    assert "jnp.concatenate([branch_1, branch_2, branch_3, branch_4], axis=-1)" in flax_code
    torch_code, _ = exported("resnet50", "pytorch")
    assert 'Merge(\n            "add",' in torch_code
    assert "*[bottleneck(256) for _ in range(5)]" in torch_code


@pytest.mark.parametrize(("name", "target"), sorted(NOT_EXPORTED))
def test_templates_with_layers_the_writers_lack_are_refused_by_name(cli, name, target):
    result = cli("export", name, "--to", target)
    assert result.code == 2 and NOT_EXPORTED[name, target] in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("name", "target"),
    [
        (name, target)
        for name in EXPORTABLE
        for target in ("keras", "flax", "pytorch")
        if (name, target) not in NOT_EXPORTED
    ],
)
def test_code_is_valid_and_formatted(name, target, tmp_path):
    from ruff.__main__ import find_ruff_bin

    code, _ = exported(name, target)
    compile(code, name, "exec")
    path = tmp_path / "model.py"
    path.write_text(code)
    ruff = find_ruff_bin()
    formatting = subprocess.run(
        [ruff, "format", "--isolated", "--line-length", "100", "--check", str(path)], capture_output=True
    )
    assert formatting.returncode == 0, formatting.stdout
    checks = subprocess.run(
        [ruff, "check", "--isolated", "--select", "E,F,W,I", "--line-length", "100", str(path)],
        capture_output=True,
        text=True,
    )
    assert checks.returncode == 0, checks.stdout


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is not installed (not in any extra: too large)"
)
@pytest.mark.parametrize("name", ["gap-head", "lenet5", "resnet50", "mobilenet-v2"])
def test_pytorch_code_has_the_summary_counts(name):
    import torch

    code, typed = exported(name, "pytorch")
    model = run(code, name)["build_model"]()
    h, w, c = typed.input_shape
    output = model.eval()(torch.zeros(2, c, h, w))
    total = sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for n, b in model.named_buffers() if "num_batches" not in n
    )
    assert (total, tuple(output.shape)) == (typed.params, (2, *typed.output_shape))


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
        "export_spec(templates.path('resnet50').read_text(), 'resnet50', 'pytorch'); "
        "print(sorted({'keras', 'torch', 'jax', 'flax'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
