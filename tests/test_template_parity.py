"""The new templates compute the reference networks themselves, not networks of the same size: Keras
(Keras 3, JAX backend) or torchvision (its graph, exported once, run by onnxruntime) computes its own
model, the Flax model built from the template takes its weights array by array, and both give the
same outputs on the same images."""

from __future__ import annotations

import numpy as np
import pytest

from archspec import templates
from archspec.compile import compile_spec
from tests.interop.keras_build import keras

pytestmark = pytest.mark.slow  # Keras allocates tens of millions of weights; both sides compile a large graph

RNG = np.random.default_rng(0)


def keras_unet(side: int):
    """The U-Net of the `unet` template's references, as Keras code usually writes it."""
    layers = keras().layers
    x = inputs = keras().Input((side, side, 1))
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
    return keras().Model(inputs, layers.Conv2D(2, 1)(x))  # logits: the template's softmax is left out below


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


def randomize_non_kernels(model) -> None:
    """Keras starts scales at 1 (layer scale at 1e-6), shifts and means at 0: random values make every
    layer's arithmetic visible in the output. Kernels keep Keras' initialisation, which keeps the
    activations of a deep network in range."""
    for variable in model.weights:
        name = variable.name
        if name in ("gamma", "moving_variance"):
            value = RNG.uniform(0.5, 1.5, variable.shape)
        elif name in ("beta", "bias", "moving_mean"):
            value = RNG.normal(0.0, 0.1, variable.shape)
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


def assert_same_outputs(name: str, reference, input_shape: tuple[int, ...]) -> None:
    import jax.numpy as jnp

    from tests.flax_counts import abstract_model

    typed = compile_spec(templates.path(name).read_text(encoding="utf-8"), name, input_shape)
    assert typed.params == reference.count_params()
    randomize_non_kernels(reference)
    model = abstract_model(typed)  # shapes only: every weight comes from Keras, none is drawn twice
    copy_into_flax(model, typed, keras_arrays_in_creation_order(reference))
    x = RNG.uniform(0.0, 1.0, (2, *input_shape)).astype(np.float32)
    expected = np.asarray(reference(x, training=False))
    got = np.asarray(model(jnp.asarray(x), logits=True))
    assert got.shape == expected.shape
    scale = float(np.abs(expected).max())
    assert scale > 1e-3  # the comparison below is not between two near-zero outputs
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)


def test_inception_v3_computes_keras_inception_v3():
    # 75x75, the smallest input Keras accepts: every module runs, at a fraction of the work
    reference = keras().applications.InceptionV3(weights=None, input_shape=(75, 75, 3), classifier_activation=None)
    assert_same_outputs("inception-v3", reference, (75, 75, 3))


def test_convnext_tiny_computes_keras_convnext_tiny():
    reference = keras().applications.ConvNeXtTiny(
        weights=None, include_preprocessing=False, input_shape=(32, 32, 3), classifier_activation=None
    )
    assert_same_outputs("convnext-tiny", reference, (32, 32, 3))


def test_unet_computes_the_keras_unet():
    assert_same_outputs("unet", keras_unet(32), (32, 32, 1))


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

    from tests.flax_counts import abstract_model
    from tests.train import reference_weights

    reference = reference_weights.torchvision(name, tmp_path)
    x = reference_weights.images()  # 4 images of 32x32: the smallest input of both networks
    typed = compile_spec(templates.path(template).read_text(encoding="utf-8"), template, x.shape[1:])
    model = abstract_model(typed)
    copy_into_flax(model, typed, torchvision_arrays(reference.weights))
    got = np.asarray(model(jnp.asarray(x), logits=True))
    assert got.shape == reference.onnx_logits.shape
    scale = max(1.0, float(np.abs(reference.onnx_logits).max()))
    assert np.abs(got - reference.onnx_logits).max() <= 1e-4 * scale  # torchvision's graph, run by onnxruntime
    assert np.abs(got - reference.torch_logits).max() <= 1e-4 * scale  # torchvision's logits when it was made
