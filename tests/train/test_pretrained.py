"""`--init-from` other frameworks' weights, checked against the frameworks' own logits, `--reinit-mismatched`
and its errors, and `--freeze`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_SPEC, final_state, make_images, plain

pytestmark = pytest.mark.slow  # builds reference models in Keras and PyTorch, and trains

INPUTS = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype(np.float32)


def flax_logits(spec_text: str, name: str, input_shape, files: list[str], x: np.ndarray) -> list[np.ndarray]:
    """The spec's Flax model, fresh, then given each file's weights as `--init-from` gives them, on images `x`."""
    import jax
    from flax import nnx

    from archspec.compile import compile_spec
    from archspec.train import pretrained, steps

    typed = compile_spec(spec_text, name, input_shape)
    model = jax.jit(lambda: steps.init_model(typed, seed=0))()
    graphdef = steps.model_graphdef(typed)
    forward = jax.jit(lambda m, x: nnx.merge(graphdef, m.params, m.model_state)(x, train=False, logits=True))
    logits = []
    for weights in files:
        loaded, report = pretrained.initial_model(weights, typed, model, reinit_mismatched=False)
        assert report.kept == len(pretrained.target_layers(typed, model)) and not report.unused
        logits.append(np.asarray(forward(loaded, x)))
    return logits


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


def test_a_keras_application_gives_its_logits_in_the_template(keras_files):
    from archspec.templates import path

    expected = np.load(keras_files / "mobilenet.npy")
    files = [str(keras_files / "mobilenet.keras"), str(keras_files / "mobilenet.weights.h5")]
    for logits in flax_logits(path("mobilenet-v2").read_text(), "mobilenet-v2", (32, 32, 3), files, INPUTS):
        assert np.abs(logits - expected).max() <= 1e-4


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


def test_a_keras_functional_model_with_branches_gives_its_logits(keras_files):
    expected = np.load(keras_files / "functional.npy")
    (logits,) = flax_logits(FUNCTIONAL_SPEC, "functional.arch", None, [str(keras_files / "functional.keras")], INPUTS)
    assert np.abs(logits - expected).max() <= 1e-4


@pytest.fixture(scope="module")
def shufflenet_files(tmp_path_factory):
    """torchvision's ShuffleNetV2 1.0x (random weights, BatchNorm statistics randomized) as a
    safetensors state dict and an ONNX export, with its PyTorch logits."""
    import torch
    from safetensors.torch import save_file
    from torchvision_shufflenetv2 import shufflenet_v2_x1_0

    folder = tmp_path_factory.mktemp("torch")
    torch.manual_seed(0)
    model = shufflenet_v2_x1_0()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                channels = module.num_features
                module.running_mean.copy_(torch.randn(channels, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(channels, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(channels, generator=generator) * 0.1)
    model.eval()
    nchw = torch.from_numpy(INPUTS.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        expected = model(nchw).numpy()
    save_file(model.state_dict(), folder / "shufflenet.safetensors")
    # Without constant folding, the export keeps BatchNorm as its own operator (not folded into the convs).
    torch.onnx.export(model, (nchw,), folder / "shufflenet.onnx", dynamo=False, do_constant_folding=False)
    return folder, expected


def test_a_torchvision_state_dict_in_safetensors_gives_torchvisions_logits(shufflenet_files):
    from archspec.templates import path

    folder, expected = shufflenet_files
    text = path("shufflenet-v2").read_text()
    (logits,) = flax_logits(text, "shufflenet-v2", (32, 32, 3), [str(folder / "shufflenet.safetensors")], INPUTS)
    assert np.abs(logits - expected).max() <= 1e-4


def test_an_onnx_files_initializers_give_onnxruntimes_logits(shufflenet_files):
    import onnxruntime

    from archspec.templates import path

    folder, _ = shufflenet_files
    session = onnxruntime.InferenceSession(str(folder / "shufflenet.onnx"), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {session.get_inputs()[0].name: INPUTS.transpose(0, 3, 1, 2).copy()})
    text = path("shufflenet-v2").read_text()
    (logits,) = flax_logits(text, "shufflenet-v2", (32, 32, 3), [str(folder / "shufflenet.onnx")], INPUTS)
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


def test_reinit_mismatched_keeps_the_trunk_and_says_what_started_afresh(cli, tmp_path, finished_run, two_classes):
    run_dir, _ = finished_run
    spec, data = two_classes
    out = tmp_path / "run"
    args = ["train", str(spec), "--data", str(data), "--init-from", str(run_dir), "--reinit-mismatched"]
    result = cli(*args, "--epochs", "1", "--batch-size", "16", "--freeze", "3", "-o", str(out))
    assert result.code == 0, result.err
    assert f"Weights from {run_dir}: kept 2 layers; re-initialized line 6 `dense 2` (was 3 units)" in result.out
    # conv 4 3 (36 + 4) and bn (8): frozen; the new head: 4 x 2 + 2.
    assert "Frozen up to line 3: 48 parameters fixed (their BatchNorm in inference mode), 10 trainable" in result.out
    # The kept trunk is the source run's, bit for bit (and frozen, it stayed so).
    source, trained = final_state(run_dir), final_state(out)
    for module in ("conv_1", "bn_3"):
        assert [a.tobytes() for a in leaves(source, module)] == [a.tobytes() for a in leaves(trained, module)]
    results = json.loads((out / "results.json").read_text())
    assert results["parameters"] == {"trainable": 10, "frozen": 48}


def test_a_frozen_trunk_keeps_its_weights_and_batchnorm_statistics_bit_for_bit(tmp_path, tiny_config):
    from archspec.compile import compile_spec
    from archspec.train import steps
    from archspec.train.loop import train_and_evaluate

    config = tiny_config(freeze="3", epochs=3)
    train_and_evaluate(config, tmp_path / "run")
    typed = compile_spec(config.spec_text, config.spec, config.input_shape)
    start = plain(steps.init_model(typed, seed=config.seed))
    end = final_state(tmp_path / "run")
    for module in ("conv_1", "bn_3"):  # kernel and bias; scale, bias, mean and var
        assert [a.tobytes() for a in leaves(start, module)] == [a.tobytes() for a in leaves(end, module)]
    assert not np.array_equal(start.params["layers"]["dense_6"]["kernel"], end.params["layers"]["dense_6"]["kernel"])


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
