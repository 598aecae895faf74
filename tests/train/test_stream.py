"""The streaming data path without training: `--data-memory` sizes, the mode choice, and a streamed
folder against the same folder loaded in memory (split, fingerprint, bad-file report, batches)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_images
from data_helpers import load_error, private_cache, save  # noqa: F401  (private_cache: autouse fixture)
from PIL import Image

from archspec.errors import DataError, UserError
from archspec.train.data import load_dataset
from archspec.train.data.stream import choose, folder_listing, parse_memory, stream_folder

SHAPE = (8, 8, 1)


def write_folder(root, count: int = 60, seed: int = 3):
    """PNGs of the tiny dataset's three classes, in class folders (as a user's folder would be)."""
    images, labels = make_images(count, seed)
    names = ("top", "middle", "bottom")
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        save(root / names[label] / f"{index:03d}.png", Image.fromarray(image))
    return root


def streamed(root, **options):
    settings = {"val_split": 0.1, "seed": 0, "skip_bad_files": False, **options}
    return stream_folder(str(root), folder_listing(str(root), SHAPE), SHAPE, **settings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2GB", 2 * 10**9),
        ("512MiB", 512 * 2**20),
        ("1.5g", 1_500_000_000),
        ("0", 0),
        ("1000000", 1_000_000),
        (" 64 kb ", 64_000),
        ("3TiB", 3 * 2**40),
    ],
)
def test_memory_sizes_in_decimal_and_binary_units(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "-1GB", "2 GiGs", "1e9", "GB", "2iB", ""])
def test_a_malformed_memory_size_is_a_user_error_that_quotes_it(text):
    with pytest.raises(UserError) as caught:
        parse_memory(text)
    assert f"`--data-memory` must be an amount of memory, got `{text}`" in caught.value.message
    assert "2GB" in caught.value.hint


def test_the_choice_compares_the_decoded_size_with_the_budget_and_says_so():
    # 23,262 images of 100x100x3 (Cats vs Dogs at the size the flatten-vs-pooling study used).
    big = choose(23_262, (100, 100, 3), 5 * 10**8, given=True)
    assert big.stream
    assert big.line == (
        "data: streaming 23,262 images from disk (decoded 665.53 MiB > budget 476.84 MiB, --data-memory)"
    )
    small = choose(1_797, (8, 8, 1), 10**9, given=False)
    assert not small.stream and small.line.startswith("data: 1,797 images in memory (decoded 112.31 KiB <= budget")
    assert small.line.endswith(", default)")
    assert choose(10, (8, 8, 1), 640, given=True).stream is False  # exactly the budget still fits
    assert choose(10, (8, 8, 1), 639, given=True).stream is True
    stuck = choose(10, (8, 8, 1), 0, given=True, streamable=False)
    assert not stuck.stream and "only folders, .npz files and hf: datasets are streamed" in stuck.line


def test_a_streamed_folder_has_the_in_memory_split_labels_and_fingerprint(tmp_path):
    root = write_folder(tmp_path / "bands")
    memory = load_dataset(str(root), SHAPE, val_split=0.1, seed=4)
    stream = streamed(root, seed=4)
    assert stream.fingerprint == memory.fingerprint
    assert stream.class_names == memory.class_names == ("bottom", "middle", "top")
    np.testing.assert_array_equal(stream.y_train, memory.y_train)
    np.testing.assert_array_equal(stream.y_val, memory.y_val)
    assert stream.x_train is None and stream.y_test is None and memory.y_test is None
    # Image by image, the sources decode exactly what the in-memory arrays hold.
    for split, pixels in (("train", memory.x_train), ("val", memory.x_val)):
        source = stream.sources[split]
        assert len(source) == len(pixels)
        for index in (0, len(source) // 2, len(source) - 1):
            image, label = source[index]
            assert image.dtype == np.uint8 and image.tobytes() == pixels[index].tobytes()
            assert label == getattr(memory, f"y_{split}")[index]
    # Another seed holds out other images, and the fingerprint says so.
    assert streamed(root, seed=5).fingerprint != stream.fingerprint


def test_a_streamed_folder_reports_the_same_bad_files_before_training(tmp_path):
    root = write_folder(tmp_path / "bands")
    (root / "top" / "notes.png").write_text("a note, not an image")
    (root / "middle" / "empty.jpg").write_bytes(b"")
    (root / "bottom" / "cut.png").write_bytes((root / "bottom" / "002.png").read_bytes()[:40])
    in_memory = load_error(root, SHAPE)
    with pytest.raises(DataError) as caught:
        streamed(root)
    assert caught.value.message == in_memory.message and caught.value.hint == in_memory.hint
    assert "3 files cannot be used" in caught.value.message

    # Skipped, they are left out of the same split as in memory.
    memory = load_dataset(str(root), SHAPE, val_split=0.1, seed=0, skip_bad_files=True)
    stream = streamed(root, skip_bad_files=True)
    assert stream.skipped == memory.skipped and len(stream.skipped) == 3
    assert stream.fingerprint == memory.fingerprint
    np.testing.assert_array_equal(stream.y_val, memory.y_val)


def test_the_pipeline_delivers_the_batches_the_in_memory_step_gathers(tmp_path):
    import jax

    from archspec.train import steps
    from archspec.train.data import pipeline

    root = write_folder(tmp_path / "bands")
    memory = load_dataset(str(root), SHAPE, val_split=0.1, seed=0)
    source = streamed(root).sources["train"]
    order = np.asarray(
        steps.epoch_order(jax.random.key(7), np.int32(2), num_examples=len(memory.y_train), steps=6, batch_size=8)
    )
    delivered = list(pipeline.batches(source, order))
    assert len(delivered) == 6
    for row, (images, labels) in zip(order, delivered, strict=True):
        assert images.tobytes() == memory.x_train[row].tobytes()
        assert labels.dtype == np.int32 and labels.tolist() == memory.y_train[row].tolist()

    # Resumed from the iterator's state after two batches: the remaining four, the same.
    iterator = pipeline.batches(source, order)
    next(iterator), next(iterator)
    resumed = list(pipeline.batches(source, order, state=iterator.get_state()))
    assert [labels.tolist() for _, labels in resumed] == [labels.tolist() for _, labels in delivered[2:]]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "`--data-memory` must be an amount of memory, got `lots`"),
        ("-2GB", "`--data-memory` must be an amount of memory, got `-2GB`"),
    ],
)
def test_train_refuses_a_malformed_data_memory_with_exit_2(cli, tmp_path, value, message):
    result = cli("train", "gap-head", "--data", "digits", "--data-memory", value, "--out", str(tmp_path / "run"))
    assert result.code == 2
    assert message in result.err and "hint: give a size such as 2GB" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "run").exists()


@pytest.mark.slow  # starts Grain worker processes, each importing JAX
def test_worker_processes_deliver_the_same_batches_as_threads(tmp_path):
    import jax

    from archspec.train import steps
    from archspec.train.data import pipeline

    source = streamed(write_folder(tmp_path / "bands")).sources["train"]
    order = np.asarray(
        steps.epoch_order(jax.random.key(1), np.int32(0), num_examples=len(source), steps=6, batch_size=8)
    )
    threads = list(pipeline.batches(source, order))
    iterator = pipeline.batches(source, order, workers=2)
    try:
        processes = list(iterator)
    finally:
        pipeline.close(iterator)
    assert len(processes) == len(threads) == 6
    for (x, y), (x_mp, y_mp) in zip(threads, processes, strict=True):
        assert x.tobytes() == x_mp.tobytes() and y.tolist() == y_mp.tolist()


class ArraySource:
    """Images held in arrays, as another kind of source (a hub dataset) would give them."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], int(self.labels[index])


