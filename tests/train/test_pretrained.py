"""`--init-from` other frameworks' weights, checked against the frameworks' own logits, `--reinit-mismatched`
and its errors, and `--freeze`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import reference_weights
from conftest import TINY_SPEC, final_state, make_images, plain

REFERENCE = Path(__file__).parent / "reference"  # torchvision's (made by reference/make_torchvision.py)
INPUTS = reference_weights.images()  # 4 images of 32x32x3: the inputs torchvision's logits were made for


class FlaxLogits:
    """The spec's Flax model, compiled once, given a file's weights as `--init-from` gives them: its
    logits on INPUTS. The model it starts from is NaN wherever a file gives no value (instead of an
    initialization, which costs more than the forward pass), so a layer the file misses shows."""

    def __init__(self, spec_text: str, name: str, input_shape):
        import jax
        from flax import nnx

        from archspec.compile import compile_spec
        from archspec.train import steps

        self.typed = compile_spec(spec_text, name, input_shape)
        shapes = jax.eval_shape(lambda: steps.init_model(self.typed, seed=0))
        self.model = jax.tree.map(lambda a: jax.device_put(np.full(a.shape, np.nan, a.dtype)), shapes)
        graphdef = steps.model_graphdef(self.typed)
        self.forward = jax.jit(lambda m, x: nnx.merge(graphdef, m.params, m.model_state)(x, train=False, logits=True))

    def __call__(self, weights: str) -> np.ndarray:
        from archspec.train import pretrained

        loaded, report = pretrained.initial_model(weights, self.typed, self.model, reinit_mismatched=False)
        assert report.kept == len(pretrained.target_layers(self.typed, self.model)) and not report.unused
        return np.asarray(self.forward(loaded, INPUTS))


# Built in a subprocess on Keras' numpy backend: four times faster than on JAX for these models (no
# JAX dispatch for each layer's initialization), and the test session's Keras keeps its own backend.
KERAS_REFERENCES = r"""
import sys
import numpy as np
import keras
from keras import layers

folder = sys.argv[1]
inputs = np.load(folder + "/inputs.npy")


def randomize_batch_norms(model):
    # Moving statistics and affine weights away from their initial 0 and 1, so that a mix-up shows.
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.1, channels).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, channels).astype(np.float32))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, channels).astype(np.float32))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.1, channels).astype(np.float32))


# Keras' MobileNetV2 application (alpha 1.0, random weights) at 32x32, saved both ways.
model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, classifier_activation=None)
randomize_batch_norms(model)
model.save(folder + "/mobilenet.keras")
model.save_weights(folder + "/mobilenet.weights.h5")
np.save(folder + "/mobilenet.npy", np.asarray(model(inputs, training=False)))

