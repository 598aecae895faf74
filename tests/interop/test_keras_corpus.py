"""The Keras corpus: model scripts written by others (keras_corpus/, each with its source and
licence), read statically and, where static reading refuses them, with `--run`; every count is
compared with Keras' own (keras_corpus/reference.json, written by running the scripts in Keras).

Outcome of each file: "exact" (counts equal Keras'), or the reason it is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archspec.errors import SpecError, UserError
from archspec.interop import readers

CORPUS = Path(__file__).parent / "keras_corpus"
FILES = json.loads((CORPUS / "corpus.json").read_text(encoding="utf-8"))["files"]
REFERENCE = json.loads((CORPUS / "reference.json").read_text(encoding="utf-8"))["models"]

EXACT = "exact"
# file -> (static reading, `--run`): "exact", or the refusal's message (the refusal of static
# reading names the line; `--run` is tried only where static reading refuses).
OUTCOMES = {
    "keras_app_convnext.py": ("a `Normalization` with fixed `mean` and `variance`",) * 2,
    "keras_app_densenet.py": (EXACT, None),
    "keras_app_efficientnet.py": (EXACT, None),
    "keras_app_inception_v3.py": (EXACT, None),
    "keras_app_mobilenet.py": (EXACT, None),
    "keras_app_mobilenet_v2.py": (EXACT, None),
    "keras_app_mobilenet_v3.py": (EXACT, None),
    "keras_app_resnet.py": (EXACT, None),
    "keras_app_vgg16.py": (EXACT, None),
    "keras_demo_functional.py": (EXACT, None),
    "keras_demo_mnist_convnet.py": (EXACT, None),
    "keras_demo_subclass.py": (EXACT, None),
    "keras_io_convmixer.py": (EXACT, None),
    "keras_io_deeplabv3_plus.py": (
        "`resnet50.preprocess_input` (caffe: a flip to BGR and per-channel means) has no spec equivalent",
        "Keras layer `get_item` (GetItem): only a slice of the channels (`x[..., a:b]`) has a spec equivalent",
    ),
    "keras_io_denoising_autoencoder.py": (EXACT, None),
    "keras_io_image_classification_from_scratch.py": (EXACT, None),
    "keras_io_keypoint_detection.py": ("`keras.applications.MobileNetV2` builds a Keras application", EXACT),
    "keras_io_mnist_convnet.py": (EXACT, None),
    "keras_io_oxford_pets_unet.py": (EXACT, None),
}


def _shape(file: str) -> tuple[int, ...] | None:
    text = FILES[file].get("input")
    return tuple(int(d) for d in text.split("x")) if text else None


def test_the_corpus_is_the_files_here():
    assert sorted(OUTCOMES) == sorted(FILES) == sorted(p.name for p in CORPUS.glob("*.py") if p.name != "reference.py")


@pytest.mark.parametrize("file", sorted(OUTCOMES))
def test_static_reading(file):
    expected, _ = OUTCOMES[file]
    path = str(CORPUS / file)
    if expected == EXACT:
        imported = readers.read_model(path, FILES[file].get("model"), _shape(file))
        typed = readers.compile_imported(imported)
        reference = REFERENCE[file]
        assert (typed.params, typed.trainable) == (reference["count_params"], reference["trainable"])
        assert list(typed.output_shape) == reference["output_shape"]
        return
    with pytest.raises(SpecError) as caught:  # refused at a line and column of the script, never a traceback
        readers.compile_model_file(path, _shape(file))
    assert expected in caught.value.message
    assert caught.value.span is not None and caught.value.source.name == path


@pytest.mark.slow  # each runs the script with Keras in a subprocess
@pytest.mark.parametrize("file", sorted(f for f, (_, run) in OUTCOMES.items() if run is not None))
def test_run(file):
    from archspec.interop.keras_run import read_run

    expected = OUTCOMES[file][1]
    path = str(CORPUS / file)
    if expected == EXACT:
        imported, keras_count = read_run(path, FILES[file].get("model"), _shape(file))
        typed = readers.compile_imported(imported)
        assert typed.params == keras_count == REFERENCE[file]["count_params"]
        # the spec has no frozen layers: a backbone frozen in Keras (`trainable=False`) is marked,
        # and its weights are trainable in the spec
        frozen = [n for n in typed.graph.nodes if "frozen in Keras" in imported.source.line(n.span.line)]
        frozen_trainable = sum(typed.infos[n.id].trainable for n in frozen)
        assert typed.trainable - frozen_trainable == REFERENCE[file]["trainable"]
        return
    with pytest.raises(UserError) as caught:
        read_run(path, FILES[file].get("model"), _shape(file))
    assert expected in caught.value.message