def test_any_random_access_source_streams_with_the_in_memory_fingerprint():
    from archspec.train.data.dataset import assemble
    from archspec.train.data.stream import streamed_from_sources

    images, labels = make_images(40, seed=9)
    images = images[..., np.newaxis]
    test_images, test_labels = make_images(12, seed=10)
    names = ("top", "middle", "bottom")
    sources = {"train": ArraySource(images, labels), "test": ArraySource(test_images[..., np.newaxis], test_labels)}
    stream = streamed_from_sources("arrays", sources, names, val_split=0.2, seed=1)
    memory = assemble(
        "arrays",
        names,
        (images, labels.astype(np.int32)),
        None,
        (test_images[..., np.newaxis], test_labels.astype(np.int32)),
        val_split=0.2,
        seed=1,
    )
    assert stream.fingerprint == memory.fingerprint
    np.testing.assert_array_equal(stream.y_val, memory.y_val)
    image, label = stream.sources["val"][3]
    assert image.tobytes() == memory.x_val[3].tobytes() and label == memory.y_val[3]


def test_the_up_front_read_of_a_streamed_folder_reports_its_progress(tmp_path):
    write_folder(tmp_path / "data", count=150)
    seen = []
    streamed(tmp_path / "data", progress=lambda stage, done, total: seen.append((stage, done, total)))
    # Hashed for the check's cache key, then every image read once.
    assert [stage for stage, _, _ in seen] == sorted(stage for stage, _, _ in seen)
    assert {stage for stage, _, _ in seen} == {"hashing", "reading"} and seen[-1] == ("reading", 150, 150)
    read = [done for stage, done, _ in seen if stage == "reading"]
    assert read == sorted(read) and len(read) >= 2


