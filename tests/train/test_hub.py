"""`--data hf:NAME[:CONFIG]` through Hugging Face `datasets`, offline: its `imagefolder` builder on folders
made here and `save_to_disk` folders of datasets built here, against `--data FOLDER` on the same images."""

from __future__ import annotations

import http.server
import io
import json
import pickle
import sys
import threading

import numpy as np
import pytest
from conftest import cnn_arch, subprocess_env
from data_helpers import noise_rgb, private_cache, save  # noqa: F401 (private_cache: an autouse fixture)
from PIL import Image

from archspec.errors import DataError
from archspec.train.data import load_dataset, memory
from archspec.train.data.hub import HubSource, open_hub, parse_hub_source

SHAPE = (12, 12, 3)


@pytest.fixture(autouse=True)
def hf_home(tmp_path, monkeypatch):
    """Point the Hugging Face caches into tmp_path, offline: `datasets` reads the environment once, at import."""
    import datasets
    import huggingface_hub

    home = tmp_path / "hf"
    for name, value in {
        "HF_HOME": str(home),
        "HF_DATASETS_CACHE": str(home / "datasets"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return home


def make_pets(root, splits=("train", "val", "test"), counts=(4, 3)):
    """Class folders cats/ and dogs/ (under each split folder, or directly without `splits`) of images in
    several sizes and modes: RGB noise, grayscale, a palette PNG, a JPEG with an EXIF rotation."""
    for split in splits or ("",):
        for label, (name, count) in enumerate(zip(("cats", "dogs"), counts)):
            for index in range(count):
                seed = 100 * len(split) + 10 * label + index
                image = noise_rgb(seed, size=20 + 3 * index)
                folder = root / split / name if split else root / name
                if index % 4 == 1:
                    save(folder / f"{index:02d}.png", image.convert("L"))
                elif index % 4 == 2:
                    save(folder / f"{index:02d}.png", image.convert("P", palette=Image.Palette.ADAPTIVE))
                elif index % 4 == 3:
                    exif = Image.Exif()
                    exif[0x0112] = 6  # rotated 90 degrees: decoding must turn it upright
                    save(folder / f"{index:02d}.jpg", image.resize((30, 20)), exif=exif.tobytes())
                else:
                    save(folder / f"{index:02d}.png", image)
    return root


def assert_same_data(hub, folder):
    assert hub.class_names == folder.class_names
    for split in ("train", "val", "test"):
        x_hub, x_folder = getattr(hub, f"x_{split}"), getattr(folder, f"x_{split}")
        assert (x_hub is None) == (x_folder is None), split
        if x_hub is not None:
            assert x_hub.dtype == np.uint8 and x_hub.shape == x_folder.shape, split
            assert np.array_equal(x_hub, x_folder), split
            assert np.array_equal(getattr(hub, f"y_{split}"), getattr(folder, f"y_{split}")), split


def test_an_image_folder_with_splits_loads_as_the_same_folder_does(tmp_path, hf_home):
    root = make_pets(tmp_path / "pets")
    hub = load_dataset(f"hf:{root}", SHAPE)
    folder = load_dataset(str(root), SHAPE)
    assert hub.class_names == ("cats", "dogs")
    assert [len(hub.y_train), len(hub.y_val), len(hub.y_test)] == [7, 7, 7]
    assert_same_data(hub, folder)
    assert hub.source == f"hf:{root}"
    assert any((hf_home / "datasets").iterdir())  # the cache went where the test said, not to ~/.cache


@pytest.mark.parametrize("shape", [(9, 14, 1), (12, 12, 4)])
def test_validation_is_held_out_as_for_a_folder_and_images_fit_any_input(tmp_path, shape):
    root = make_pets(tmp_path / "pets", splits=None, counts=(10, 6))
    hub = load_dataset(f"hf:{root}", shape, val_split=0.25, seed=3)
    folder = load_dataset(str(root), shape, val_split=0.25, seed=3)
    assert [len(hub.y_train), len(hub.y_val), hub.x_test] == [12, 4, None]
    assert hub.x_train.shape[1:] == shape
    assert_same_data(hub, folder)
    other_seed = load_dataset(f"hf:{root}", shape, val_split=0.25, seed=4)
    assert not np.array_equal(other_seed.x_val, hub.x_val)
    assert other_seed.fingerprint != hub.fingerprint


def test_streaming_sources_give_the_in_memory_images_and_survive_pickling(tmp_path):
    root = make_pets(tmp_path / "pets", splits=None, counts=(10, 6))
    hub = open_hub(f"hf:{root}", SHAPE, val_split=0.25, seed=3)
    loaded = load_dataset(f"hf:{root}", SHAPE, val_split=0.25, seed=3)
    assert hub.fingerprint == loaded.fingerprint and hub.class_names == loaded.class_names
    for split, x, y in (("train", loaded.x_train, loaded.y_train), ("val", loaded.x_val, loaded.y_val)):
        source = pickle.loads(pickle.dumps(getattr(hub, split)))  # as a worker process receives it
        assert isinstance(source, HubSource) and len(source) == len(y)
        items = [source[i] for i in range(len(source))]
        assert np.array_equal(np.stack([image for image, _ in items]), x)
        assert [label for _, label in items] == y.tolist()
    assert hub.test is None


def test_the_fingerprint_follows_the_files_and_the_input_shape(tmp_path):
    root = make_pets(tmp_path / "pets", splits=None)
    first = load_dataset(f"hf:{root}", SHAPE).fingerprint
    assert load_dataset(f"hf:{root}", SHAPE).fingerprint == first
    assert load_dataset(f"hf:{root}", (10, 10, 3)).fingerprint != first
    save(root / "cats" / "00.png", noise_rgb(999, size=20))
    changed = load_dataset(f"hf:{root}", SHAPE)
    assert changed.fingerprint != first


def image_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_to_disk(path, splits, features):
    """A DatasetDict of `splits` ({name: {column: values}}) saved as `datasets` saves one."""
    import datasets

    built = datasets.DatasetDict(
        {
            name: datasets.Dataset.from_dict(columns, features=datasets.Features(features))
            for name, columns in splits.items()
        }
    )
    built.save_to_disk(str(path))
    return path


def image_rows(count, seed=0):
    return [{"bytes": image_bytes(noise_rgb(seed + index, size=16)), "path": None} for index in range(count)]


def test_a_saved_dataset_keeps_its_class_names_and_its_test_split_and_drops_an_unlabelled_one(tmp_path):
    import datasets

    names = ["zebra", "ant", "moth"]  # not sorted: the names are the dataset's, in its order
    features = {"img": datasets.Image(), "fine": datasets.ClassLabel(names=names), "note": datasets.Value("string")}
    labels = [0, 1, 2] * 4
    path = save_to_disk(
        tmp_path / "saved",
        {
            "train": {"img": image_rows(12), "fine": labels, "note": ["x"] * 12},
            "test": {"img": image_rows(3, seed=50), "fine": [2, 0, 1], "note": ["y"] * 3},
            "unsupervised": {"img": image_rows(2, seed=80), "fine": [-1, -1], "note": ["z"] * 2},
        },
        features,
    )
    loaded = load_dataset(f"hf:{path}", (16, 16, 3), val_split=0.25)
    assert loaded.class_names == ("zebra", "ant", "moth")
    assert [len(loaded.y_train), len(loaded.y_val), len(loaded.y_test)] == [9, 3, 3]
    assert sorted(loaded.y_val.tolist()) == [0, 1, 2]  # stratified
    assert loaded.y_test.tolist() == [2, 0, 1]
    expected_test = np.stack([np.asarray(noise_rgb(50 + index, size=16)) for index in range(3)])
    assert np.array_equal(loaded.x_test, expected_test)

    no_test_labels = save_to_disk(
        tmp_path / "unlabelled-test",
        {
            "train": {"img": image_rows(6), "fine": [0, 1, 2] * 2, "note": ["x"] * 6},
            "test": {"img": image_rows(2), "fine": [-1, -1], "note": ["y"] * 2},
        },
        features,
    )
    assert load_dataset(f"hf:{no_test_labels}", (16, 16, 3), val_split=0).x_test is None


def test_the_files_of_a_hub_dataset_as_downloaded_load_from_their_folder(tmp_path):
    """`hf download NAME --repo-type dataset --local-dir FOLDER` gives data/<split>-*.parquet, whose schema
    carries the features (the class names): that folder is the local copy a machine without network uses."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "labels": datasets.ClassLabel(names=["cat", "dog"])})
    folder = tmp_path / "cats_vs_dogs"
    (folder / "data").mkdir(parents=True)
    for split, count, seed in (("train", 8, 0), ("test", 4, 40)):
        rows = {"image": image_rows(count, seed=seed), "labels": [0, 1] * (count // 2)}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(
            folder / "data" / f"{split}-00000-of-00001.parquet"
        )
    loaded = load_dataset(f"hf:{folder}", (16, 16, 3), val_split=0.25)
    assert loaded.class_names == ("cat", "dog")
    assert [len(loaded.y_train), len(loaded.y_val), len(loaded.y_test)] == [6, 2, 4]
    expected_test = np.stack([np.asarray(noise_rgb(40 + index, size=16)) for index in range(4)])
    assert np.array_equal(loaded.x_test, expected_test) and loaded.y_test.tolist() == [0, 1, 0, 1]


def test_bad_images_are_reported_together_or_skipped(tmp_path):
    import datasets

    rows = image_rows(6)
    rows[1] = {"bytes": b"not an image, a note", "path": None}
    rows[4] = {"bytes": b"", "path": None}
    features = {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])}
    path = save_to_disk(tmp_path / "saved", {"train": {"image": rows, "label": [0, 1] * 3}}, features)
    with pytest.raises(DataError) as caught:
        load_dataset(f"hf:{path}", (16, 16, 3), val_split=0)
    assert caught.value.message.splitlines() == [
        "2 images cannot be used:",
        "  train[1]: holds text, not image data",
        "  train[4]: empty file (0 bytes)",
    ]
    assert "--skip-bad-files" in caught.value.hint
    loaded = load_dataset(f"hf:{path}", (16, 16, 3), val_split=0, skip_bad_files=True)
    assert loaded.y_train.tolist() == [0, 0, 1, 1]  # rows 0, 2, 3 and 5
    assert loaded.skipped == ("train[1]: holds text, not image data", "train[4]: empty file (0 bytes)")
    source = open_hub(f"hf:{path}", (16, 16, 3), val_split=0, seed=0).train
    with pytest.raises(DataError, match=r"train\[1\]: holds text"):
        source[1]


@pytest.mark.parametrize(
    ("features", "columns", "message"),
    [
        (
            {"picture": "image", "kind": "int"},
            {"picture": 4, "kind": [0, 1, 0, 1]},
            "has no label column (a `datasets.ClassLabel` feature); its columns: `picture` (Image), `kind` (Value int64)",
        ),
        (
            {"left": "image", "right": "image", "label": "class"},
            {"left": 4, "right": 4, "label": [0, 1, 0, 1]},
            "has 2 Image columns (left, right) and none is named `image`; its columns: `left` (Image), "
            "`right` (Image), `label` (ClassLabel of 2 classes)",
        ),
        (
            {"image": "image", "fine_label": "class", "coarse_label": "class"},
            {"image": 4, "fine_label": [0, 1, 0, 1], "coarse_label": [1, 0, 1, 0]},
            "has 2 ClassLabel columns (fine_label, coarse_label) and none is named `label`",
        ),
    ],
)
def test_a_missing_or_ambiguous_column_is_named_with_every_column(tmp_path, features, columns, message):
    import datasets

    kinds = {"image": datasets.Image(), "int": datasets.Value("int64"), "class": datasets.ClassLabel(names=["a", "b"])}
    values = {name: image_rows(value) if isinstance(value, int) else value for name, value in columns.items()}
    path = save_to_disk(tmp_path / "saved", {"train": values}, {name: kinds[kind] for name, kind in features.items()})
    with pytest.raises(DataError) as caught:
        load_dataset(f"hf:{path}", (16, 16, 3))
    assert message in caught.value.message


def test_a_dataset_without_a_train_split_names_its_splits(tmp_path):
    import datasets

    features = {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])}
    path = save_to_disk(tmp_path / "saved", {"test": {"image": image_rows(2), "label": [0, 1]}}, features)
    with pytest.raises(DataError, match=r"has no `train` split \(its splits: test\)"):
        load_dataset(f"hf:{path}", (16, 16, 3))


def test_an_unreachable_hub_dataset_is_one_clear_error_through_the_cli(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("train", "gap-head", "--input", "16x16x3", "--data", "hf:microsoft/cats_vs_dogs")
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert lines[0] == (
        "hf:microsoft/cats_vs_dogs: error: cannot load `microsoft/cats_vs_dogs` from the Hugging Face hub: offline "
        f"mode is on (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE), and no copy is cached in {tmp_path / 'hf' / 'datasets'}"
    )
    assert lines[1].startswith(
        "hint: with no network, point at a local copy: a folder of class folders (`--data FOLDER`)"
    )
    assert "`--data hf:FOLDER`" in lines[1] and "HF_DATASETS_OFFLINE=1" in lines[1]


def test_hub_source_names_read_as_load_dataset_arguments(tmp_path, monkeypatch):
    assert parse_hub_source("hf:mnist") == ("mnist", None)
    assert parse_hub_source("hf:microsoft/cats_vs_dogs") == ("microsoft/cats_vs_dogs", None)
    assert parse_hub_source("hf:ylecun/mnist:mnist") == ("ylecun/mnist", "mnist")
    folder = tmp_path / "pets:2024"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    assert parse_hub_source("hf:pets:2024") == ("pets:2024", None)  # an existing folder is taken whole
    with pytest.raises(DataError) as caught:
        load_dataset("hf:", SHAPE)
    assert caught.value.render().startswith("hf:: error: names no dataset\nhint: write `hf:NAME`")


def test_without_the_datasets_package_the_error_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # what `import datasets` sees when it is not installed
    with pytest.raises(DataError) as caught:
        load_dataset("hf:mnist", SHAPE)
    assert caught.value.message == "hub datasets need the `datasets` package, which is not installed"
    assert caught.value.hint == "install it with `pip install 'cnn-arch[hf]'`"


def test_a_dataset_larger_than_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    root = make_pets(tmp_path / "pets", splits=None)
    monkeypatch.setattr(memory, "available_host_memory", lambda: 1000)
    with pytest.raises(DataError, match=r"the decoded dataset would take .* \(7 images of 12x12x3\), more than"):
        load_dataset(f"hf:{root}", SHAPE)


@pytest.mark.slow
def test_cnn_arch_trains_an_epoch_on_a_hub_image_folder(tmp_path):
    root = make_pets(tmp_path / "pets", splits=("train", "test"), counts=(8, 8))
    home = tmp_path / "hf-subprocess"
    env = subprocess_env(
        HF_HOME=str(home),
        HF_DATASETS_CACHE=str(home / "datasets"),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        CNN_ARCH_CACHE_DIR=str(tmp_path / "cache"),
    )
    run = tmp_path / "run"
    spec = tmp_path / "pets.arch"
    spec.write_text("input 16x16x3\nconv 8 3 relu\nbn\ngap\ndense 2 softmax\n")
    process = cnn_arch(
        "train", str(spec), "--input", "16x16x3", "--data", f"hf:{root}", "--epochs", "1", "--batch-size", "8",
        "--out", str(run), "--summary", "none", env=env,
    )  # fmt: skip
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "14 train / 2 val / 16 test images, 2 classes" in out
    saved = json.loads((run / "config.json").read_text())
    assert saved["data"]["source"] == f"hf:{root}" and saved["data"]["class_names"] == ["cats", "dogs"]
    assert saved["data"]["fingerprint"] == open_hub(f"hf:{root}", (16, 16, 3), val_split=0.1, seed=0).fingerprint
    assert any((home / "datasets").iterdir())


def go_online(monkeypatch, endpoint):
    """Online mode, with datasets asking `endpoint` instead of the hub."""
    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", endpoint)


def test_a_hub_that_does_not_answer_is_one_clear_error(monkeypatch, tmp_path, caplog):
    import huggingface_hub

    waits = []
    go_online(monkeypatch, "http://127.0.0.1:9")  # a port where nothing listens: a machine without network
    # huggingface_hub's back-off between its 5 retries (23 s in all), recorded instead of waited for
    monkeypatch.setattr(huggingface_hub.utils._http.time, "sleep", waits.append)
    with pytest.raises(DataError) as caught:
        load_dataset("hf:mnist", SHAPE)
    assert caught.value.message == (
        "cannot load `mnist` from the Hugging Face hub: http://127.0.0.1:9 did not answer (Couldn't reach 'mnist' "
        f"on the Hub (LocalEntryNotFoundError)), and no copy is cached in {tmp_path / 'hf' / 'datasets'}"
    )
    assert len(waits) == 5
    assert "requesting HEAD http://127.0.0.1:9/datasets/mnist/" in caplog.text  # the address it was told


class _HubRefusal(http.server.BaseHTTPRequestHandler):
    """Answers every request as the hub answers one for a gated or a missing repository (its X-Error-Code)."""

    status, error_code = 401, "GatedRepo"

    def do_HEAD(self):
        self.send_response(self.status)
        self.send_header("X-Error-Code", self.error_code)
        self.send_header("X-Error-Message", "Access to this dataset is restricted")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("status", "error_code", "message", "hint"),
    [
        (
            401,
            "GatedRepo",
            "`datasets` cannot load `someone/faces`: Dataset 'someone/faces' is a gated dataset on the Hub. "
            "You must be authenticated to access it.",
            "log in (`hf auth login`, or set HF_TOKEN) and accept its terms on its hub page; or, with no network",
        ),
        (
            404,
            "RepoNotFound",
            "`datasets` cannot load `someone/faces`: Dataset 'someone/faces' doesn't exist on the Hub or cannot be "
            "accessed.",
            "with no network, point at a local copy",
        ),
    ],
)
def test_a_gated_or_unknown_hub_dataset_is_one_clear_error(monkeypatch, status, error_code, message, hint):
    handler = type("Refusal", (_HubRefusal,), {"status": status, "error_code": error_code})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        go_online(monkeypatch, f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(DataError) as caught:
            load_dataset("hf:someone/faces", SHAPE)
    finally:
        server.shutdown()
        thread.join()
    assert caught.value.message == message
    assert caught.value.hint.startswith(hint)


@pytest.mark.slow  # trains twice
def test_a_streamed_hub_dataset_trains_bitwise_the_in_memory_model(tmp_path, tiny_config):
    import dataclasses

    from conftest import TINY_SPEC, assert_bitwise_equal, plain

    from archspec.train.loop import train_and_evaluate

    root = make_pets(tmp_path / "pets", splits=("train", "test"), counts=(10, 8))
    config = tiny_config(
        data=f"hf:{root}", spec_text=TINY_SPEC.replace("dense 3", "dense 2"), epochs=2, batch_size=4, val_split=0.25
    )
    memory_run = train_and_evaluate(config, tmp_path / "memory")
    streamed_run = train_and_evaluate(dataclasses.replace(config, data_memory=0), tmp_path / "streamed")
    assert_bitwise_equal(plain(memory_run.state), plain(streamed_run.state))
    assert memory_run.results == streamed_run.results
    saved = [json.loads((tmp_path / name / "config.json").read_text()) for name in ("memory", "streamed")]
    assert saved[0]["data"] == saved[1]["data"]


@pytest.mark.slow  # builds a streamed dataset through the training set-up
def test_a_streamed_hub_dataset_reports_and_skips_bad_images_as_in_memory(tmp_path, tiny_config):
    import datasets

    from archspec.train.data import stream
    from archspec.train.data.hub import open_hub

    rows = image_rows(6)
    rows[1] = {"bytes": b"not an image, a note", "path": None}
    features = {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])}
    path = save_to_disk(tmp_path / "saved", {"train": {"image": rows, "label": [0, 1] * 3}}, features)
    hub = open_hub(f"hf:{path}", (16, 16, 3), val_split=0, seed=0)
    with pytest.raises(DataError) as caught:
        stream.stream_hub(hub, skip_bad_files=False)
    assert caught.value.message.splitlines() == ["1 image cannot be used:", "  train[1]: holds text, not image data"]
    streamed = stream.stream_hub(hub, skip_bad_files=True)
    in_memory = load_dataset(f"hf:{path}", (16, 16, 3), val_split=0, skip_bad_files=True)
    assert streamed.y_train.tolist() == in_memory.y_train.tolist() == [0, 0, 1, 0, 1]  # rows 0, 2, 3, 4 and 5
    assert streamed.skipped == in_memory.skipped
    assert streamed.fingerprint == in_memory.fingerprint
    assert np.array_equal(np.stack([streamed.sources["train"][i][0] for i in range(5)]), in_memory.x_train)