# A branched functional model (FUNCTIONAL_SPEC). The shortcut is built first here and written second in
# the spec: the layers of the two are matched by their place in the graph, not by the order the code made them.
x_in = keras.Input((32, 32, 3))
x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(x_in)))
shortcut = layers.Conv2D(16, 1, use_bias=False)(x)
branch = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(x)))
branch = layers.SeparableConv2D(16, 3, padding="same")(branch)
x = layers.Add()([branch, shortcut])
x = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same")(x)
x = layers.BatchNormalization(scale=False)(x)
x = layers.Concatenate()(
    [layers.Dense(6)(x), layers.BatchNormalization(epsilon=1e-5, center=False)(layers.Conv2D(6, 1)(x))]
)
x = layers.Dense(5)(layers.Dense(20, activation="relu")(layers.GlobalAveragePooling2D()(x)))
model = keras.Model(x_in, x)
randomize_batch_norms(model)
model.save(folder + "/functional.keras")
np.save(folder + "/functional.npy", np.asarray(model(inputs, training=False)))
"""


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """The Keras reference models' files and their logits on INPUTS (see KERAS_REFERENCES)."""
    import subprocess
    import sys

    from conftest import subprocess_env

    folder = tmp_path_factory.mktemp("keras")
    np.save(folder / "inputs.npy", INPUTS)
    done = subprocess.run(
        [sys.executable, "-c", KERAS_REFERENCES, str(folder)],
        env=subprocess_env(KERAS_BACKEND="numpy"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return folder


@pytest.mark.slow
def test_a_keras_application_gives_its_logits_in_the_template(keras_files):
    from archspec.templates import path

    expected = np.load(keras_files / "mobilenet.npy")
    logits = FlaxLogits(path("mobilenet-v2").read_text(), "mobilenet-v2", (32, 32, 3))
    for name in ("mobilenet.keras", "mobilenet.weights.h5"):
        assert np.abs(logits(str(keras_files / name)) - expected).max() <= 1e-4


FUNCTIONAL_SPEC = """\
input 32x32x3
conv 8 3 padding=same bn relu
add:
    branch:
        conv 16 3 padding=same bias=false bn relu
        sepconv 16 3 padding=same
    conv 16 1 bias=false
dwconv 3 stride=2 multiplier=2 padding=same bn(scale=false)
concat:
    dense 6
    conv 6 1 bn(epsilon=1e-5, center=false)
gap
dense 20 relu
dense 5
"""


@pytest.mark.slow
def test_a_keras_functional_model_with_branches_gives_its_logits(keras_files):
    expected = np.load(keras_files / "functional.npy")
    logits = FlaxLogits(FUNCTIONAL_SPEC, "functional.arch", None)(str(keras_files / "functional.keras"))
    assert np.abs(logits - expected).max() <= 1e-4


@pytest.fixture(scope="module")
def shufflenet_files(tmp_path_factory):
    """torchvision's ShuffleNetV2 1.0x with the weights of `reference_weights` as a safetensors state dict
    and as torch.onnx's export of the model: (folder, torchvision's logits on INPUTS, onnxruntime's).

    torchvision made its logits and the export without weights (reference/make_torchvision.py, in an
    environment of its own); here the same weights are drawn again and written into both files."""
    import onnx
    import onnxruntime
    from onnx import numpy_helper
    from safetensors.numpy import save_file

    record = json.loads((REFERENCE / "shufflenet_v2_x1_0.json").read_text())
    weights = reference_weights.state_dict(record["state_dict"])
    assert reference_weights.digest(weights) == record["weights_sha256"], (
        "numpy drew other weights than torchvision had"
    )
    folder = tmp_path_factory.mktemp("torch")
    save_file(weights, folder / "shufflenet.safetensors")
    graph = onnx.load(str(REFERENCE / "shufflenet_v2_x1_0.onnx"), load_external_data=False)
    for tensor in graph.graph.initializer:
        tensor.CopyFrom(numpy_helper.from_array(weights[tensor.name], tensor.name))
    onnx.save(graph, str(folder / "shufflenet.onnx"))
    session = onnxruntime.InferenceSession(str(folder / "shufflenet.onnx"), providers=["CPUExecutionProvider"])
    (from_onnx,) = session.run(None, {"images": INPUTS.transpose(0, 3, 1, 2).copy()})
    from_torch = np.load(REFERENCE / "shufflenet_v2_x1_0_logits.npy")
    assert np.abs(from_onnx - from_torch).max() <= 1e-4  # the export with the weights filled in is torchvision's model
    return folder, from_torch, from_onnx


@pytest.fixture(scope="module")
def shufflenet_logits():
    """The shufflenet-v2 template's logits on INPUTS with a file's weights (one model for the module's tests)."""
    from archspec.templates import path

    return FlaxLogits(path("shufflenet-v2").read_text(), "shufflenet-v2", (32, 32, 3))


def test_a_torchvision_state_dict_in_safetensors_gives_torchvisions_logits(shufflenet_files, shufflenet_logits):
    folder, expected, _ = shufflenet_files
    logits = shufflenet_logits(str(folder / "shufflenet.safetensors"))
    assert np.abs(logits - expected).max() <= 1e-4


def test_an_onnx_files_initializers_give_onnxruntimes_logits(shufflenet_files, shufflenet_logits):
    folder, _, expected = shufflenet_files
    logits = shufflenet_logits(str(folder / "shufflenet.onnx"))
    assert np.abs(logits - expected).max() <= 1e-4


# --- a new head on a trained run ------------------------------------------------------------

TWO_CLASS_SPEC = TINY_SPEC.replace("dense 3 softmax", "dense 2 softmax")


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory):
    """A .npz of two of the tiny data's three classes, and a spec with a two-unit head."""
    folder = tmp_path_factory.mktemp("two")
    x, y = make_images(90, seed=7)
    keep = y < 2
    np.savez(folder / "two.npz", x_train=x[keep], y_train=y[keep])
    (folder / "two.arch").write_text(TWO_CLASS_SPEC)
    return folder / "two.arch", folder / "two.npz"


@pytest.mark.slow
def test_a_new_head_is_one_located_error_without_reinit_mismatched_and_leaves_no_run_folder(
    cli, tmp_path, finished_run, two_classes
):
    run_dir, _ = finished_run
    spec, data = two_classes
    out = tmp_path / "run"
    result = cli("train", str(spec), "--data", str(data), "--init-from", str(run_dir), "-o", str(out))
    assert result.code == 2
    assert result.err.startswith(
        f"{spec}:6:1: error: --init-from {run_dir}: line 6 `dense 2` has kernel 4x2, "
        "but its layer line 6 `dense 3` has kernel 4x3"
    )
    assert "--reinit-mismatched" in result.err and "Traceback" not in result.err and "orbax" not in result.err
    assert result.out == "" and not out.exists()


@pytest.mark.slow
def test_a_new_head_on_a_frozen_trunk_trains_and_the_trunk_stays_bit_for_bit(cli, tmp_path, finished_run, two_classes):
    from archspec.train.inference import load_run

    run_dir, _ = finished_run
    spec, data = two_classes
    out = tmp_path / "run"
    args = ["train", str(spec), "--data", str(data), "--init-from", str(run_dir), "--reinit-mismatched"]
    result = cli(*args, "--epochs", "1", "--batch-size", "16", "--freeze", "3", "-o", str(out))
    assert result.code == 0, result.err
    assert f"Weights from {run_dir}: kept 2 layers; re-initialized line 6 `dense 2` (was 3 units)" in result.out
    # conv 4 3 (36 + 4) and bn (8): frozen; the new head: 4 x 2 + 2.
    assert "Frozen up to line 3: 48 parameters fixed (their BatchNorm in inference mode), 10 trainable" in result.out
    results = json.loads((out / "results.json").read_text())
    assert results["parameters"] == {"trainable": 10, "frozen": 48}
    # The trunk is the source run's kept model (`--init-from RUN` takes RUN/best), bit for bit after
    # training: the conv's kernel and bias, the BatchNorm's scale, bias, mean and variance.
    source, trained = plain(load_run(run_dir).model), final_state(out)
    for module in ("conv_1", "bn_3"):
        assert [a.tobytes() for a in leaves(source, module)] == [a.tobytes() for a in leaves(trained, module)]
    # The new head trained: its bias starts at zero (nnx.Linear initializes it so).
    assert np.all(trained.params["layers"]["dense_6"]["bias"] != 0)


def leaves(model, module: str) -> list[np.ndarray]:
    """The arrays of one module: its parameters, then its state (BatchNorm statistics)."""
    import jax

    return jax.tree.leaves((model.params["layers"].get(module), model.model_state["layers"].get(module)))


def test_freeze_names_what_it_cannot_find(compile_text):
    from archspec.errors import UserError
    from archspec.train.freezing import frozen_nodes

    typed = compile_text("input 8x8x1\nconv 4 3 -> trunk\n# a comment\ngap\ndense 2\n")
    assert frozen_nodes(typed, "@trunk") == frozenset({0, 1})
    with pytest.raises(UserError, match=r"the spec names no tensor `trnk`.*") as error:
        frozen_nodes(typed, "@trnk")
    assert error.value.hint == "did you mean `@trunk`?"
    with pytest.raises(UserError, match=r"line 3 of test\.arch holds no layer"):
        frozen_nodes(typed, "3")
