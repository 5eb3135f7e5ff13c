"""Features kept with each image across reloads (issue 14): a reload computes nothing
again, only images without features are decoded, another extractor's features are not
used, and progress is reported while features are computed. Real bundle, real ONNX
runtime, a real SQLite store (the browser's twin is IndexedDB)."""
from __future__ import annotations

import asyncio
import copy

import numpy as np
import pytest

from browser_py.dataset import Dataset
from browser_py.features import NativeFeatures
from browser_py.participant import Participant
from browser_py.preprocess import InputSpec
from browser_py.protocol import FLClient
from browser_py.stores import SqliteStore
from client_helpers import png
from export import build_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "pets"
    return out, build_bundle("mobilenet_v2", ["cat", "dog"], out, lr=0.01, train_blocks=0)


class Counting(NativeFeatures):
    """The real extractor, counting the images it runs on."""

    computed = 0

    async def _run(self, batch, n, output="features"):
        Counting.computed += n
        return await super()._run(batch, n, output)


async def open_participant(path, bundle_dir, manifest) -> Participant:
    """A participant as the page has it after a (re)load: store, dataset, extractor."""
    store = SqliteStore(path)
    p = Participant(FLClient("http://127.0.0.1:9", store), store)
    p.manifest, p.spec = manifest, InputSpec.from_manifest(manifest)
    p.features = Counting(manifest, (bundle_dir / "features.onnx").read_bytes())
    p.dataset = await Dataset(store, manifest["classes"]).load()
    return p


def test_features_survive_a_reload_and_are_dropped_for_another_extractor(bundle, tmp_path):
    bundle_dir, manifest = bundle
    rng = np.random.default_rng(3)

    async def run():
        p = await open_participant(tmp_path / "store.db", bundle_dir, manifest)
        for i in range(5):
            await p.dataset.add_image(f"p{i}.png", png(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)), "cat")
        items = p.dataset.labelled(None)
        seen = []

        async def progress(done, total):
            seen.append((done, total))

        Counting.computed = 0
        first = await p.inputs(items, progress, batch_size=2)
        # one image first (to time it), then batches of at most batch_size (how many fit the
        # time slice depends on the machine's speed)
        assert Counting.computed == 5 and seen[0] == (1, 5) and seen[-1] == (5, 5)
        steps = [b[0] - a[0] for a, b in zip(seen, seen[1:])]
        assert all(1 <= step <= 2 for step in steps), seen
        p.dataset.store.close()
        # a reload: a new page, the same store
        again = await open_participant(tmp_path / "store.db", bundle_dir, manifest)
        Counting.computed = 0
        second = await again.inputs(again.dataset.labelled(None), progress)
        assert Counting.computed == 0 and not again._pixels  # nothing decoded, nothing computed
        assert [list(a) for a in first] == [list(b) for b in second]
        again.dataset.store.close()
        # a new extractor (the task's model changed): its features are computed afresh
        other = copy.deepcopy(manifest)
        other["files"]["features.onnx"]["sha256"] = "0" * 64
        changed = await open_participant(tmp_path / "store.db", bundle_dir, other)
        Counting.computed = 0
        await changed.inputs(changed.dataset.labelled(None))
        assert Counting.computed == 5
        item = changed.dataset.labelled(None)[0]
        assert item.features_of == "0" * 64
        changed.dataset.store.close()

    asyncio.run(run())


class Waiting(Counting):
    """The real extractor, answering a moment later as one in a worker does (others run meanwhile)."""

    async def _run(self, batch, n, output="features"):
        await asyncio.sleep(0.01)
        return await super()._run(batch, n, output)


def test_features_prepared_in_the_background_give_way_and_are_computed_once(bundle, tmp_path):
    """After an import the page prepares features in the background; a caller that needs
    inputs (suggest, train) goes first, nothing is computed twice, a photo deleted meanwhile
    is not brought back, and every computed feature is kept for the next page."""
    bundle_dir, manifest = bundle
    rng = np.random.default_rng(4)

    async def run():
        p = await open_participant(tmp_path / "store.db", bundle_dir, manifest)
        p.features = Waiting(manifest, (bundle_dir / "features.onnx").read_bytes())
        for i in range(12):
            await p.dataset.add_image(f"p{i}.png", png(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)))
        items = p.dataset.unlabelled()
        Counting.computed = 0
        told: list[tuple[int, int]] = []

        async def progress(done: int, total: int) -> None:
            told.append((done, total))

        p.prepare_in_background(progress)
        p.prepare_in_background(progress)  # asked again while it runs: still one
        while Counting.computed == 0:
            await asyncio.sleep(0.005)
        gone = items[-1]
        await p.dataset.delete(gone.id)
        wanted = items[-4:-1]  # not yet reached by the background (it goes in order)
        assert not any(p.features.known(i.id) for i in wanted)
        got = await p.inputs(wanted)
        assert all(p.features.known(i.id) for i in wanted) and len(got) == 3
        assert Counting.computed < 11  # the background gave way before it finished
        await p._background
        assert Counting.computed == 11 and all(p.features.known(i.id) for i in items[:-1])
        # the page is told how far, and every stretch (the one that gave way too) ends at its total
        assert told[0] == (1, 12) and told[-1][0] == told[-1][1]
        ends = [i for i, (done, total) in enumerate(told) if done == total]
        assert len(ends) >= 2 and all(told[i - 1][0] <= told[i][0] for i in range(1, len(told)) if i - 1 not in ends)
        p.dataset.store.close()
        again = await open_participant(tmp_path / "store.db", bundle_dir, manifest)
        Counting.computed = 0
        await again.inputs(again.dataset.unlabelled())
        assert Counting.computed == 0 and gone.id not in again.dataset.items and len(again.dataset.items) == 11
        again.dataset.store.close()

    asyncio.run(run())


