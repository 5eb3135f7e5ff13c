"""A zip archive read a few members at a time from a file with random access.

The page used to copy a whole archive into Python before looking at it: the wasm heap then
held all of it at once, and the heap never shrinks (a phone has little memory). The copy of
60 MB of camera photos was at times a long task too (83-134 ms in one session's five
imports; in a later session's three, the longest task was under 50 ms twice, 67 ms once). The
import's speed is the same either way: decoding bounds it. Here only the
archive's directory is read up front; each import chunk's members are read when the chunk
comes (the next chunk's while this one is decoded) and let go after it. ``zipfile`` still
does the parsing: it reads through a file object that serves the byte ranges loaded so far
and says which range it lacks.

A large directory is parsed a slice at a time, the page getting its turn between slices
(8000 entries parsed at once held it 66 ms here, and the time grows with the entries): each
slice is handed to ``zipfile`` as a small archive of its own, the slice's directory records
where they are followed by an end record that points at them.
"""
from __future__ import annotations

import asyncio
import io
import struct
import zipfile
from typing import Any, Protocol

# the end-of-archive record is in the last 22 bytes plus a comment of at most 64 KB
_TAIL = 22 + 65535
# a member's local header: 30 bytes, then its name and extra field (each at most 64 KB)
_LOCAL_HEADER_MAX = 30 + 2 * 65535
_MAX_TRIES = 8  # ranges the directory may ask for (tail, directory, zip64 records)
DIRECTORY_SLICE = 1000  # directory entries parsed per step (the page runs between steps)
_END = struct.Struct("<4s4H2LH")  # the end-of-archive record (zipfile's layout, no comment)
_END_SIGNATURE = b"PK\x05\x06"
_ENTRY_SIGNATURE = b"PK\x01\x02"
_ENTRY = 46  # a directory entry's fixed part; its name, extra field and comment follow
# what zipfile raises on a damaged directory besides BadZipFile (NotImplementedError: a zip
# version past 6.3)
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, NotImplementedError)


class RangeSource(Protocol):
    """Bytes that can be read a range at a time (a browser ``File``, or bytes in memory)."""

    size: int

    async def read(self, start: int, end: int) -> bytes: ...


class BytesSource:
    """An archive already in memory (CPython, tests, an archive handed over as bytes)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    async def read(self, start: int, end: int) -> bytes:
        return self._data[start:end]


class BlobSource:
    """A browser ``Blob`` or ``File``: each range is one ``slice().arrayBuffer()``."""

    def __init__(self, blob: Any) -> None:
        self._blob = blob
        self.size = int(blob.size)

    async def read(self, start: int, end: int) -> bytes:
        return (await self._blob.slice(start, end).arrayBuffer()).to_bytes()


class _Missing(Exception):
    """A read reached bytes not loaded yet: ``start``..``end`` (not an OSError, which
    ``zipfile`` would take for the end of the file)."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__(f"bytes {start}-{end} are not loaded")
        self.start, self.end = start, end


class _Window(io.RawIOBase):
    """A seekable file of ``size`` bytes whose reads are served from ``spans``
    (start -> bytes); a read outside them raises :class:`_Missing`."""

    def __init__(self, size: int, spans: dict[int, bytes]) -> None:
        self._size, self._spans, self._pos = size, spans, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the archive")  # zipfile expects OSError here
        self._pos = base + offset
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
        if end <= self._pos:
            return b""
        for start, data in self._spans.items():
            if start <= self._pos and end <= start + len(data):
                out = data[self._pos - start:end - start]
                self._pos = end
                return out
        raise _Missing(self._pos, end)

    def close(self) -> None:  # zipfile closes its file when it gives up; the spans stay for a retry
        pass

    def serve(self, size: int, spans: dict[int, bytes]) -> None:
        """From now on, be the file of ``size`` bytes whose ranges ``spans`` holds."""
        self._size, self._spans = size, spans


