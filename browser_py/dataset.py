"""A participant's images and labels: import, label, split, count, export.

Images are kept as the bytes the participant gave (compact: JPEG/PNG as they came).
A label is confirmed (``label`` set, ``source`` = imported, accepted or corrected) or only
suggested by the model (``suggestion`` + ``confidence``); training uses confirmed labels
only. Each image is assigned to ``train`` or ``test`` from its content hash (1 in 5 goes
to test), so the split is stable across reloads and devices.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import time
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Awaitable, Callable, Iterator, NamedTuple, TypeVar

from .sha256 import sha256_hex
from .stores import Store
from .zip_reader import DIRECTORY_SLICE, BytesSource, LazyZip, RangeSource, open_zip

CONFIRMED = ("imported", "accepted", "corrected")
MAX_IMAGE_BYTES = 15 * 1024 * 1024
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
          (b"BM", "BMP"))


class ImageRejected(ValueError):
    """An input that is not a usable image; the message is for the participant."""


def sniff_image(data: bytes) -> str:
    """The image format from its first bytes, or raise :class:`ImageRejected`."""
    if len(data) == 0:
        raise ImageRejected("the file is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRejected(f"the file is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    raise ImageRejected("this is not an image (PNG, JPEG, GIF, BMP or WebP)")


def stored_size(data: bytes) -> tuple[int, int] | None:
    """Width and height as the file's header states them (before any EXIF rotation), read
    without decoding; None if the header does not say. Used to refuse huge images before
    decoding them and to decode large ones straight to thumbnail size."""
    try:
        if data.startswith(b"\x89PNG") and data[12:16] == b"IHDR":
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if data[:3] == b"GIF":
            return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
        if data[:2] == b"BM":
            width, height = (abs(int.from_bytes(data[k:k + 4], "little", signed=True)) for k in (18, 22))
            return width, height  # a negative height means top-down rows, not a smaller image
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            if chunk == b"VP8 ":
                return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
        if data[:2] == b"\xff\xd8":  # walk the JPEG segments to the frame header (SOFn)
            i = 2
            while i + 9 < len(data) and data[i] == 0xFF:
                marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
                if marker == 0xFF:  # fill byte
                    i += 1
                    continue
                i += 2 + length
    except (IndexError, ValueError):
        pass
    return None


@dataclass
class Item:
    id: str
    name: str
    data: bytes
    label: str | None = None
    source: str | None = None
    split: str = "train"
    suggestion: str | None = None
    confidence: float | None = None
    added: float = 0.0
    # the frozen backbone's features of this image (little-endian float32, base64 so every
    # store keeps them as text), kept across reloads, and the sha256 of the extractor that
    # computed them (another extractor's features are stale)
    features: str | None = None
    features_of: str | None = None
    # a small JPEG of a large image for the page (base64; None: the image is small enough)
    thumb: str | None = None

    @property
    def status(self) -> str:
        if self.label is not None:
            return "labelled"
        return "suggested" if self.suggestion is not None else "unlabelled"


class _LeftOut:
    """An image an import was stopped before it looked at: neither added nor refused."""


LEFT_OUT = _LeftOut()


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    stopped: bool = False  # the participant stopped it: images not yet looked at were left out

    def merge(self, other: "ImportReport") -> None:
        self.added += other.added
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.stopped = self.stopped or other.stopped

    def summary(self) -> str:
        parts = [f"{len(self.added)} image{'s' if len(self.added) != 1 else ''} added"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} already here")
        if self.rejected:
            parts.append(f"{len(self.rejected)} refused")
        return ", ".join(parts)


def split_for(item_id: str) -> str:
    return "test" if int(item_id[:8], 16) % 5 == 0 else "train"


# fully decodes an image, raises ImageRejected if it is unusable; may return a small JPEG
# of it for the page (None: show the image itself)
Validator = Callable[[bytes], Awaitable[bytes | None]]
ImportProgress = Callable[[int, int], Awaitable[None]]
T = TypeVar("T")


class _Entry(NamedTuple):
    """An image to import: its bytes as given, or a zip member (read once its archive loaded it)."""
    name: str
    size: int
    label: str | None
    data: bytes | None = None
    archive: LazyZip | None = None
    info: zipfile.ZipInfo | None = None

    def read(self) -> bytes:
        return self.data if self.archive is None else _read_member(self.archive, self.info)


IMPORT_CHUNK = 64    # at most so many images written per transaction,
IMPORT_CHUNK_BYTES = 16 * 1024 * 1024  # and about so many bytes (camera photos: ~10 per write)
DECODE_AT_ONCE = 4   # images decoded in parallel (bounds memory for camera photos)
SMALL_IMAGE_BYTES = 64 * 1024  # smaller files are decoded many at a time: each decode is
SMALL_DECODE_AT_ONCE = 16       # mostly a trip through the browser, not memory or work. Not
# more: decodes that end together run as one task (Pyodide runs every ready step at once). Seven
# imports of 2000 digits each way: at 32, 6 of 7 had a 56-82 ms task; at 16, 2 of 7 (50, 63 ms),
# 556 against 594 images/s
YIELD_BYTES = 1024 * 1024  # let the page respond after hashing this much (4 MB: 120-220 ms tasks)
SAVE_CHUNK_BYTES = 4 * 1024 * 1024  # records rewritten per transaction (labels, suggestions)


async def content_id(data: bytes) -> str:
    """An image's id: the first 16 hex digits of its sha256 (a large photo is hashed off the
    page's main thread: browser_py.sha256)."""
    return (await sha256_hex(data))[:16]


