"""The Keras corpus: model scripts written by others (keras_corpus/, each with its source and
licence), read statically, and as Keras saves the model each builds (the config `--run` reads, kept
by reference.py in keras_corpus/configs/); every count is compared with Keras' own
(keras_corpus/reference.json, written by running the scripts in Keras). `--run` itself runs here on
the script static reading refuses and its saved model reads.

Outcome of each file: "exact" (counts equal Keras'), or the reason it is refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from archspec.errors import PathError, SpecError
from archspec.interop import readers
from archspec.interop.keras_saved import read_config

CORPUS = Path(__file__).parent / "keras_corpus"
FILES = json.loads((CORPUS / "corpus.json").read_text(encoding="utf-8"))["files"]
REFERENCE = json.loads((CORPUS / "reference.json").read_text(encoding="utf-8"))["models"]

EXACT = "exact"
# file -> (static reading, the saved model): "exact", or the refusal's message (static reading's
# names the line; the saved model's, the Keras layer). None: a subclassed model, which Keras saves
# as a class, not as layers (`--run` traces its `call` instead).
OUTCOMES = {
    "keras_app_convnext.py": ("a `Normalization` with fixed `mean` and `variance`",) * 2,
    "keras_app_densenet.py": (EXACT, EXACT),
    "keras_app_efficientnet.py": (EXACT, EXACT),
    "keras_app_inception_v3.py": (EXACT, EXACT),
    "keras_app_mobilenet.py": (EXACT, EXACT),
    "keras_app_mobilenet_v2.py": (EXACT, EXACT),
    "keras_app_mobilenet_v3.py": (EXACT, EXACT),
    "keras_app_resnet.py": (EXACT, EXACT),
    "keras_app_vgg16.py": (EXACT, EXACT),
    "keras_demo_functional.py": (EXACT, EXACT),
    "keras_demo_mnist_convnet.py": (EXACT, EXACT),
    "keras_demo_subclass.py": (EXACT, None),
    "keras_io_convmixer.py": (EXACT, EXACT),
    "keras_io_deeplabv3_plus.py": (
        "`resnet50.preprocess_input` (caffe: a flip to BGR and per-channel means) has no spec equivalent",
        "Keras layer `get_item` (GetItem): only a slice of the channels (`x[..., a:b]`) has a spec equivalent",
    ),
    "keras_io_denoising_autoencoder.py": (EXACT, EXACT),
    "keras_io_image_classification_from_scratch.py": (EXACT, EXACT),
    "keras_io_keypoint_detection.py": ("`keras.applications.MobileNetV2` builds a Keras application", EXACT),
    "keras_io_mnist_convnet.py": (EXACT, EXACT),
    "keras_io_oxford_pets_unet.py": (EXACT, EXACT),
}


def _shape(file: str) -> tuple[int, ...] | None:
    text = FILES[file].get("input")
    return tuple(int(d) for d in text.split("x")) if text else None


def test_the_corpus_is_the_files_here():
    scripts = sorted(p.name for p in CORPUS.glob("*.py") if p.name != "reference.py")
    assert sorted(OUTCOMES) == sorted(FILES) == scripts


@pytest.mark.parametrize("file", sorted(OUTCOMES))
def test_static_reading(file):
    expected, _ = OUTCOMES[file]
    path = str(CORPUS / file)
    if expected == EXACT:
        _assert_keras_counts(file, readers.read_model(path, FILES[file].get("model"), _shape(file)))
        return
    with pytest.raises(SpecError) as caught:  # refused at a line and column of the script, never a traceback
        readers.compile_model_file(path, _shape(file))
    assert expected in caught.value.message
    assert caught.value.span is not None and caught.value.source.name == path


def _assert_keras_counts(file: str, imported) -> None:
    """The spec's counts are Keras'; a layer Keras does not train (a frozen backbone) is marked,
    and trainable in the spec, which has no frozen layers."""
    typed = readers.compile_imported(imported)
    reference = REFERENCE[file]
    frozen = sum(
        typed.infos[n.id].trainable for n in typed.graph.nodes if "frozen in Keras" in imported.source.line(n.span.line)
    )
    assert (typed.params, typed.trainable - frozen) == (reference["count_params"], reference["trainable"])
    assert list(typed.output_shape) == reference["output_shape"]


@pytest.mark.parametrize("file", sorted(f for f, (_, saved) in OUTCOMES.items() if saved is not None))
def test_the_saved_model(file):
    config = json.loads(gzip.decompress((CORPUS / "configs" / f"{Path(file).stem}.json.gz").read_bytes()))
    expected = OUTCOMES[file][1]
    if expected == EXACT:
        _assert_keras_counts(file, read_config(config, file, _shape(file)))
        return
    with pytest.raises(PathError) as caught:
        read_config(config, file)
    assert expected in caught.value.message


@pytest.mark.slow  # runs the script with Keras in a subprocess
def test_run_reads_what_static_reading_refuses():
    from archspec.interop.keras_run import read_run

    file = "keras_io_keypoint_detection.py"
    imported, keras_count = read_run(str(CORPUS / file), FILES[file].get("model"), _shape(file))
    assert keras_count == REFERENCE[file]["count_params"]
    _assert_keras_counts(file, imported)
    assert "(Conv2D, frozen in Keras)" in imported.text  # the backbone `backbone.trainable = False` froze