class LazyZip:
    """An archive whose directory is read; its members are read by :meth:`load`."""

    def __init__(self, source: RangeSource, zf: zipfile.ZipFile, spans: dict[int, bytes],
                 infos: list[zipfile.ZipInfo] | None = None, start_dir: int | None = None) -> None:
        """``zf`` reads the members (through a window on ``spans``); ``infos`` and ``start_dir``
        when its own directory is only a slice of the archive's."""
        self._source, self.zf, self._spans = source, zf, spans
        self._infos = zf.infolist() if infos is None else infos
        infos = sorted(self._infos, key=lambda info: info.header_offset)
        # a member's bytes end where the next member (or the directory) starts, and no later
        # than its header and data can reach: a hostile directory cannot make one range huge
        ends = [info.header_offset for info in infos[1:]] + [zf.start_dir if start_dir is None else start_dir]
        self._range: dict[zipfile.ZipInfo, tuple[int, int]] = {}  # ZipInfo hashes by identity
        for info, end in zip(infos, ends):
            start = min(max(0, info.header_offset), source.size)
            self._range[info] = (start, max(start, min(end, source.size,
                                                       start + _LOCAL_HEADER_MAX + info.compress_size)))

    def infolist(self) -> list[zipfile.ZipInfo]:
        return self._infos

    async def load(self, infos: list[zipfile.ZipInfo]) -> list[int]:
        """Read these members' bytes (neighbours in one read); returns what to :meth:`release`."""
        ranges = sorted(self._range[info] for info in infos)
        merged: list[list[int]] = []
        for start, end in ranges:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        loaded = []
        for start, end in merged:
            if end > start:
                self._spans[start] = await self._source.read(start, end)
                loaded.append(start)
        return loaded

    def release(self, loaded: list[int]) -> None:
        for start in loaded:
            self._spans.pop(start, None)

    def read(self, info: zipfile.ZipInfo) -> bytes:
        """A loaded member's bytes, checked (CRC, size); BadZipFile if they are not loaded
        (a damaged archive whose member reaches past where the next begins)."""
        try:
            return self.zf.read(info)
        except _Missing:
            raise zipfile.BadZipFile("this member runs past its place in the archive") from None


async def open_zip(source: RangeSource) -> LazyZip:
    """Read the archive's directory (raises ``zipfile.BadZipFile`` if there is none)."""
    spans: dict[int, bytes] = {}
    start = max(0, source.size - _TAIL)
    spans[start] = await source.read(start, source.size)
    sliced = await _open_in_slices(source, spans[start], start)
    if sliced is not None:
        return sliced
    for _ in range(_MAX_TRIES):
        try:
            zf = zipfile.ZipFile(_Window(source.size, spans))
        except _Missing as missing:  # the directory lies before the tail: read it and try again
            spans[missing.start] = await source.read(missing.start, missing.end)
            continue
        except _UNREADABLE as exc:
            raise zipfile.BadZipFile(str(exc)) from None
        spans.clear()  # zipfile has read the directory: only members are read from now on
        return LazyZip(source, zf, spans)
    raise zipfile.BadZipFile("this archive's directory could not be found")


async def _open_in_slices(source: RangeSource, tail: bytes, tail_start: int) -> LazyZip | None:
    """The archive's directory parsed DIRECTORY_SLICE entries at a time; None for an archive
    this does not take (zip64, data before the archive, a comment that hides the end
    record, a damaged directory): :func:`open_zip` then parses it in one step, as before
    (and says what is wrong with it)."""
    at = tail.rfind(_END_SIGNATURE)
    if at < 0 or len(tail) - at < _END.size:
        return None
    _, disk, _, _, entries, size, offset, comment = _END.unpack_from(tail, at)
    if disk != 0 or at + _END.size + comment != len(tail) or offset + size != tail_start + at \
            or size < _ENTRY or entries == 0xFFFF or tail[max(0, at - 20):at - 16] == b"PK\x06\x07":
        return None
    directory = tail[offset - tail_start:at] if offset >= tail_start else await source.read(offset, offset + size)
    infos: list[zipfile.ZipInfo] = []
    reader = window = None
    pos = begun = count = 0
    while pos < size:
        if directory[pos:pos + 4] != _ENTRY_SIGNATURE or pos + _ENTRY > size:
            return None
        names, extra, remark = struct.unpack_from("<3H", directory, pos + 28)
        pos += _ENTRY + names + extra + remark
        count += 1
        if pos > size:
            return None
        if count == DIRECTORY_SLICE or pos == size:
            # this slice as an archive of its own: its records where they are, then an end record
            piece = directory[begun:pos] + _END.pack(_END_SIGNATURE, 0, 0, count, count, pos - begun, offset + begun, 0)
            window = _Window(offset + pos + _END.size, {offset + begun: piece})
            try:
                reader = zipfile.ZipFile(window)
            except (_Missing, zipfile.BadZipFile, *_UNREADABLE):
                return None
            infos += reader.infolist()
            begun, count = pos, 0
            await asyncio.sleep(0)
    spans: dict[int, bytes] = {}
    window.serve(source.size, spans)  # the last slice's reader reads every member
    return LazyZip(source, reader, spans, infos, start_dir=offset)
