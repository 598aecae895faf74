"""Every Keras application, saved as a `.keras` file for the saved-model reader's tests: each is
built by Keras 3 (JAX backend) with `weights=None` at the smallest input it allows, and its
config.json is written exactly as `model.save` writes it (Keras' own serializer), without the
weights file, so the whole set stays small. counts.json holds Keras' `count_params()` of each.

    KERAS_BACKEND=jax python tests/interop/keras_applications/generate.py [NAME ...]   # rewrites both

Variants whose preprocessing the spec cannot say are saved twice: as Keras builds them by default
(the reader refuses them, naming the layer) and with `include_preprocessing=False`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).parent

# name -> (application, smallest input side, extra keyword arguments)
APPLICATIONS = {
    "VGG16": ("VGG16", 32, {}),
    "VGG16_224": ("VGG16", 224, {}),  # at its own input size: the Flatten + Dense head lint finds
    "VGG19": ("VGG19", 32, {}),
    "ResNet50": ("ResNet50", 32, {}),
    "ResNet101": ("ResNet101", 32, {}),
    "ResNet152": ("ResNet152", 32, {}),
    "ResNet50V2": ("ResNet50V2", 32, {}),
    "ResNet101V2": ("ResNet101V2", 32, {}),
    "ResNet152V2": ("ResNet152V2", 32, {}),
    "InceptionV3": ("InceptionV3", 75, {}),
    "InceptionResNetV2": ("InceptionResNetV2", 75, {}),
    "Xception": ("Xception", 71, {}),
    "MobileNet": ("MobileNet", 32, {}),
    "MobileNetV2": ("MobileNetV2", 32, {}),
    "MobileNetV3Small": ("MobileNetV3Small", 32, {}),
    "MobileNetV3Large": ("MobileNetV3Large", 32, {}),
    "DenseNet121": ("DenseNet121", 32, {}),
    "DenseNet169": ("DenseNet169", 32, {}),
    "DenseNet201": ("DenseNet201", 32, {}),
    "NASNetMobile": ("NASNetMobile", 32, {}),
    "NASNetLarge": ("NASNetLarge", 32, {}),
    **{f"EfficientNetB{i}": (f"EfficientNetB{i}", 32, {}) for i in range(8)},
    **{f"EfficientNetV2{v}": (f"EfficientNetV2{v}", 32, {}) for v in ("B0", "B1", "B2", "B3", "S", "M", "L")},
    **{
        f"EfficientNetV2{v}_no_preprocessing": (f"EfficientNetV2{v}", 32, {"include_preprocessing": False})
        for v in ("B0", "B1", "B2", "B3", "S", "M", "L")
    },
    **{f"ConvNeXt{v}": (f"ConvNeXt{v}", 32, {}) for v in ("Tiny", "Small", "Base", "Large", "XLarge")},
    **{
        f"ConvNeXt{v}_no_preprocessing": (f"ConvNeXt{v}", 32, {"include_preprocessing": False})
        for v in ("Tiny", "Small", "Base", "Large", "XLarge")
    },
}


def save_config(model, path: Path) -> None:
    import keras
    from keras.src.saving import serialization_lib

    config = json.dumps(serialization_lib.serialize_keras_object(model))
    metadata = json.dumps({"keras_version": keras.__version__})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("metadata.json", metadata)
        archive.writestr("config.json", config)


def main(names: list[str]) -> None:
    """Save the applications `names` (default: all) and record their counts with the others'."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    path = HERE / "counts.json"
    counts = json.loads(path.read_text(encoding="utf-8"))["applications"] if names and path.exists() else {}
    for name, (function, side, extra) in APPLICATIONS.items():
        if names and name not in names:
            continue
        keras.utils.clear_session()
        model = getattr(keras.applications, function)(weights=None, input_shape=(side, side, 3), **extra)
        save_config(model, HERE / f"{name}.keras")
        trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
        counts[name] = {"count_params": model.count_params(), "trainable": trainable, "input": side}
        print(name, counts[name]["count_params"], flush=True)
    about = "Written by generate.py (do not edit): Keras' count_params() of each application saved here."
    document = {"about": about, "keras": keras.__version__, "applications": dict(sorted(counts.items()))}
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
