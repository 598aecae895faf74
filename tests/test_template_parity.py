"""The new templates compute the reference networks themselves, not networks of the same size: Keras
or torchvision (its graph, exported once, run by onnxruntime) computes its own model, the Flax model
built from the template takes its weights array by array, and both give the same outputs on the same
images.

Keras runs on its numpy backend in one subprocess for the three references: the same layers and
arithmetic as on JAX, whose initializers compile an XLA program per weight shape (InceptionV3: 18 s
of CPU to build and run on JAX, 1.5 s on numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from archspec import templates
from archspec.compile import compile_spec

pytestmark = pytest.mark.slow  # Keras allocates tens of millions of weights; Flax compiles a large graph


def keras_unet(keras, side: int):
    """The U-Net of the `unet` template's references, as Keras code usually writes it."""
    layers = keras.layers
    x = inputs = keras.Input((side, side, 1))
    skips = []
    for filters in (64, 128, 256, 512):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(1024, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(1024, 3, padding="same", activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    for filters in (512, 256, 128, 64):
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)
        x = layers.Concatenate()([skips.pop(), x])
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, layers.Conv2D(2, 1)(x))  # logits: the template's softmax is left out below


# template: (input shape, its reference built by Keras); 75x75 is the smallest input InceptionV3 takes:
# every module runs, at a fraction of the work
KERAS_REFERENCES = {
    "inception-v3": (
        (75, 75, 3),
        lambda keras: keras.applications.InceptionV3(weights=None, input_shape=(75, 75, 3), classifier_activation=None),
    ),
    "convnext-tiny": (
        (32, 32, 3),
        lambda keras: keras.applications.ConvNeXtTiny(
            weights=None, include_preprocessing=False, input_shape=(32, 32, 3), classifier_activation=None
        ),
    ),
    "unet": ((32, 32, 1), lambda keras: keras_unet(keras, 32)),
}


def _counter(layer) -> int:
    """Keras' automatic name suffix (`conv2d_12`): the order in which layers of a class were made."""
    head, _, tail = layer.name.rpartition("_")
    return int(tail) if head and tail.isdigit() else 0


def keras_arrays_in_creation_order(model) -> list:
    """Every weight, layer by layer in the order the Keras code made the layers.

    `model.layers` is a topological order, which for parallel branches (Inception) is not the code's
    order; InceptionV3's conv2d_bn makes `conv2d_N` and then `batch_normalization_N`, so sorting each
    class by its name counter and pairing them restores it. A single chain (ConvNeXt, U-Net: the
    skips hold no layers) is already in order."""
    weighted = [layer for layer in model.layers if layer.weights]
    convs = sorted((layer for layer in weighted if type(layer).__name__ == "Conv2D"), key=_counter)
    norms = sorted((layer for layer in weighted if type(layer).__name__ == "BatchNormalization"), key=_counter)
    if norms:
        rest = [layer for layer in weighted if type(layer).__name__ not in ("Conv2D", "BatchNormalization")]
        weighted = [layer for pair in zip(convs, norms, strict=True) for layer in pair] + rest
    return [variable for layer in weighted for variable in layer.weights]


def randomize_non_kernels(model, rng) -> None:
    """Keras starts scales at 1 (layer scale at 1e-6), shifts and means at 0: random values make every
    layer's arithmetic visible in the output. Kernels keep Keras' initialisation, which keeps the
    activations of a deep network in range."""
    for variable in model.weights:
        name = variable.name
        if name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, variable.shape)
        elif name in ("beta", "bias", "moving_mean"):
            value = rng.normal(0.0, 0.1, variable.shape)
        else:
            continue
        variable.assign(value.astype(np.float32))


def _variable(module, path: str):
    """The variable at a dotted path of a layer's module (`depthwise.kernel`), None where it has none (no bias)."""
    for name in path.split("."):
        module = getattr(module, name, None)
    return module


def copy_into_flax(flax_model, typed, arrays) -> None:
    import jax.numpy as jnp

    targets = []
    for node in typed.graph.nodes:
        module = flax_model.layers.get(f"{node.kind}_{node.id}")
        if module is None:
            continue
        # the kind's arrays, in the order Keras lists a layer's weights (`LayerKind.variables`)
        variables = [_variable(module, name) for name in node.layer.variables]
        targets += [(node, variable) for variable in variables if variable is not None]
    assert len(targets) == len(arrays)
    for (node, variable), array in zip(targets, arrays):
        value = np.asarray(array)
        assert variable.get_value().shape == value.shape, f"{node.kind} at line {node.span.line}"
        variable.set_value(jnp.asarray(value))