def test_an_unchanged_folder_is_not_read_again_before_the_next_streamed_run(tmp_path, monkeypatch):
    from archspec.train.data.stream import FolderSource

    root = write_folder(tmp_path / "bands")
    (root / "top" / "notes.png").write_text("a note, not an image")
    first = streamed(root, skip_bad_files=True)
    decoded = []
    real_decode = FolderSource.decode
    monkeypatch.setattr(FolderSource, "decode", lambda self, index: decoded.append(index) or real_decode(self, index))
    stages = []
    again = streamed(root, skip_bad_files=True, progress=lambda stage, *_: stages.append(stage))
    assert decoded == [] and set(stages) == {"hashing"}  # the files hashed, none decoded
    assert (again.fingerprint, again.skipped) == (first.fingerprint, first.skipped) and len(again.skipped) == 1
    np.testing.assert_array_equal(again.y_val, first.y_val)
    with pytest.raises(DataError) as caught:  # the same report from the remembered check
        streamed(root)
    assert "top/notes.png: " in caught.value.message and decoded == []

    # One file changed: the folder is checked again, and the fingerprint follows the new pixels.
    save(root / "top" / "notes.png", Image.fromarray(np.full((8, 8), 7, dtype=np.uint8)))
    changed = streamed(root)
    assert decoded and changed.skipped == () and changed.fingerprint != first.fingerprint
    assert changed.fingerprint == load_dataset(str(root), SHAPE, val_split=0.1, seed=0).fingerprint


@pytest.mark.parametrize(
    "images",
    [
        lambda rng: rng.integers(0, 256, (40, 12, 10), dtype=np.uint8),  # (N, H, W): gray, resized
        lambda rng: rng.random((40, 8, 8, 3)).astype(np.float32),  # floats in 0..1, scaled by 255
        lambda rng: np.asfortranarray(rng.integers(0, 256, (40, 8, 8, 1)).astype(np.int64)),  # wide, Fortran order
    ],
    ids=["uint8-gray-resized", "float-0-1", "int64-fortran"],
)
def test_a_streamed_npz_holds_what_load_npz_holds(tmp_path, images):
    from data_helpers import write_npz

    from archspec.train.data import pipeline
    from archspec.train.data.npz_stream import stream_npz

    rng = np.random.default_rng(4)
    x, y = images(rng), np.arange(40) % 3
    path = write_npz(
        tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:9], y_test=y[:9], class_names=np.array(["a", "b", "c"])
    )
    memory = load_dataset(str(path), SHAPE, val_split=0.2, seed=1)
    streamed = stream_npz(str(path), path, SHAPE, val_split=0.2, seed=1)
    assert streamed.fingerprint == memory.fingerprint and streamed.class_names == memory.class_names
    for split in ("train", "val", "test"):
        labels = getattr(memory, f"y_{split}")
        np.testing.assert_array_equal(getattr(streamed, f"y_{split}"), labels)
        rows = np.arange(len(labels))[None]
        read = list(pipeline.batches(streamed.sources[split], rows, workers=0))
        np.testing.assert_array_equal(read[0][0], getattr(memory, f"x_{split}"))


def test_an_npz_whose_arrays_cannot_stream_says_why(tmp_path):
    from archspec.train.data.npz_stream import stream_npz

    x, y = np.zeros((6, 8, 8), dtype=np.uint8), np.arange(6) % 2
    path = tmp_path / "small.npz"
    np.savez_compressed(path, x_train=x, y_train=y)
    with pytest.raises(DataError) as caught:
        stream_npz(str(path), path, SHAPE, val_split=0, seed=0)
    assert caught.value.message.startswith("array `x_train` is compressed, so it cannot be streamed")
    assert "np.savez (not np.savez_compressed)" in caught.value.hint

    np.savez(path, x_train=np.full((6, 8, 8), 300, dtype=np.int16), y_train=y)  # checked as in memory
    with pytest.raises(DataError) as caught:
        stream_npz(str(path), path, SHAPE, val_split=0, seed=0)
    assert caught.value.message == load_error(path, SHAPE).message
