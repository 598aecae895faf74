"""The Keras corpus: model code written by others, read where PyPI packages install it (the `test`
extra installs them; keras_corpus/corpus.json names each package, file and the call that builds its
model; nothing of theirs is in this repository). Each file is read statically, with the call
appended as a user's script would make it, and the counts are compared with Keras' own
(keras_corpus/reference.json, written by running the same calls in Keras 3). `--run` runs here on
a script using the package static reading refuses.

Outcome of each entry: "exact" (counts equal Keras'), or the reason static reading refuses it, at a
line of the package's file (never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archspec.errors import SpecError
from archspec.interop import readers
from archspec.interop.keras_import import keras_models
from tests.interop.keras_build import corpus_text, installed_file

CORPUS = Path(__file__).parent / "keras_corpus"
FILES = json.loads((CORPUS / "corpus.json").read_text(encoding="utf-8"))["files"]
REFERENCE = json.loads((CORPUS / "reference.json").read_text(encoding="utf-8"))["models"]

EXACT = "exact"
# entry -> "exact", or (the refusal's message, the file it is shown in, relative to site-packages)
OUTCOMES = {
    "keras_app_vgg16": EXACT,
    "keras_app_resnet": EXACT,
    "keras_app_mobilenet": EXACT,
    "keras_app_mobilenet_v2": EXACT,
    "keras_app_mobilenet_v3": EXACT,
    "keras_app_densenet": EXACT,
    "keras_app_efficientnet": EXACT,
    "keras_app_inception_v3": EXACT,
    "keras_app_convnext": (
        "a `Normalization` with fixed `mean` and `variance`",
        "keras/src/applications/convnext.py",
    ),
    "keras_applications_resnext50": (
        "`Reshape` of 56x56x512 to (56, 56, 32, 4, 4) has no spec equivalent",
        "keras_applications/resnet_common.py",
    ),
    "keras_applications_xception": EXACT,
    "classifiers_resnet18": EXACT,
    "classifiers_seresnet18": EXACT,
    "classifiers_resnext50": EXACT,
    "efficientnet_b0": EXACT,
    "segmentation_models_unet": (
        "`os` is a module static reading does not open",
        "segmentation_models/__init__.py",
    ),
    "keras_unet_custom": (
        "`SpatialDropout2D` is not a Keras layer the spec language has",
        "keras_unet/models/custom_unet.py",
    ),
    "keras_unet_attention": EXACT,
    "keras_unet_vanilla": EXACT,
    "keras_unet_satellite": ("`output_padding=(1, 1)` has no spec equivalent", "keras_unet/models/satellite_unet.py"),
    "unet_collection_unet_2d": EXACT,
    "unet_collection_att_unet_2d": EXACT,
    "vggface_resnet50": EXACT,
    "vggface_senet50": EXACT,
    "mtcnn_pnet": ("`PReLU` is not a Keras layer the spec language has", "mtcnn/network/pnet.py"),
    "keras_vision_mobilevit": (
        "`Config_MobileViT_v1_S` is a plain class",
        "keras_vision/MobileViT_v1/configs.py",
    ),
}


def _shape(name: str) -> tuple[int, ...] | None:
    text = FILES[name].get("input")
    return tuple(int(d) for d in text.split("x")) if text else None


def test_the_corpus_is_the_manifest():
    assert sorted(OUTCOMES) == sorted(FILES) == sorted(REFERENCE)


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_static_reading(name):
    entry, expected = FILES[name], OUTCOMES[name]
    path = installed_file(entry)

    def read():
        models = keras_models(corpus_text(entry), str(path), _shape(name))
        return readers.compile_imported(models.read(entry.get("model", "model")))

    if expected == EXACT:
        typed = read()
        reference = REFERENCE[name]
        assert (typed.params, typed.trainable) == (reference["count_params"], reference["trainable"])
        assert list(typed.output_shape) == reference["output_shape"]
        return
    message, shown_in = expected
    with pytest.raises(SpecError) as caught:  # at a line of the package's code, never a traceback
        read()
    assert message in caught.value.message
    assert caught.value.span is not None and caught.value.source.name.endswith(shown_in)


@pytest.mark.slow  # runs a script with Keras in a subprocess
def test_run_reads_what_static_reading_refuses(tmp_path):
    """segmentation-models picks its Keras from the environment, through a factory class: a user's
    script importing it is read with `--run`, as Keras builds it (Keras 2 paths found in Keras 3)."""
    from archspec.interop.keras_run import read_run

    name = "segmentation_models_unet"
    script = tmp_path / "model.py"
    script.write_text(f"from segmentation_models import Unet\n\n{FILES[name]['call']}\n", encoding="utf-8")
    imported, keras_count = read_run(str(script))
    typed = readers.compile_imported(imported)
    reference = REFERENCE[name]
    assert keras_count == typed.params == reference["count_params"]
    assert typed.trainable == reference["trainable"] and list(typed.output_shape) == reference["output_shape"]


@pytest.mark.slow  # runs a script with Keras in a subprocess, twice
def test_run_goes_on_where_xla_lacks_a_quick_compile_flag(tmp_path, monkeypatch):
    """`--run` gives the child XLA flags that compile quickly; an XLA that does not know one stops at
    its start (a fatal error, not an exception), so the script runs again as XLA_FLAGS had it."""
    from archspec.interop import keras_run

    monkeypatch.setattr(keras_run, "QUICK_XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_no_such_flag=1")
    script = tmp_path / "model.py"
    script.write_text(
        "import keras\n\nmodel = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten()])\n",
        encoding="utf-8",
    )
    imported, keras_count = keras_run.read_run(str(script))
    assert keras_count == readers.compile_imported(imported).params == 3 * 3 * 3 * 4 + 4