def keras_reference(keras, name: str) -> dict:
    """What the Flax model is held to: the reference's weights (creation order), images, its logits."""
    input_shape, build = KERAS_REFERENCES[name]
    rng = np.random.default_rng(0)
    reference = build(keras)
    randomize_non_kernels(reference, rng)
    x = rng.uniform(0.0, 1.0, (2, *input_shape)).astype(np.float32)
    arrays = [np.asarray(variable) for variable in keras_arrays_in_creation_order(reference)]
    expected = np.asarray(reference(x, training=False))
    return {
        "params": reference.count_params(),
        "x": x,
        "expected": expected,
        **{f"w{i}": a for i, a in enumerate(arrays)},
    }


# Saves keras_reference(...) of each named template in a folder, on Keras' numpy backend.
_KERAS_REFERENCES = r"""
import os, sys
from pathlib import Path
os.environ["KERAS_BACKEND"] = "numpy"
sys.path.insert(0, sys.argv[1])
import keras
import numpy as np
from tests.test_template_parity import keras_reference
assert keras.backend.backend() == "numpy"
for name in sys.argv[3:]:
    np.savez(Path(sys.argv[2]) / f"{name}.npz", **keras_reference(keras, name))
"""


@pytest.fixture(scope="module")
def keras_references(tmp_path_factory):
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path_factory.mktemp("keras")
    root = Path(__file__).parents[1]
    done = subprocess.run(
        [sys.executable, "-c", _KERAS_REFERENCES, str(root), str(folder), *KERAS_REFERENCES],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


@pytest.mark.parametrize("name", KERAS_REFERENCES)
def test_template_computes_the_keras_reference(keras_references, name):
    import jax.numpy as jnp

    from tests.flax_counts import abstract_model, logits

    saved = np.load(keras_references / f"{name}.npz")
    input_shape = KERAS_REFERENCES[name][0]
    typed = compile_spec(templates.path(name).read_text(encoding="utf-8"), name, input_shape)
    assert typed.params == saved["params"]
    model = abstract_model(typed)  # shapes only: every weight comes from Keras, none is drawn twice
    copy_into_flax(model, typed, [saved[f"w{i}"] for i in range(len(saved.files) - 3)])
    expected = saved["expected"]
    got = np.asarray(logits(model, jnp.asarray(saved["x"])))
    assert got.shape == expected.shape
    scale = float(np.abs(expected).max())
    assert scale > 1e-3  # the comparison below is not between two near-zero outputs
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)


# --- torchvision: made once outside the test environment (torchvision does not install beside the test
# extra's torch) by tests/train/reference/make_torchvision.py, which records its logits and its
# weight-stripped ONNX graph; the test draws the same weights again (`reference_weights`), onnxruntime
# computes torchvision's graph with them and the template's Flax model takes them array by array ------


def torchvision_arrays(weights: dict) -> list:
    """A torchvision state dict's float arrays in Flax layouts, in the order of the template's layers."""
    keys, arrays = [], []
    for key, array in weights.items():
        if not np.issubdtype(array.dtype, np.floating):  # num_batches_tracked
            continue
        if array.ndim == 4:
            array = array.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        elif array.ndim == 2:
            array = array.T  # Linear (out, in) -> (in, out)
        elif key.endswith("layer_scale"):
            array = array.reshape(-1)  # (C, 1, 1) -> (C,)
        keys.append(key)
        arrays.append(array)
    # a module's own parameters come before its children's: ConvNeXt's layer_scale goes after the block
    for key in [k for k in keys if k.endswith("layer_scale")]:
        index = keys.index(key)
        prefix = key.removesuffix("layer_scale")
        last = max(i for i, k in enumerate(keys) if k.startswith(prefix))
        keys.insert(last, keys.pop(index))
        arrays.insert(last, arrays.pop(index))
    return arrays


@pytest.mark.parametrize(
    ("name", "template"), [("shufflenet_v2_x1_0", "shufflenet-v2"), ("convnext_tiny", "convnext-tiny")]
)
def test_template_computes_torchvisions_network(tmp_path, name, template):
    import jax.numpy as jnp

    from tests.flax_counts import abstract_model, logits
    from tests.train import reference_weights

    reference = reference_weights.torchvision(name, tmp_path)
    x = reference_weights.images()  # 4 images of 32x32: the smallest input of both networks
    typed = compile_spec(templates.path(template).read_text(encoding="utf-8"), template, x.shape[1:])
    model = abstract_model(typed)
    copy_into_flax(model, typed, torchvision_arrays(reference.weights))
    got = np.asarray(logits(model, jnp.asarray(x)))
    assert got.shape == reference.onnx_logits.shape
    scale = max(1.0, float(np.abs(reference.onnx_logits).max()))
    assert np.abs(got - reference.onnx_logits).max() <= 1e-4 * scale  # torchvision's graph, run by onnxruntime
    assert np.abs(got - reference.torch_logits).max() <= 1e-4 * scale  # torchvision's logits when it was made