class Held(Counting):
    """The real extractor, whose second call waits until the test lets it end (a batch on
    its way in the page's worker)."""

    def __init__(self, manifest, model_bytes) -> None:
        super().__init__(manifest, model_bytes)
        self.calls, self.running, self.release = 0, asyncio.Event(), asyncio.Event()

    async def _run(self, batch, n, output="features"):
        self.calls += 1
        if self.calls == 2:
            self.running.set()
            await self.release.wait()
        return await super()._run(batch, n, output)


def test_a_cancel_while_photos_are_prepared_does_not_wait_for_the_batch_on_its_way(bundle, tmp_path):
    """A round cancelled while its photos' features are computed says so at once: before, it
    computed every photo first (2.78 s after the click in the bench). The batch on its way
    still ends and is kept, nothing after it is computed, the page hears no progress after
    the cancel, and the next ask computes only the rest."""
    from browser_py.participant import STOP_LOOK_SECONDS
    from browser_py.trainer import CancelToken, Cancelled

    bundle_dir, manifest = bundle
    rng = np.random.default_rng(6)

    async def run():
        p = await open_participant(tmp_path / "store.db", bundle_dir, manifest)
        p.features = held = Held(manifest, (bundle_dir / "features.onnx").read_bytes())
        for i in range(10):
            await p.dataset.add_image(f"p{i}.png", png(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)), "cat")
        items = p.dataset.labelled(None)
        told: list[tuple[int, int]] = []

        async def progress(done: int, total: int) -> None:
            told.append((done, total))

        Counting.computed = 0
        cancel = CancelToken()
        asking = asyncio.ensure_future(p.inputs(items, progress, batch_size=4, cancel=cancel))
        await held.running.wait()  # the second batch is on its way, and stays there
        cancel.cancel()
        with pytest.raises(Cancelled):  # a wait for the batch would never end
            await asyncio.wait_for(asking, 5 * STOP_LOOK_SECONDS)
        said = list(told)
        assert said == [(1, 10)] and Counting.computed == 1
        held.release.set()  # the batch ends out of sight
        async with p._computing:  # held until it has ended and kept its features
            pass
        ended = Counting.computed
        assert 1 < ended < 10 and told == said
        assert sum(p.features.known(i.id) for i in items) == ended
        assert sum(p.dataset.kept_features(i.id, p.features.sha256) is not None for i in items) == ended
        await p.inputs(items)
        assert Counting.computed == 10
        p.dataset.store.close()

    asyncio.run(run())


def test_nothing_to_prepare_without_a_feature_extractor(tmp_path):
    """A task whose model takes pixels (the digits CNN) has no features to prepare."""
    manifest = {"features": None, "head": {"input_shape": [1, 28, 28]}, "input": {"shape": [1, 28, 28]}}
    store = SqliteStore(tmp_path / "store.db")
    p = Participant(FLClient("http://127.0.0.1:9", store), store)
    from browser_py.features import FeatureExtractor

    p.features = FeatureExtractor(manifest)
    p.prepare_in_background()
    assert p._background is None
    store.close()


def test_photos_are_decoded_for_the_model_a_few_at_a_time(bundle, tmp_path, monkeypatch):
    """A batch's photos are decoded ahead, but at most MODEL_DECODE_AT_ONCE at a time: in the
    browser each decode ends on the page's main thread, and decodes ending together ran as
    one long task there (89-98 ms for 16). Every photo still gets its features, in order."""
    import browser_py.participant as participant_module

    bundle_dir, manifest = bundle
    rng = np.random.default_rng(5)
    real_decode, running, most = participant_module.decode, [0], [0]

    async def timed_decode(data, spec):  # the real decode, taking a moment as the browser's does
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            await asyncio.sleep(0.002)
            return await real_decode(data, spec)
        finally:
            running[0] -= 1

    monkeypatch.setattr(participant_module, "decode", timed_decode)

    async def run():
        p = await open_participant(tmp_path / "store.db", bundle_dir, manifest)
        p.features = Waiting(manifest, (bundle_dir / "features.onnx").read_bytes())
        p.features.off_main_thread = True  # whole batches, as the page's worker takes them
        for i in range(40):
            await p.dataset.add_image(f"p{i}.png", png(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)))
        items = p.dataset.unlabelled()
        got = await p.inputs(items, batch_size=16)
        assert len(got) == 40 and all(p.features.known(i.id) for i in items)
        alone = NativeFeatures(manifest, (bundle_dir / "features.onnx").read_bytes())
        first = await alone.extract([(items[7].id, await real_decode(items[7].data, p.spec))])
        assert np.allclose(first[0], got[7], atol=1e-5)
        assert 1 < most[0] <= participant_module.MODEL_DECODE_AT_ONCE, most[0]
        p.dataset.store.close()

    asyncio.run(run())