def _chunks(entries: list[T], size_of: Callable[[T], int], max_bytes: int) -> Iterator[list[T]]:
    """Consecutive runs of at most IMPORT_CHUNK entries and about ``max_bytes``."""
    chunk: list[T] = []
    size = 0
    for entry in entries:
        if chunk and (len(chunk) >= IMPORT_CHUNK or size + size_of(entry) > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += size_of(entry)
    if chunk:
        yield chunk


def _read_member(archive: LazyZip, info: zipfile.ZipInfo) -> bytes:
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise ImageRejected(f"this file in the zip cannot be read ({type(exc).__name__})") from None


async def _load(chunk: list[_Entry]) -> list[tuple[LazyZip, list[int]]]:
    """Read this chunk's zip members, archive by archive; what to :func:`_release` after."""
    members: dict[LazyZip, list[zipfile.ZipInfo]] = {}
    for entry in chunk:
        if entry.archive is not None:
            members.setdefault(entry.archive, []).append(entry.info)
    return [(archive, await archive.load(infos)) for archive, infos in members.items()]


def _release(loaded: list[tuple[LazyZip, list[int]]]) -> None:
    for archive, spans in loaded:
        archive.release(spans)


class Dataset:
    """Images and labels of one participant in one task, persisted in ``store``.

    ``validate`` (optional) fully decodes an image and raises :class:`ImageRejected` if
    it cannot be used; the browser passes its canvas decoder, CPython Pillow's.
    """

    def __init__(self, store: Store, classes: list[str], validate: Validator | None = None) -> None:
        self.store = store
        self.classes = list(classes)
        self.validate = validate
        self.items: dict[str, Item] = {}
        # told of each label action (a user study records them): await observer(action, **detail)
        self.observer: Callable[..., Awaitable[None]] | None = None

    async def _notify(self, action: str, **detail) -> None:
        if self.observer is not None:
            await self.observer(action, **detail)

    async def load(self) -> "Dataset":
        self.items = {r["id"]: Item(**r) for r in await self.store.items()}
        return self

    # --- import -------------------------------------------------------------------------
    async def add_image(self, name: str, data: bytes, label: str | None = None) -> ImportReport:
        return await self.import_files([(name, data)], label)

    async def import_files(self, files: list[tuple[str, bytes | RangeSource]], label: str | None = None,
                           progress: ImportProgress | None = None,
                           stop: Callable[[], bool] | None = None) -> ImportReport:
        """Single images and zip archives; zips in the ImageFolder layout carry labels. A zip
        may come as a :class:`RangeSource` (the page's ``File``): it is then read a chunk at
        a time, never whole.

        Images are checked a few at a time (decoding runs in parallel in the browser) and
        written IMPORT_CHUNK per transaction: one disk flush per image made imports slow.
        ``progress(done, total)`` follows the images. Once ``stop()`` says so, no image is
        read or decoded any more: those checked already are written (``report.stopped``)."""
        report = ImportReport()
        entries: list[_Entry] = []
        for name, data in files:
            if isinstance(data, (bytes, bytearray)):
                if not (data[:2] == b"PK" and name.lower().endswith(".zip")):
                    entries.append(_Entry(name, len(data), label, data))
                    continue
                data = BytesSource(data)
            entries += await self._zip_entries(data, name, report)
        chunks = list(_chunks(entries, lambda entry: entry.size, IMPORT_CHUNK_BYTES))
        done, seen, writing, loading = 0, set(), None, None
        try:
            for i, chunk in enumerate(chunks):
                if stop is not None and stop():
                    report.stopped = True
                    break
                loaded = await (loading or _load(chunk))
                # the next chunk's members are read while this one is hashed and decoded
                loading = asyncio.ensure_future(_load(chunks[i + 1])) if i + 1 < len(chunks) else None
                try:
                    good = await self._checked(chunk, report, seen, stop)
                finally:
                    _release(loaded)
                # a chunk is written while the next is hashed and decoded: one write at a time, in order
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(self._write(good, report))
                done += len(chunk)
                if progress is not None:
                    await progress(done, len(entries))
                    await asyncio.sleep(0)  # the page draws what progress made before the next chunk
            if writing is not None:
                await writing
        finally:  # a failed import leaves no read running (what was read goes with the archive)
            if loading is not None:
                loading.cancel()
            if writing is not None:  # and finishes storing the chunk it had checked: the page
                with contextlib.suppress(Exception):  # counts what stayed (a failed write raised already)
                    await writing
        return report

    async def _zip_entries(self, source: RangeSource, archive_name: str, report: ImportReport) -> list[_Entry]:
        """A zip's images, read when their chunk comes (folder names that are classes become
        labels; images elsewhere are added unlabelled)."""
        try:
            archive = await open_zip(source)
        except zipfile.BadZipFile:
            report.rejected.append((archive_name, "this zip archive is damaged"))
            return []
        entries: list[_Entry] = []
        for n, info in enumerate(archive.infolist()):
            if n % DIRECTORY_SLICE == DIRECTORY_SLICE - 1:
                await asyncio.sleep(0)  # a long listing gives the page its turns too
            parts = info.filename.split("/")
            if info.is_dir() or "__MACOSX" in parts or parts[-1].startswith("."):
                continue
            if not parts[-1].lower().endswith(IMAGE_SUFFIXES):
                report.rejected.append((info.filename, "not an image file"))
                continue
            if info.file_size > MAX_IMAGE_BYTES:
                report.rejected.append((info.filename, "larger than the 15 MB limit"))
                continue
            folder = parts[-2] if len(parts) >= 2 else None
            entries.append(_Entry(info.filename, info.file_size, folder if folder in self.classes else None,
                                  archive=archive, info=info))
        return entries

    async def _checked(self, entries: list["_Entry"], report: ImportReport, seen: set[str],
                       stop: Callable[[], bool] | None = None) -> list[Item]:
        """The chunk's new, usable images (``seen``: ids this import has taken so far). Each
        image is decoded as soon as it is hashed: the browser decodes while the next is hashed.
        Once ``stop()`` says so, images not yet read or decoded are left out."""
        gate = asyncio.Semaphore(DECODE_AT_ONCE)
        small_gate = asyncio.Semaphore(SMALL_DECODE_AT_ONCE)

        def stopped() -> bool:
            if stop is not None and stop():
                report.stopped = True
            return report.stopped

        async def check(item: Item) -> ImageRejected | _LeftOut | None:
            if self.validate is None:
                return None
            async with (small_gate if len(item.data) < SMALL_IMAGE_BYTES else gate):
                if stopped():  # queued behind others' decodes: no new decode after a stop
                    return LEFT_OUT
                try:
                    thumb = await self.validate(item.data)
                except ImageRejected as exc:
                    return exc
            item.thumb = None if thumb is None else base64.b64encode(thumb).decode("ascii")
            return None

        fresh: list[tuple[str, Item, asyncio.Future]] = []
        hashed = 0
        try:
            for entry in entries:
                if stopped():
                    break
                name, label = entry.name, entry.label
                if hashed > YIELD_BYTES:  # hashing camera photos back to back held the page
                    await asyncio.sleep(0)
                    hashed = 0
                try:
                    data = entry.read()
                    hashed += len(data)
                    sniff_image(data)
                    if label is not None and label not in self.classes:
                        raise ImageRejected(f"'{label}' is not one of this task's classes")
                except ImageRejected as exc:
                    report.rejected.append((name, str(exc)))
                    continue
                item_id = await content_id(data)
                if item_id in self.items or item_id in seen:
                    report.duplicates.append(name)
                    continue
                seen.add(item_id)
                item = Item(item_id, name, data, label, "imported" if label is not None else None,
                            split_for(item_id), added=time.time())
                fresh.append((name, item, asyncio.ensure_future(check(item))))
        finally:  # also when this import fails midway: no decode is left running unawaited
            verdicts = await asyncio.gather(*(checking for _, _, checking in fresh), return_exceptions=True)
        good = []
        for (name, item, _), refused in zip(fresh, verdicts):
            if isinstance(refused, BaseException) and not isinstance(refused, ImageRejected):
                raise refused
            if refused is LEFT_OUT:
                seen.discard(item.id)
            elif refused is not None:
                report.rejected.append((name, str(refused)))
            else:
                good.append(item)
        return good

    async def _write(self, good: list[Item], report: ImportReport) -> None:
        """Store checked images (one transaction); they count as added once it is done."""
        if good:
            await self.store.put_items([asdict(item) for item in good])
        for item in good:
            self.items[item.id] = item
            report.added.append(item.id)

    # --- labels -------------------------------------------------------------------------
    async def _save(self, *items: Item, durable: bool = True) -> None:
        """Write changed records, a few MB per transaction: SQLite rewrites an image with its
        record (IndexedDB keeps images apart and writes each once)."""
        for chunk in _chunks(list(items), lambda item: len(item.data), SAVE_CHUNK_BYTES):
            await self.store.put_items([asdict(item) for item in chunk], durable=durable)

    def get(self, item_id: str) -> Item:
        try:
            return self.items[item_id]
        except KeyError:
            raise KeyError(f"no image {item_id}") from None

    async def set_label(self, item_id: str, label: str | None, source: str = "corrected") -> Item:
        if label is not None and label not in self.classes:
            raise ValueError(f"'{label}' is not one of this task's classes")
        if source not in CONFIRMED:
            raise ValueError(f"label source must be one of {CONFIRMED}")
        item = self.get(item_id)
        item.label, item.source = label, (source if label is not None else None)
        await self._save(item)
        return item

    async def accept(self, item_id: str) -> Item:
        item = self.get(item_id)
        if item.suggestion is None:
            raise ValueError("this image has no suggestion to accept")
        await self.set_label(item_id, item.suggestion, "accepted")
        await self._notify("accept", item=item_id, label=item.label, confidence=item.confidence)
        return item

    async def accept_above(self, threshold: float) -> int:
        """Accept every unlabelled suggestion at or above ``threshold`` confidence (one write)."""
        chosen = [item for item in self.items.values()
                  if item.label is None and item.suggestion is not None and (item.confidence or 0) >= threshold]
        for item in chosen:
            item.label, item.source = item.suggestion, "accepted"
        if chosen:
            await self._save(*chosen)
        for item in chosen:
            await self._notify("accept", item=item.id, label=item.label, confidence=item.confidence)
        return len(chosen)

    async def correct(self, item_id: str, label: str) -> Item:
        item = await self.set_label(item_id, label, "corrected")
        await self._notify("correct", item=item_id, label=label, suggested=item.suggestion,
                           confidence=item.confidence)
        return item

    async def suggest(self, suggestions: dict[str, tuple[str, float]]) -> None:
        """Record the model's ``{item_id: (label, confidence)}`` (one write for all)."""
        items = [self.get(item_id) for item_id in suggestions]
        for item in items:
            label, confidence = suggestions[item.id]
            item.suggestion, item.confidence = label, float(confidence)
        await self._save(*items)

    async def keep_features(self, features: dict[str, bytes], extractor: str) -> None:
        """Store images' features with them (``{item_id: float32 bytes}``), so a reload does
        not compute them again."""
        # an image deleted while its features were computed is not brought back
        items = [self.items[item_id] for item_id in features if item_id in self.items]
        for item in items:
            item.features, item.features_of = base64.b64encode(features[item.id]).decode("ascii"), extractor
        await self._save(*items, durable=False)

    def kept_features(self, item_id: str, extractor: str | None) -> bytes | None:
        """The features kept with an image by this extractor (None: none, or another's)."""
        item = self.get(item_id)
        if extractor is None or item.features_of != extractor or not item.features:
            return None
        return base64.b64decode(item.features)

    async def set_split(self, item_id: str, split: str) -> None:
        if split not in ("train", "test"):
            raise ValueError("split must be train or test")
        item = self.get(item_id)
        item.split = split
        await self._save(item)

    async def delete(self, item_id: str) -> None:
        await self.store.delete_item(item_id)
        item = self.items.pop(item_id, None)
        await self._notify("delete", item=item_id, label=item and item.label, suggested=item and item.suggestion)

    async def restore(self, item: Item) -> None:
        """Bring back an image deleted moments ago (the page's undo), exactly as it was."""
        await self._save(item)
        self.items[item.id] = item
        await self._notify("undo", item=item.id, label=item.label)

    async def clear(self) -> None:
        count = len(self.items)
        await self.store.clear_items()
        self.items.clear()
        await self._notify("delete", count=count)

    # --- views ----------------------------------------------------------------------------
    def labelled(self, split: str | None = "train") -> list[Item]:
        return [i for i in self.items.values() if i.label is not None and (split is None or i.split == split)]

    def unlabelled(self) -> list[Item]:
        return [i for i in self.items.values() if i.label is None]

    def counts(self) -> dict:
        per_class = {c: {"train": 0, "test": 0} for c in self.classes}
        for item in self.labelled(None):
            per_class[item.label][item.split] += 1
        return {"per_class": per_class, "labelled": sum(v["train"] + v["test"] for v in per_class.values()),
                "suggested": sum(1 for i in self.items.values() if i.status == "suggested"),
                "unlabelled": sum(1 for i in self.items.values() if i.status == "unlabelled"),
                "total": len(self.items)}

    def export_zip(self) -> bytes:
        """Labelled images in class folders, the rest under ``unlabelled/``."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for item in self.items.values():
                folder = item.label if item.label is not None else "unlabelled"
                name = item.name.split("/")[-1]
                zf.writestr(f"{folder}/{item.id}-{name}", item.data)
        return buf.getvalue()
