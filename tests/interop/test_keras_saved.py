"""Saved Keras models (`.keras`, `.h5`) read as data: counts equal Keras' `count_params()` for every
Keras application the spec language can say (saved by Keras, see keras_applications/generate.py:
building all 40 here would take minutes), models saved by Keras here (shared inputs, branches,
nested models, both formats), what the reader refuses and how, and the commands on such files."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from archspec.errors import PathError, UserError
from archspec.interop import readers
from archspec.interop.keras_saved import load_config, read_config
from tests.interop.keras_build import keras

APPLICATIONS = Path(__file__).parent / "keras_applications"
COUNTS = json.loads((APPLICATIONS / "counts.json").read_text(encoding="utf-8"))["applications"]
# Applications the reader refuses, and why: what the spec cannot say (the variants saved with
# include_preprocessing=False read exactly).
REFUSED = {
    name: "a `Normalization` with fixed `mean` and `variance`"
    for name in COUNTS
    if name.startswith(("ConvNeXt", "EfficientNetV2B")) and not name.endswith("_no_preprocessing")
}


@pytest.mark.parametrize("name", sorted(set(COUNTS) - set(REFUSED)))
def test_every_keras_application_reads_with_keras_counts(name):
    typed = readers.compile_model_file(str(APPLICATIONS / f"{name}.keras"))
    assert (typed.params, typed.trainable) == (COUNTS[name]["count_params"], COUNTS[name]["trainable"])


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_applications_the_spec_cannot_say_are_refused_naming_the_layer(name):
    with pytest.raises(PathError) as caught:
        readers.read_model(str(APPLICATIONS / f"{name}.keras"))
    assert REFUSED[name] in caught.value.message
    assert caught.value.message.startswith("Keras layer `")  # which layer, by its Keras name


def test_a_graph_that_does_not_nest_is_written_with_named_tensors():
    text = readers.read_model(str(APPLICATIONS / "NASNetMobile.keras")).text
    assert "-> stem_bn1" in text and "\n@stem_bn1\n" in text  # a cell reads the stem twice


def test_nothing_of_keras_tensorflow_or_jax_is_imported():
    code = (
        "import sys; from archspec.interop.readers import compile_model_file; "
        f"compile_model_file({str(APPLICATIONS / 'ResNet50.keras')!r}); "
        "print(sorted({'keras', 'tensorflow', 'jax'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- models saved by Keras here -----------------------------------------------------------------


def _functional(k):
    """A shared input read by three branches (one a nested Sequential, one a nested functional
    model), merged by concatenation, with a residual add."""
    layers = k.layers
    inputs = k.Input((16, 16, 3))
    stem = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    block = k.Sequential([layers.Conv2D(8, 1), layers.BatchNormalization(), layers.ReLU(6.0)], name="block")
    inner_in = k.Input((16, 16, 8))
    inner = k.Model(inner_in, layers.DepthwiseConv2D(3, padding="same")(inner_in), name="inner")
    merged = layers.Concatenate()([block(stem), inner(stem), layers.MaxPooling2D(1)(stem)])
    x = layers.Conv2D(8, 1)(merged)
    x = layers.add([x, stem])
    x = layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, layers.Dense(5, activation="softmax")(x))


def _sequential(k):
    """A Sequential model without an Input, built afterwards (its shape is in the build config)."""
    layers = k.layers
    model = k.Sequential([layers.Conv2D(4, 3, strides=2), layers.Flatten(), layers.Dense(2)])
    model.build((None, 12, 12, 1))
    return model


# (An application used as a backbone, saved by Keras, is read by test_keras_corpus.py through
# `--run` on a segmentation-models U-Net with a ResNet-18 encoder.)
BUILDERS = {"functional": _functional, "sequential": _sequential}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, tuple[Path, Path, int, int]]:
    """Each model saved by Keras as .keras and .h5, with Keras' total and trainable counts."""
    import math

    k = keras()
    folder = tmp_path_factory.mktemp("saved")
    found = {}
    for name, build in BUILDERS.items():
        model = build(k)
        model.save(folder / f"{name}.keras")
        model.save(folder / f"{name}.h5")
        trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
        found[name] = (folder / f"{name}.keras", folder / f"{name}.h5", model.count_params(), trainable)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_models_saved_by_keras_read_with_keras_counts(saved, name):
    keras_file, h5_file, total, trainable = saved[name]
    for path in (keras_file, h5_file):
        typed = readers.compile_model_file(str(path))
        assert (typed.params, typed.trainable) == (total, trainable), path.name


@pytest.mark.slow
def test_nested_models_name_their_layers_by_path(saved):
    for path in saved["functional"][:2]:
        text = readers.read_model(str(path)).text
        assert "# block/" in text and "# inner/" in text  # the layers of the nested models, by path


# --- refusals and broken files ------------------------------------------------------------------


def _write_keras(path: Path, config: dict) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    return path


def _resnet_config() -> dict:
    return load_config(str(APPLICATIONS / "ResNet50.keras"))


def _edited(edit) -> dict:
    config = _resnet_config()
    edit(config["config"]["layers"])
    return config


def _layer(layers: list, name: str) -> dict:
    return next(layer for layer in layers if layer["name"] == name)


