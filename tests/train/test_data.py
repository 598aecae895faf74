"""Tests for archspec.train.data: the digits source, the choice of source, input shapes, the memory
check and check_fits. All image data is generated; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_helpers import (
    load_error,
    make_classes,
    private_cache,  # noqa: F401  (autouse: keeps the cache out of the home folder)
    write_npz,
)

from archspec.errors import DataError, UserError
from archspec.train.data import Dataset, available_host_memory, dataset, images, load_dataset, memory
from archspec.train.outputs import check_fits


@pytest.fixture(scope="module")
def digits_gray():
    return load_dataset("digits", (8, 8, 1), val_split=0.1, seed=0)


# --- digits -------------------------------------------------------------------------------------


def test_digits_splits_have_fixed_sizes_dtypes_and_class_names(digits_gray):
    assert digits_gray.x_train.shape == (1294, 8, 8, 1)
    assert digits_gray.x_val.shape == (144, 8, 8, 1)
    assert digits_gray.x_test.shape == (359, 8, 8, 1)
    assert digits_gray.x_train.dtype == np.uint8 and digits_gray.y_train.dtype == np.int32
    assert digits_gray.class_names == tuple("0123456789")
    assert digits_gray.num_classes == 10
    assert digits_gray.source == "digits" and digits_gray.skipped == ()
    assert digits_gray.x_train.max() == 255 and digits_gray.x_train.min() == 0


def test_digits_values_are_the_sklearn_images_scaled_to_0_255(digits_gray):
    from sklearn.datasets import load_digits

    original = load_digits()
    splits = (digits_gray.x_train, digits_gray.x_val, digits_gray.x_test)
    all_images = np.concatenate(splits)[..., 0]
    expected = np.rint(original.images * 255 / 16).astype(np.uint8)
    # The splits reorder the images; as a multiset they are exactly the scaled originals.
    assert sorted(map(bytes, all_images)) == sorted(map(bytes, expected))


def test_digits_test_split_is_stratified_and_independent_of_seed(digits_gray):
    other_seed = load_dataset("digits", (8, 8, 1), seed=7)
    np.testing.assert_array_equal(other_seed.x_test, digits_gray.x_test)
    assert not np.array_equal(other_seed.y_val, digits_gray.y_val)
    assert other_seed.fingerprint != digits_gray.fingerprint
    totals = np.bincount(np.concatenate([digits_gray.y_train, digits_gray.y_val, digits_gray.y_test]), minlength=10)
    assert np.all(np.abs(np.bincount(digits_gray.y_test, minlength=10) - 0.2 * totals) <= 1)
    remaining = totals - np.bincount(digits_gray.y_test, minlength=10)
    assert np.all(np.abs(np.bincount(digits_gray.y_val, minlength=10) - 0.1 * remaining) <= 1)


def test_digits_same_seed_gives_same_data_and_fingerprint(digits_gray):
    again = load_dataset("digits", (8, 8, 1), seed=0)
    np.testing.assert_array_equal(again.x_val, digits_gray.x_val)
    assert again.fingerprint == digits_gray.fingerprint


def test_digits_resized_and_replicated_to_rgb_and_rgba():
    rgb = load_dataset("digits", (20, 24, 3), val_split=0)
    assert rgb.x_train.shape == (1438, 20, 24, 3) and rgb.x_val is None
    assert np.array_equal(rgb.x_train[..., 0], rgb.x_train[..., 2])
    rgba = load_dataset("digits", (8, 8, 4), val_split=0)
    assert np.all(rgba.x_train[..., 3] == 255)
    assert np.array_equal(rgba.x_train[..., 0], rgba.x_train[..., 1])


# --- sources and shapes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((0, 28, 1), "cannot resize images to `input 0x28x1`: height and width must be at least 1"),
        ((28, 0, 3), "cannot resize images to `input 28x0x3`: height and width must be at least 1"),
        ((8, 8, 2), "cannot convert images to `input 8x8x2`: 2 channels is not an image format"),
        ((9, 9, 5), "cannot convert images to `input 9x9x5`: 5 channels is not an image format"),
    ],
)
def test_input_shapes_images_cannot_fit(shape, message):
    error = load_error("digits", shape)
    assert error.message == message


def test_unknown_sources_list_the_accepted_forms(tmp_path):
    (tmp_path / "labels.csv").write_text("a,b\n")
    missing = load_error("mnist")
    assert missing.message == "no such file or folder, and not a built-in dataset"
    assert missing.path == "mnist"
    wrong_kind = load_error(tmp_path / "labels.csv")
    assert wrong_kind.message == "is neither a folder nor a .npz file"
    for error in (missing, wrong_kind):
        assert "`digits`" in error.hint and "folder" in error.hint and ".npz" in error.hint


@pytest.mark.parametrize("val_split", [-0.1, 1.0])
def test_val_split_out_of_range_is_a_user_error(val_split):
    with pytest.raises(UserError, match=r"`--val-split` \(=.*\) must be at least 0 and below 1"):
        load_dataset("digits", (8, 8, 1), val_split=val_split)


# --- the host's memory ---------------------------------------------------------------------------


def fake_host(tmp_path: Path, monkeypatch, meminfo: str, cgroup: dict[str, str]) -> None:
    """Point the memory module at a /proc/meminfo and a /sys/fs/cgroup made of these texts."""
    (tmp_path / "meminfo").write_text(meminfo)
    for name, text in cgroup.items():
        (tmp_path / "cgroup" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "cgroup" / name).write_text(text)
    monkeypatch.setattr(memory, "PROC_MEMINFO", tmp_path / "meminfo")
    monkeypatch.setattr(memory, "CGROUP_ROOT", tmp_path / "cgroup")


MEMINFO = "MemTotal:       16384 kB\nMemFree:         1024 kB\nMemAvailable:    8192 kB\n"


@pytest.mark.parametrize(
    ("cgroup", "expected"),
    [
        ({}, 8192 * 1024),
        # cgroup v2: limit - usage + reclaimable page cache, when that is below MemAvailable.
        (
            {"memory.max": "4000000\n", "memory.current": "3000000\n", "memory.stat": "anon 9\ninactive_file 500\n"},
            1_000_500,
        ),
        ({"memory.max": "max\n", "memory.current": "3000000\n"}, 8192 * 1024),
        ({"memory.max": "99000000\n", "memory.current": "0\n"}, 8192 * 1024),
        # cgroup v1, and its "no limit" of nearly 2**63.
        (
            {
                "memory/memory.limit_in_bytes": "2000000\n",
                "memory/memory.usage_in_bytes": "1500000\n",
                "memory/memory.stat": "cache 7\ntotal_inactive_file 100\n",
            },
            500_100,
        ),
        (
            {"memory/memory.limit_in_bytes": "9223372036854771712\n", "memory/memory.usage_in_bytes": "1\n"},
            8192 * 1024,
        ),
    ],
    ids=["meminfo only", "v2 limit", "v2 no limit", "v2 limit above", "v1 limit", "v1 no limit"],
)
def test_available_host_memory_is_meminfo_lowered_by_a_cgroup_limit(tmp_path, monkeypatch, cgroup, expected):
    fake_host(tmp_path, monkeypatch, MEMINFO, cgroup)
    assert available_host_memory() == expected


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="/proc/meminfo is Linux's")
def test_available_host_memory_of_this_host_is_at_most_its_total():
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    assert 0 < available_host_memory() <= total_kib * 1024


def limit_memory(monkeypatch, available: int) -> None:
    monkeypatch.setattr(memory, "available_host_memory", lambda: available)


def test_digits_at_9999x9999x3_are_refused_with_the_numbers(monkeypatch):
    import sklearn.datasets

    monkeypatch.setattr(sklearn.datasets, "load_digits", lambda: pytest.fail("the digits were loaded"))
    limit_memory(monkeypatch, int(21.4 * 2**30))
    error = load_error("digits", (9999, 9999, 3))
    assert error.path == "digits"
    assert error.message == (
        "the decoded dataset would take 501.98 GiB (1,797 images of 9999x9999x3), "
        "more than the 21.40 GiB of memory available"
    )
    assert error.hint == "use a smaller --input (or `input` line in the spec), or fewer images"


def test_digits_at_9999x9999x3_are_refused_on_this_host():
    with pytest.raises(DataError, match=r"^the decoded dataset would take 501\.98 GiB .* GiB of memory available$"):
        load_dataset("digits", (9999, 9999, 3))


def test_running_out_of_memory_anyway_is_a_data_error(monkeypatch):
    # A host that does not say how much memory it has, and an allocation that fails.
    limit_memory(monkeypatch, None)

    def no_memory(*args):
        raise MemoryError

    monkeypatch.setattr(dataset, "fit_images", no_memory)
    error = load_error("digits", (64, 64, 3))
    assert error.message == "ran out of memory while loading the dataset"
    assert error.hint == "use a smaller --input (or `input` line in the spec), or fewer images"


def test_folder_too_big_for_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    make_classes(tmp_path / "d", {"cats": 2, "dogs": 2})
    monkeypatch.setattr(images, "decode_image", lambda *args: pytest.fail("an image was decoded"))
    limit_memory(monkeypatch, 1000)
    assert load_error(tmp_path / "d", (16, 16, 1)).message == (
        "the decoded dataset would take 1.00 KiB (4 images of 16x16x1), more than the 1000 B of memory available"
    )


def test_npz_too_big_for_memory_is_refused_before_reading(tmp_path, monkeypatch):
    x, y = np.zeros((4, 8, 8)), np.array([0, 1, 0, 1])
    path = write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    monkeypatch.setattr(np, "load", lambda *args, **kwargs: pytest.fail("arrays were read"))
    limit_memory(monkeypatch, 1000)
    assert load_error(path, (16, 16, 1)).message == (
        "the decoded dataset would take 1.50 KiB (6 images of 16x16x1), more than the 1000 B of memory available"
    )
    # Fitted to 8x8 the images take 384 bytes, but their float64 arrays take 3,120 to read.
    limit_memory(monkeypatch, 2000)
    error = load_error(path, (8, 8, 1))
    assert error.message == "reading its arrays would take 3.05 KiB, more than the 1.95 KiB of memory available"
    assert error.hint == "store the images as uint8 (a quarter of float32), or split the file"


# --- check_fits ---------------------------------------------------------------------------------


def dataset_with_classes(count: int) -> Dataset:
    return Dataset(
        x_train=np.zeros((count, 2, 2, 1), np.uint8),
        y_train=np.arange(count, dtype=np.int32),
        x_val=None,
        y_val=None,
        x_test=None,
        y_test=None,
        class_names=tuple(f"c{i}" for i in range(count)),
        fingerprint="0",
        source="pets",
        skipped=(),
    )


@pytest.mark.parametrize(
    ("classes", "outputs", "activation"),
    [
        (10, 10, "softmax"),
        (10, 10, None),
        (10, 10, "linear"),
        (10, 10, "sigmoid"),
        (2, 1, "sigmoid"),
        (2, 2, "softmax"),
        (3, 3, "Softmax"),
    ],
)
def test_check_fits_accepts_heads_that_represent_the_classes(classes, outputs, activation):
    check_fits(dataset_with_classes(classes), num_outputs=outputs, head_activation=activation)


@pytest.mark.parametrize(
    ("classes", "outputs", "activation", "message", "hint"),
    [
        (
            10,
            2,
            "softmax",
            "the spec ends with `dense 2 softmax` but pets has 10 classes (c0, c1, c2, c3, c4, ...)",
            "change the last layer to `dense 10 softmax`",
        ),
        (
            10,
            1,
            "sigmoid",
            "`dense 1 sigmoid` can tell only 2 classes apart, but pets has 10 classes (c0, c1, c2, c3, c4, ...)",
            "change the last layer to `dense 10 softmax`",
        ),
        (
            3,
            2,
            "sigmoid",
            "the spec ends with `dense 2 sigmoid` but pets has 3 classes (c0, c1, c2)",
            "change the last layer to `dense 3 softmax`",
        ),
        (
            3,
            2,
            None,
            "the spec ends with `dense 2` (no activation: one logit per class) but pets has 3 classes (c0, c1, c2)",
            "change the last layer to `dense 3` or `dense 3 softmax`",
        ),
        (
            2,
            1,
            None,
            "the spec ends with `dense 1` (no activation: one logit per class) but pets has 2 classes (c0, c1)",
            "change the last layer to `dense 2` or `dense 2 softmax`",
        ),
        (
            3,
            3,
            "relu",
            "the spec ends with `dense 3 relu`, which cannot output class scores: "
            "a classifier's last layer has softmax, sigmoid or no activation",
            "change the last layer to `dense 3 softmax`",
        ),
    ],
)
def test_check_fits_says_what_to_change(classes, outputs, activation, message, hint):
    with pytest.raises(UserError) as caught:
        check_fits(dataset_with_classes(classes), num_outputs=outputs, head_activation=activation)
    assert (caught.value.message, caught.value.hint) == (message, hint)


def test_check_fits_on_real_digits(digits_gray):
    check_fits(digits_gray, num_outputs=10, head_activation="softmax")
    with pytest.raises(UserError, match=r"but digits has 10 classes \(0, 1, 2, 3, 4, \.\.\.\)"):
        check_fits(digits_gray, num_outputs=2, head_activation="softmax")
