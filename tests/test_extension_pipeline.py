"""Extension hooks compose: augment and before_send chain in the declared order, privacy
transforms run last, augment works on copies, and the sample count is never inflated."""
from __future__ import annotations

import asyncio
import sys
from array import array

import numpy as np

from browser_py.extension_loader import Hooks
from browser_py.extensions import Context, Extension, Update
from browser_py.participant import Participant
from browser_py.protocol import FLClient
from browser_py.stores import MemoryStore
from client_helpers import digit_files, image_folder_zip
from live import ROOT

sys.path.insert(0, str(ROOT / "extensions"))
import local_dp  # noqa: E402

CTX = Context(classes=["a", "b"], dataset=None, participant=None)


class Flip(Extension):
    name = "flip"

    def augment(self, ctx, xs, ys):
        return xs + [array("f", reversed(x)) for x in xs], ys + ys


class Brighten(Extension):
    name = "brighten"

    def augment(self, ctx, xs, ys):
        for x in xs:  # in place: it may only touch the copies it was given
            for i in range(len(x)):
                x[i] = min(255.0, x[i] + 20.0)
        return xs, ys


class SendsTheRawModel(Extension):
    """A careless (or hostile) extension that rebuilds the update from the raw parameters."""

    name = "careless"

    def __init__(self, raw: array) -> None:
        super().__init__()
        self.raw = raw

    def before_send(self, ctx, update):
        return Update(array("f", self.raw), update.base, update.samples, update.base_version, update.metrics)


def test_augment_hooks_chain_in_order_on_copies():
    xs, ys = [array("f", [0.0, 10.0, 250.0])], [1]
    hooks = Hooks([Flip(), Brighten()], CTX, [])
    (out_x, out_y), vetoed = hooks.pipe("augment", ([array("f", x) for x in xs], list(ys)), spread=True)
    assert vetoed is None and out_y == [1, 1]
    assert [list(x) for x in out_x] == [[20.0, 30.0, 255.0], [255.0, 30.0, 20.0]]  # flipped, then brightened
    assert list(xs[0]) == [0.0, 10.0, 250.0]                                       # the original is untouched


def test_local_dp_runs_last_whatever_the_declared_order():
    base = np.zeros(1000, np.float32)
    raw = array("f", (base + 5.0).tobytes())        # a change of norm ~158
    update = Update(array("f", raw), array("f", base.tobytes()), 10, 0)
    dp = local_dp.LocalDP(clip=1.0, noise_multiplier=0.0, seed=1)
    for order in ([dp, SendsTheRawModel(raw)], [SendsTheRawModel(raw), dp]):
        sent, vetoed = Hooks(order, CTX, []).pipe("before_send", update)
        change = np.frombuffer(sent.params, np.float32) - base
        assert vetoed is None and np.linalg.norm(change) <= 1.0 + 1e-5, [e.name for e in order]


def test_a_veto_stops_the_pipeline_and_names_the_extension():
    class KeepHome(Extension):
        name = "keep_home"

        def before_send(self, ctx, update):
            return None

    update = Update(array("f", [1.0]), array("f", [0.0]), 1, 0)
    sent, vetoed = Hooks([KeepHome(), local_dp.LocalDP(clip=1.0, noise_multiplier=0.0)], CTX, []).pipe(
        "before_send", update)
    assert sent is None and vetoed.name == "keep_home"


def test_a_hook_that_raises_is_switched_off_and_the_pipe_goes_on():
    class Broken(Extension):
        name = "broken"

        def augment(self, ctx, xs, ys):
            raise ValueError("boom")

    errors: list[str] = []
    hooks = Hooks([Broken(), Flip()], CTX, errors)
    (xs, ys), _ = hooks.pipe("augment", ([array("f", [1.0, 2.0])], [0]), spread=True)
    assert len(xs) == 2 and "broken failed in augment" in errors[0] and [e.name for e in hooks.extensions] == ["flip"]


def test_the_update_claims_the_labelled_images_not_the_augmented_copies(live_server):
    task = live_server.create_task("augment count", classes=[str(d) for d in range(10)], min_labelled=5)
    store = MemoryStore()
    p = Participant(FLClient(live_server.url, store), store)

    async def round_with_flip():
        await p.start(task["join_code"])
        await p.import_files([("d.zip", image_folder_zip(digit_files(20)))])
        p.hooks.extensions.append(Flip())
        before = [array("f", x) for x in await p.inputs(p.dataset.labelled("train"))]
        result = await p.train_round(epochs=1)
        after = await p.inputs(p.dataset.labelled("train"))
        return result, before, after

    result, before, after = asyncio.run(round_with_flip())
    labelled = len(p.dataset.labelled("train"))
    assert result.samples == labelled and result.ack["status"] == "applied"
    assert [list(x) for x in after] == [list(x) for x in before]  # the feature/pixel cache is unchanged
    m = live_server.api("GET", f"/api/tasks/{task['id']}/metrics?since={result.ack['applied_version'] - 1}")
    assert m["versions"][0]["updates"][0]["samples"] == labelled


def test_the_api_reference_is_generated_from_the_code():
    from browser_py.extension_reference import render

    assert (ROOT / "docs" / "extension-api.md").read_text() == render(), \
        "regenerate: python -m browser_py.extension_reference > docs/extension-api.md"