REFUSALS = [
    (
        lambda layers: _layer(layers, "conv1_conv").update(class_name="LSTM"),
        "Keras layer `conv1_conv` (LSTM): `LSTM` is not a Keras layer the spec language has",
    ),
    (
        lambda layers: _layer(layers, "conv1_conv")["config"].update(padding="causal"),
        'Keras layer `conv1_conv` (Conv2D): `padding` must be "valid" or "same", got "causal"',
    ),
    (
        lambda layers: _layer(layers, "conv1_conv")["config"].update(lora_rank=4),
        "Keras layer `conv1_conv` (Conv2D): `lora_rank=4` has no spec equivalent",
    ),
    (
        lambda layers: _layer(layers, "conv1_conv").update(module="my_project.blocks", class_name="FancyConv"),
        "`FancyConv` is a custom layer class (module `my_project.blocks`)",
    ),
    (
        lambda layers: _layer(layers, "pool1_pool")["config"].update(pool_size=[99, 99], strides=[99, 99]),
        "Keras layer `pool1_pool` (MaxPooling2D): maxpool 99 needs at least 99x99 input",
    ),
]


@pytest.mark.parametrize(("edit", "message"), REFUSALS)
def test_refusals_name_the_keras_layer(tmp_path, edit, message):
    path = _write_keras(tmp_path / "model.keras", _edited(edit))
    with pytest.raises(PathError) as caught:
        readers.compile_model_file(str(path))
    assert message in caught.value.message
    assert caught.value.render().startswith(f"{path}: error: ")


@pytest.mark.slow
def test_a_layer_applied_twice_is_refused():
    k = keras()
    shared = k.layers.Dense(4)
    inputs = k.Input((4,))
    config = _serialized(k, k.Model(inputs, shared(shared(inputs))))
    with pytest.raises(PathError, match="applied 2 times \\(shared weights\\)"):
        read_config(config, "shared.keras")


@pytest.mark.slow
def test_a_model_with_two_outputs_is_refused():
    k = keras()
    inputs = k.Input((4,))
    config = _serialized(k, k.Model(inputs, [k.layers.Dense(2)(inputs), k.layers.Dense(3)(inputs)]))
    with pytest.raises(PathError, match="the model has 2 outputs"):
        read_config(config, "two.keras")


def _serialized(k, model) -> dict:
    from keras.src.saving import serialization_lib

    return json.loads(json.dumps(serialization_lib.serialize_keras_object(model)))


def test_keras_2_configs_read(tmp_path):
    """tf.keras 2 saves inbound nodes as lists (`[[["conv2d", 0, 0, {}]]]`) and `batch_input_shape`."""

    def layer(class_name, name, config, inputs):
        nodes = [[[source, 0, 0, {}] for source in inputs]] if inputs else []
        return {"class_name": class_name, "name": name, "config": {"name": name, **config}, "inbound_nodes": nodes}

    config = {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                layer("InputLayer", "input_1", {"batch_input_shape": [None, 8, 8, 3]}, []),
                layer("Conv2D", "conv2d", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}, ["input_1"]),
                layer("Conv2D", "conv2d_1", {"filters": 4, "kernel_size": [1, 1]}, ["input_1"]),
                layer("Add", "add", {}, ["conv2d", "conv2d_1"]),
                layer("LeakyReLU", "leaky_re_lu", {"alpha": 0.1}, ["add"]),
            ],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["leaky_re_lu", 0, 0]],
        },
    }
    imported = read_config(config, "old.h5")
    assert "leaky_relu 0.1" in imported.text
    assert readers.compile_imported(imported).params == (27 * 4 + 4) + (3 * 4 + 4)


def test_broken_files_are_user_errors(tmp_path):
    not_zip = tmp_path / "a.keras"
    not_zip.write_bytes(b"not a zip")
    empty_zip = tmp_path / "b.keras"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("model.weights.h5", b"")
    bad_json = tmp_path / "c.keras"
    with zipfile.ZipFile(bad_json, "w") as archive:
        archive.writestr("config.json", "{")
    import h5py

    weights_only = tmp_path / "d.h5"
    with h5py.File(weights_only, "w") as file:
        file.create_dataset("kernel", data=[1.0])
    cases = {
        not_zip: "not a .keras file (not a zip archive)",
        empty_zip: "the archive holds no config.json",
        bad_json: "the model config is not valid JSON",
        weights_only: "the file holds weights only",
        tmp_path / "missing.keras": "no such file",
    }
    for path, message in cases.items():
        with pytest.raises(PathError, match=message.replace("(", "\\(").replace(")", "\\)")):
            readers.read_model(str(path))


def test_h5_without_h5py_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if it were not installed
    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(UserError) as caught:
        readers.read_model(str(tmp_path / "model.h5"))
    assert "needs h5py" in caught.value.message
    assert "pip install 'cnn-arch[h5]'" in caught.value.hint


# --- the commands ---------------------------------------------------------------------------------


def test_commands_accept_saved_models(cli, tmp_path):
    path = str(APPLICATIONS / "VGG16_224.keras")
    summary = cli("summarize", path)
    assert summary.code == 0, summary.err
    assert f"Total params: {COUNTS['VGG16_224']['count_params']:,}" in summary.out
    lint = cli("lint", path, "--output-format", "concise")
    assert lint.code == 1
    assert f"{path}:" in lint.out and "CA101 Keras layer `flatten` (Flatten): Dense head after `flatten`" in lint.out
    drawn = cli("draw", path, "-o", str(tmp_path / "vgg.svg"))
    assert drawn.code == 0 and "<svg" in (tmp_path / "vgg.svg").read_text()
    spec = cli("import", path)
    assert spec.code == 0
    assert spec.out.splitlines()[2] == "conv 64 3 padding=same relu".ljust(40) + " # block1_conv1 (Conv2D)"
    assert cli("lint", path, "--fix").code == 2  # a saved model is not rewritten


def test_errors_of_saved_models_are_exit_2_without_traceback(cli, tmp_path):
    path = _write_keras(tmp_path / "model.keras", _edited(REFUSALS[0][0]))
    for command in ("summarize", "lint", "import", "draw"):
        result = cli(command, str(path))
        assert result.code == 2, command
        assert "Keras layer `conv1_conv` (LSTM)" in result.err
        assert "Traceback" not in result.err
