"""Every layer kind is translated by every reader and writer, or refused there by name with the
reason its module records (`LayerKind.refusals`); and every kind's spec text reads back to itself."""

from __future__ import annotations

import pytest

from archspec import templates
from archspec.compile import compile_spec
from archspec.layers import FRAMEWORKS, REGISTRY, LayerKind
from archspec.layers.base import value_text

# direction -> (the framework key of `refusals`, the method a kind overrides to translate it)
DIRECTIONS = {
    "keras write": ("keras", "keras_code"),
    "keras read": ("keras", "read_keras"),
    "onnx read": ("onnx", "read_onnx"),
    "pytorch write": ("pytorch", "pytorch_code"),
    "flax write": ("flax", "flax_code"),
}
# Directions whose code is not merged yet (the lead removes each mark when its reader lands; strict,
# so a direction that becomes complete fails here until its mark goes).
PENDING = {}


def _overrides(kind: LayerKind, method: str) -> bool:
    return getattr(type(kind), method) is not getattr(LayerKind, method)


@pytest.mark.parametrize(
    "direction",
    [
        pytest.param(d, marks=pytest.mark.xfail(strict=True, reason=PENDING[d])) if d in PENDING else d
        for d in DIRECTIONS
    ],
)
def test_every_kind_is_translated_or_refused_with_a_reason(direction):
    framework, method = DIRECTIONS[direction]
    missing, both = [], []
    for name, kind in REGISTRY.items():
        translated, refused = _overrides(kind, method), bool(kind.refusals.get(framework))
        if not translated and not refused:
            missing.append(name)
        if translated and refused:
            both.append(name)
    assert not missing, f"{direction}: neither translated nor refused: {', '.join(missing)}"
    assert not both, f"{direction}: translated and refused at once: {', '.join(both)}"


def test_refusals_name_a_framework_and_give_a_reason():
    for name, kind in REGISTRY.items():
        for framework, reason in kind.refusals.items():
            assert framework in FRAMEWORKS, f"{name}: unknown framework {framework!r}"
            assert isinstance(reason, str) and len(reason) > 20, f"{name}: give the reason {framework} refuses"


@pytest.mark.parametrize("name", templates.names())
def test_every_node_of_a_template_reads_back_from_its_spec_text(name):
    typed = compile_spec(templates.path(name).read_text(encoding="utf-8"), name)
    for node in typed.graph.nodes:
        if node.layer.family == "merge":  # a block header: its branches are lines of their own
            continue
        text = node.layer.spec_text(node.attrs)
        if node.kind == "input":
            back = compile_spec(text + "\n").graph.nodes[0]
        else:
            back = compile_spec(f"input {value_text(typed.infos[node.inputs[0]].shape)}\n{text}\n").graph.nodes[1]
        assert (back.kind, back.attrs) == (node.kind, node.attrs), text


# --- weights: what `--init-from` reads of each framework's files (archspec/train/pretrained.py) ------

# framework (the key of `refusals`) -> (the kind's table of how it stores the arrays, the method reading them)
WEIGHTS = {
    "keras": ("keras_weights", "weights_from_keras"),
    "pytorch": ("pytorch_weights", "weights_from_pytorch"),
    "onnx": ("onnx_weights", "weights_from_onnx"),
}


@pytest.mark.parametrize("framework", list(WEIGHTS))
def test_every_kind_with_weights_reads_each_frameworks_or_refuses_with_a_reason(framework):
    table, method = WEIGHTS[framework]
    missing, both, stray = [], [], []
    for name, kind in REGISTRY.items():
        reads, refused = bool(getattr(kind, table)) or _overrides(kind, method), bool(kind.refusals.get(framework))
        if kind.variables and not reads and not refused:
            missing.append(name)
        if kind.variables and reads and refused:
            both.append(name)
        if reads and not kind.variables:
            stray.append(name)
    assert not missing, f"{framework} weights: neither read nor refused: {', '.join(missing)}"
    assert not both, f"{framework} weights: read and refused at once: {', '.join(both)}"
    assert not stray, f"{framework} weights read by kinds that declare no `variables`: {', '.join(stray)}"


