"""Image bytes -> the model's input, the same way in the browser and in CPython.

The bundle's manifest says what the model takes: ``color`` (L or RGB) and ``size``; the
result is float32 pixels in [0, 255], channels first. Normalisation is in the graph.

- CPython: :mod:`browser_py.native.images` (Pillow; EXIF orientation applied, convert,
  bilinear resize), the same decoding export and the server use.
- Browser: ``createImageBitmap`` (applies EXIF orientation; a JPEG several times larger
  than needed goes through WebCodecs' ``ImageDecoder`` instead, which decodes it at a
  reduced scale) drawn onto an OffscreenCanvas at the target size, pixels read back as RGBA bytes; channels are split with byte
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


def grey_from_rgba(rgba: bytes) -> array:
    """RGBA bytes (row-major) -> one float32 plane of Pillow's L. Only grey models' images
    come here (few pixels); colour goes through www/js/pixels.mjs."""
    r, g, b = rgba[0::4], rgba[1::4], rgba[2::4]
    # array("f", bytes) would reinterpret the bytes as floats; a memoryview is iterated as ints.
    if r == g == b:
        return array("f", memoryview(r))
    # Pillow's L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16
    return array("f", [(x * 19595 + y * 38470 + z * 7471 + 0x8000) >> 16 for x, y, z in zip(r, g, b)])


def pixels_pillow(data: bytes, spec: InputSpec) -> array:
    """CPython decoding, through the shared native decoder."""
    from .native.images import UnreadableImage, decode, planes

    try:
        image = decode(data, spec.color, (spec.width, spec.height))
    except UnreadableImage as exc:
        raise ImageRejected(str(exc)) from None
    return array("f", planes(image).tobytes())


async def pixels_browser(data: bytes, spec: InputSpec) -> array:
    """Browser decoding (a large JPEG at a reduced scale) drawn onto an OffscreenCanvas."""
    import js

    picture = await _picture(data, spec.width, spec.height)
    try:
        canvas = js.OffscreenCanvas.new(spec.width, spec.height)
        ctx = canvas.getContext("2d")
        ctx.imageSmoothingEnabled = True
        ctx.imageSmoothingQuality = "high"
        ctx.drawImage(picture, 0, 0, spec.width, spec.height)
        image = ctx.getImageData(0, 0, spec.width, spec.height)
    finally:
        picture.close()
    if spec.color == "RGB":
        # the channels are split into float32 planes in JS (www/js/pixels.mjs), where a Python
        # loop over a 224 x 224 photo took ~30 ms and ort.Tensor.fromImage, awaited, 1.2-1.5 ms
        return array("f", js.webfl.rgbPlanes(image.data).to_bytes())
    return grey_from_rgba(image.data.to_bytes())


def _check_size(data: bytes) -> tuple[int, int] | None:
    stated = stored_size(data)
    if stated is not None and stated[0] * stated[1] > MAX_PIXELS:
        raise ImageRejected(f"the image is too large ({stated[0]} x {stated[1]} pixels)")
    return stated


# A JPEG at least this many times the size needed (its short side against the longest side
# needed) is decoded at a reduced scale: WebCodecs' ImageDecoder, asked for a size, lets the
# JPEG decoder drop detail (1/2 to 1/8 of each side). A 12-megapixel photo came out at 504 x 378
# in 27 ms here, against 96 ms decoded whole (createImageBitmap decodes whole, even when asked
# to resize).
SCALED_DECODE_FACTOR = 2
# A thumbnail is only looked at, so any JPEG larger than it is decoded at a reduced scale. It
# also needs no Blob, whose creation is a blocking call into the browser: 200 photos of
# 640 x 480 went in in 2.97 s against 3.32 s (medians of 6 imports each way, alternating).
THUMB_SCALED_DECODE_FACTOR = 1


async def _picture(data: bytes, width: int, height: int, resize: bool = False,
                   scaled_from: float = SCALED_DECODE_FACTOR):
    """The decoded image (EXIF orientation applied), size-checked, as something a canvas draws
    and that has ``close()``: a JPEG at least ``scaled_from`` times ``width`` x ``height`` is
    decoded at a reduced scale; else the whole image (with ``resize``, brought to ``width`` as
    it is decoded, off the main thread: drawing a 12-megapixel bitmap held the page for most of
    a second)."""
    stated = _check_size(data)
    if stated is not None and data[:2] == b"\xff\xd8" and min(stated) >= scaled_from * max(width, height):
        frame = await _scaled_jpeg(data, max(width, height), stated)
        if frame is not None:
            return frame
    return await _bitmap(data, width if resize else None)


async def _scaled_jpeg(data: bytes, side: int, stored: tuple[int, int]):
    """The JPEG (``stored``: its width and height in the file) decoded to at least ``side``
    pixels on its short side (a VideoFrame, orientation applied when drawn), or None when
    this browser cannot (then the caller decodes it whole)."""
    import js
    from pyodide.ffi import JsException

    from .jsvalues import uint8array

    if not hasattr(js, "ImageDecoder"):
        return None
    decoder = None
    try:
        # The JPEG decoder scales by k/8 and Chromium rounds a size asked for down to one of
        # those: ask for exactly the first k/8 that keeps the short side at least ``side``.
        k = -(-8 * side // min(stored))
        if k >= 8:
            return None
        decoder = js.ImageDecoder.new(js_object({"data": uint8array(data), "type": "image/jpeg",
                                                 "desiredWidth": -(-stored[0] * k // 8),
                                                 "desiredHeight": -(-stored[1] * k // 8)}))
        frame = (await decoder.decode()).image
    except JsException:
        return None  # a damaged file is left to createImageBitmap, which says so
    finally:
        if decoder is not None:
            decoder.close()
    if min(frame.displayWidth, frame.displayHeight) < side:  # a decoder that scaled too far
        frame.close()
        return None
    return frame


async def _bitmap(data: bytes, width: int | None = None):
    """The whole image decoded as an ImageBitmap (EXIF orientation applied), size-checked;
    with ``width``, brought to that width as it is decoded."""
    import js
    from pyodide.ffi import JsException, to_js

    from .jsvalues import uint8array

    _check_size(data)
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

    stated = _check_size(data)
    size = None if stated is None else thumbnail_size(*stated)
    if size is None:
        (await _bitmap(data)).close()  # small enough to show as it is: only checked
        return None
    picture = await _picture(data, *size, resize=True, scaled_from=THUMB_SCALED_DECODE_FACTOR)
    try:
        # the thumbnail in the picture's own orientation (EXIF may turn it)
        shown = (picture.displayWidth, picture.displayHeight) if hasattr(picture, "displayWidth") \
            else (picture.width, picture.height)
        width, height = thumbnail_size(*shown) or shown
        canvas = js.OffscreenCanvas.new(width, height)
        ctx = canvas.getContext("2d")
        ctx.imageSmoothingQuality = "high"
        ctx.drawImage(picture, 0, 0, width, height)
    finally:
        picture.close()
    blob = await canvas.convertToBlob(js.Object.fromEntries([["type", "image/jpeg"], ["quality", THUMB_QUALITY]]))
    return (await blob.arrayBuffer()).to_bytes()


async def decode(data: bytes, spec: InputSpec) -> array:
    """Decode in whichever runtime we are in."""
    from .runtime import IN_PYODIDE

    if IN_PYODIDE:
        return await pixels_browser(data, spec)
    return pixels_pillow(data, spec)
