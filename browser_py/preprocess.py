"""Image bytes -> the model's input, the same way in the browser and in CPython.

The bundle's manifest says what the model takes: ``color`` (L or RGB) and ``size``; the
result is float32 pixels in [0, 255], channels first. Normalisation is in the graph.

- CPython: :mod:`browser_py.native.images` (Pillow; EXIF orientation applied, convert,
  bilinear resize), the same decoding export and the server use.
- Browser: ``createImageBitmap`` (applies EXIF orientation) drawn onto an OffscreenCanvas
  at the target size, pixels read back as RGBA bytes; channels are split with byte
  slicing, so no Python loop runs per pixel. Grey levels use Pillow's integer formula
  (ITU-R 601-2, the same rounding); images whose red, green and blue already agree skip it.

Same-size images give identical inputs on both sides; resizing differs slightly because
canvas and Pillow filter differently (measured in tests/test_client_browser.py).
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass

from .dataset import ImageRejected, stored_size
from .jsvalues import js_object

MAX_PIXELS = 40_000_000  # larger images are refused, not decoded (the same bound as native.images)
THUMB_SIDE = 320  # the longest side of the page's thumbnails: a tile is at most ~160 CSS px wide at 2x
THUMB_QUALITY = 0.8


@dataclass(frozen=True)
class InputSpec:
    color: str
    width: int
    height: int

    @classmethod
    def from_manifest(cls, manifest: dict) -> "InputSpec":
        w, h = manifest["input"]["size"]
        return cls(manifest["input"]["color"], int(w), int(h))

    @property
    def channels(self) -> int:
        return 1 if self.color == "L" else 3

    @property
    def values(self) -> int:
        return self.channels * self.width * self.height


def planes_from_rgba(rgba: bytes, color: str) -> array:
    """RGBA bytes (row-major) -> float32 channel planes (CHW). In the browser only grey
    images come here (few pixels); colour goes through ``ort.Tensor.fromImage``."""
    r, g, b = rgba[0::4], rgba[1::4], rgba[2::4]
    out = array("f")
    # array("f", bytes) would reinterpret the bytes as floats; a memoryview is iterated as ints.
    if color == "RGB":
        for plane in (r, g, b):
            out.extend(array("f", memoryview(plane)))
    elif r == g == b:
        out.extend(array("f", memoryview(r)))
    else:  # Pillow's L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16
        out.extend(array("f", [(x * 19595 + y * 38470 + z * 7471 + 0x8000) >> 16 for x, y, z in zip(r, g, b)]))
    return out


def pixels_pillow(data: bytes, spec: InputSpec) -> array:
    """CPython decoding, through the shared native decoder."""
    from .native.images import UnreadableImage, decode, planes

    try:
        image = decode(data, spec.color, (spec.width, spec.height))
    except UnreadableImage as exc:
        raise ImageRejected(str(exc)) from None
    return array("f", planes(image).tobytes())


async def pixels_browser(data: bytes, spec: InputSpec) -> array:
    """Browser decoding with createImageBitmap and an OffscreenCanvas."""
    import js

    bitmap = await _bitmap(data)
    try:
        canvas = js.OffscreenCanvas.new(spec.width, spec.height)
        ctx = canvas.getContext("2d")
        ctx.imageSmoothingEnabled = True
        ctx.imageSmoothingQuality = "high"
        ctx.drawImage(bitmap, 0, 0, spec.width, spec.height)
        image = ctx.getImageData(0, 0, spec.width, spec.height)
    finally:
        bitmap.close()
    if spec.color == "RGB":
        # onnxruntime-web splits the channels into float32 planes in JS: the same values
        # (mean 1, bias 0 keeps 0-255), where a Python loop over a 224 x 224 photo took ~30 ms
        options = js_object({"norm": {"mean": 1, "bias": 0}, "tensorFormat": "RGB", "tensorLayout": "NCHW"})
        tensor = await js.ort.Tensor.fromImage(image, options)
        return array("f", tensor.data.to_bytes())
    return planes_from_rgba(image.data.to_bytes(), spec.color)


async def _bitmap(data: bytes, width: int | None = None):
    """The decoded image as an ImageBitmap (EXIF orientation applied), size-checked; with
    ``width``, decoded straight to that width (the browser does it off the main thread)."""
    import js
    from pyodide.ffi import JsException, to_js

    from .jsvalues import uint8array

    stated = stored_size(data)
    if stated is not None and stated[0] * stated[1] > MAX_PIXELS:
        raise ImageRejected(f"the image is too large ({stated[0]} x {stated[1]} pixels)")
    options = js.Object.fromEntries(to_js([["resizeWidth", width], ["resizeQuality", "medium"]])) if width else None
    blob = js.Blob.new(to_js([uint8array(data)]))
    try:
        bitmap = await (js.createImageBitmap(blob, options) if options else js.createImageBitmap(blob))
    except JsException:
        raise ImageRejected("this image cannot be read (the browser could not decode it)") from None
    if bitmap.width * bitmap.height > MAX_PIXELS:
        bitmap.close()
        raise ImageRejected(f"the image is too large ({bitmap.width} x {bitmap.height} pixels)")
    return bitmap


def thumbnail_size(width: int, height: int, side: int = THUMB_SIDE) -> tuple[int, int] | None:
    """The thumbnail's size for an image, or None when the image is small enough to show."""
    if max(width, height) <= side:
        return None
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


async def check_image(data: bytes) -> bytes | None:
    """Decode an image fully (raise :class:`ImageRejected` if it cannot be used) and, for a
    large one, return a small JPEG for the page: showing camera photos at full size made
    the grid slow. In CPython the check is Pillow's decode and there is no thumbnail."""
    from .runtime import IN_PYODIDE

    if not IN_PYODIDE:
        from .native.images import UnreadableImage, decode as decode_pillow

        try:
            decode_pillow(data, "RGB")
        except UnreadableImage as exc:
            raise ImageRejected(str(exc)) from None
        return None
    import js

    stated = stored_size(data)
    size = None if stated is None else thumbnail_size(*stated)
    # a large image is decoded straight to thumbnail width (off the main thread): drawing a
    # 12-megapixel bitmap on a canvas held the page for most of a second
    bitmap = await _bitmap(data, size and size[0])
    try:
        if size is None:
            return None
        canvas = js.OffscreenCanvas.new(bitmap.width, bitmap.height)
        canvas.getContext("2d").drawImage(bitmap, 0, 0)
    finally:
        bitmap.close()
    blob = await canvas.convertToBlob(js.Object.fromEntries([["type", "image/jpeg"], ["quality", THUMB_QUALITY]]))
    return (await blob.arrayBuffer()).to_bytes()


async def decode(data: bytes, spec: InputSpec) -> array:
    """Decode in whichever runtime we are in."""
    from .runtime import IN_PYODIDE

    if IN_PYODIDE:
        return await pixels_browser(data, spec)
    return pixels_pillow(data, spec)