def test_variables_are_the_arrays_of_each_kinds_flax_module():
    """A layer kind's `variables` are what its Flax module holds (those a node's settings switch off
    aside), and a kind declares them exactly when its module holds arrays (EVERY_KIND has every kind)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from archspec.flax_model import build_model
    from tests.interop.test_export_code import EVERY_KIND

    typed = compile_spec(EVERY_KIND)
    model = nnx.eval_shape(lambda: build_model(typed))
    held: dict[str, set[str]] = {name: set() for name in REGISTRY}
    for node in typed.graph.nodes:
        module = model.layers.get(f"{node.kind}_{node.id}")
        if module is None:
            continue
        _, state = nnx.split(module)
        for path, leaf in jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(state))[0]:
            keys = [str(getattr(key, "key", key)) for key in path]
            if jnp.issubdtype(leaf.dtype, jnp.floating) and "rngs" not in keys:
                held[node.kind].add(".".join(keys))
    for name, kind in REGISTRY.items():
        assert held[name] <= set(kind.variables), f"{name}: {sorted(held[name])} not all in its `variables`"
        assert bool(held[name]) == bool(kind.variables), f"{name}: `variables` {kind.variables}, its module holds none"


def _one_layer_specs() -> dict[str, str]:
    """Each kind with weights as a spec of one layer: its first node in EVERY_KIND (for its input and
    positional arguments), its keyword arguments at their defaults."""
    from tests.interop.test_export_code import EVERY_KIND

    typed = compile_spec(EVERY_KIND)
    specs = {}
    for node in typed.graph.nodes:
        kind = node.layer
        if kind.variables and kind.name not in specs:
            attrs = {a.name: node.attrs[a.name] if a.positional else a.default for a in kind.args}
            specs[kind.name] = f"input {value_text(typed.infos[node.inputs[0]].shape)}\n{kind.spec_text(attrs)}\n"
    return specs


ONE_LAYER = _one_layer_specs()
RNG_SEED = 5


def _written(spec: str, target: str) -> dict:
    from archspec.interop.export_code import export_spec

    namespace: dict = {}
    exec(compile(export_spec(spec, "kind", target), "<kind>", "exec"), namespace)
    return namespace


def _keras_file(spec: str, x, folder):
    """The layer built by the written Keras code, random weights, saved as `.keras`; Keras' output."""
    import numpy as np

    from tests.interop.keras_build import keras

    module = keras()
    build = _written(spec, "keras")["build_model"]
    with module.StatelessScope(initialize_variables=False):
        model = build()  # no initialiser runs (each would compile): every weight is drawn below
    rng = np.random.default_rng(RNG_SEED)
    for layer in model.layers:
        for variable in layer.weights:
            if not np.issubdtype(np.dtype(variable.dtype), np.floating):
                variable.assign(np.zeros(variable.shape, variable.dtype))  # Normalization's count
                continue
            positive = variable.name in ("moving_variance", "variance")
            value = rng.uniform(0.5, 1.5, variable.shape) if positive else rng.normal(0, 0.5, variable.shape)
            variable.assign(value.astype(np.float32))
        if hasattr(layer, "finalize_state"):  # Normalization takes its statistics then, as loading does
            layer.finalize_state()
    path = folder / "layer.keras"
    model.save(path)
    expected = np.asarray(model(x, training=False))
    module.backend.clear_session()
    return path, expected


def _torch_model(spec: str):
    import numpy as np
    import torch

    model = _written(spec, "pytorch")["Model"]().eval()
    rng = np.random.default_rng(RNG_SEED)
    state = {}
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            positive = name.endswith(("running_var", "variance"))
            drawn = rng.uniform(0.5, 1.5, value.shape) if positive else rng.normal(0, 0.5, value.shape)
            value = torch.from_numpy(drawn.astype(np.float32))
        state[name] = value
    model.load_state_dict(state)
    return model


def _nchw(x):
    import torch

    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy()) if x.ndim == 4 else torch.from_numpy(x)


def _nhwc(y):
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


def _safetensors_file(spec: str, x, folder):
    """The layer built by the written PyTorch code, random weights, its state dict as `.safetensors`."""
    import torch
    from safetensors.torch import save_file

    model = _torch_model(spec)
    path = folder / "layer.safetensors"
    save_file({name: value.contiguous() for name, value in model.state_dict().items()}, path)
    with torch.no_grad():
        return path, _nhwc(model(_nchw(x)).numpy())


def _onnx_file(spec: str, x, folder):
    """The written PyTorch layer exported by torch.onnx (its default exporter, opset 21: GroupNorm is a
    GroupNormalization there); onnxruntime's output."""
    import contextlib
    import io
    import warnings

    import onnxruntime
    import torch

    model = _torch_model(spec)
    path = folder / "layer.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (_nchw(x),), str(path), dynamo=True, opset_version=21, verbose=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: _nchw(x).numpy()})
    return path, _nhwc(y)


FILES = {"keras": _keras_file, "pytorch": _safetensors_file, "onnx": _onnx_file}


def _flax_outputs(spec: str, path, x):
    """The spec's Flax model after `--init-from path` (NaN wherever the file gives no value), on x."""
    import jax
    import numpy as np
    from flax import nnx

    from archspec.train import pretrained, steps

    typed = compile_spec(spec, "kind.arch")
    shapes = jax.eval_shape(lambda: steps.init_model(typed, seed=0))
    model = jax.tree.map(lambda a: jax.device_put(np.full(a.shape, np.nan, a.dtype)), shapes)
    loaded, report = pretrained.initial_model(str(path), typed, model, reinit_mismatched=False)
    assert report.kept == 1 and not report.unused
    module = nnx.merge(steps.model_graphdef(typed), loaded.params, loaded.model_state)
    return np.asarray(module(x, train=False, logits=True))


@pytest.mark.slow  # a model per kind and framework, built, saved (exported by torch.onnx) and loaded: ~30 s
@pytest.mark.parametrize("framework", list(FILES))
@pytest.mark.parametrize("name", list(ONE_LAYER))
def test_every_kind_loads_the_weights_each_framework_saves_or_says_why_not(tmp_path, name, framework):
    """Each kind with weights, written as the framework's code (archspec's writers), given random
    weights and saved as that framework saves a model: the Flax layer loaded from the file computes
    what the framework computes (ONNX: onnxruntime), or the kind refuses the framework and the
    loader's error says why."""
    import numpy as np

    from archspec.errors import SpecError

    spec = ONE_LAYER[name]
    shape = compile_spec(spec).input_shape
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    path, expected = FILES[framework](spec, x, tmp_path)
    reason = REGISTRY[name].refusals.get(framework)
    if reason:
        with pytest.raises(SpecError) as error:
            _flax_outputs(spec, path, x)
        assert reason in error.value.message
        return
    got = _flax_outputs(spec, path, x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, float(np.abs(expected).max()))
