"""Image decoding in CPython: the one place bytes become a model's pixels outside a browser.

Participants' CPython twin, the dataset loaders in ``export`` and the server's evaluation
all decode through here, so a zip of phone photos is read the same way everywhere: EXIF
orientation applied (as ``createImageBitmap`` does in the page), transparency flattened
through RGBA, converted to the model's colour mode, resized bilinearly.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # larger images are refused, not decoded


class UnreadableImage(ValueError):
    """The bytes are not an image Pillow can read, or the image is too large."""


def _to_model(im: Image.Image, color: str, size: tuple[int, int] | None) -> np.ndarray:
    im = im.convert("RGBA").convert(color)
    if size is not None and im.size != tuple(size):
        im = im.resize(tuple(size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def decode(data: bytes, color: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Image bytes -> uint8 (H, W) for ``L`` or (H, W, 3) for ``RGB``, at ``size`` = (w, h)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                raise UnreadableImage(f"the image is too large ({im.width} x {im.height} pixels)")
            return _to_model(ImageOps.exif_transpose(im), color, size)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if isinstance(exc, UnreadableImage):
            raise
        raise UnreadableImage(f"this image cannot be read ({exc})") from None


def from_array(image: np.ndarray, color: str, size: tuple[int, int]) -> np.ndarray:
    """An already decoded uint8 image, converted and resized the same way."""
    return _to_model(Image.fromarray(image), color, size)


def planes(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) -> float32 channels-first (C, H, W) in [0, 255]."""
    arr = image.astype(np.float32)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
