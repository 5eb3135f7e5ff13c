"""Update encodings (browser_py.update_encoding): sizes, round trips, error feedback, and
the server taking each documented encoding and validating it like the raw one, on both
storage backends."""
from __future__ import annotations

import gzip
import random
import struct
import uuid
from array import array

import numpy as np
import pytest

from api_helpers import Harness
from browser_py.update_encoding import BLOCK, decode_q8_delta, encode_q8_delta, encoded_size

N = 56714  # the digits CNN


def test_sizes():
    assert encoded_size("f32", N) == 4 * N
    assert encoded_size("q8-delta", N) == N + 4 * ((N + BLOCK - 1) // BLOCK)
    assert encoded_size("q8-delta", N) / encoded_size("f32", N) < 0.255
    with pytest.raises(ValueError):
        encoded_size("f16", N)


def test_round_trip_error_is_at_most_half_a_step():
    rng = random.Random(0)
    base = array("f", [rng.gauss(0, 0.1) for _ in range(1000)])
    params = array("f", [b + rng.gauss(0, 0.01) * (10 if i < 300 else 1) for i, b in enumerate(base)])
    body, dropped = encode_q8_delta(params, base)
    change = decode_q8_delta(body, len(base))
    scales = struct.unpack(f"<{(1000 + BLOCK - 1) // BLOCK}f", body[:16])
    for i, (p, b, c, d) in enumerate(zip(params, base, change, dropped)):
        assert abs((p - b) - c) <= scales[i // BLOCK] / 2 + 1e-7
        assert abs((p - b) - c - d) < 1e-6  # what was dropped is exactly the error


def test_error_feedback_loses_nothing_over_rounds():
    """Sent changes add up to the true changes, up to one round's rounding."""
    rng = random.Random(1)
    n = 700
    base = array("f", [0.0] * n)
    carried, true_total, sent_total = None, np.zeros(n), np.zeros(n)
    for _ in range(30):
        change = np.array([rng.gauss(0, 0.001) for _ in range(n)], np.float32)
        params = array("f", (np.frombuffer(base, np.float32) + change).tobytes())
        body, carried = encode_q8_delta(params, base, carried)
        true_total += change
        sent_total += np.frombuffer(decode_q8_delta(body, n), np.float32)
    assert np.abs(true_total - sent_total).max() <= np.abs(np.frombuffer(carried, np.float32)).max() + 1e-6
    assert np.abs(true_total - sent_total).max() < 2e-4


# --- the server -----------------------------------------------------------------------------

@pytest.fixture
def h(tmp_path, backend):
    harness = Harness(tmp_path, DATABASE_URL=backend)
    yield harness
    harness.close()


def post(h, joined, body: bytes, base_version: int, encoding: str, gz: bool = False):
    headers = {"Authorization": f"Bearer {joined['token']}", "X-WebFL-Base-Version": str(base_version),
               "X-WebFL-Samples": "10", "Idempotency-Key": uuid.uuid4().hex, "X-WebFL-Encoding": encoding,
               "Content-Type": "application/octet-stream"}
    if gz:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    return h.client.post(f"/api/tasks/{joined['task_id']}/updates", data=body, headers=headers)


def test_the_server_rebuilds_a_q8_delta_update_and_refuses_bad_ones(h):
    task = h.create_task(max_change_ratio=None, max_change_vs_recent=None, direction_guard=False,
                         aggregator={"name": "fedasync", "alpha": 0.5, "staleness": "constant"})
    alice = h.join(task, "alice")
    version, x0 = h.model(task["id"], alice["token"])
    rng = np.random.default_rng(0)
    local = (x0 + rng.normal(0, 0.01, x0.size)).astype(np.float32)
    body, _ = encode_q8_delta(array("f", local.tobytes()), array("f", x0.tobytes()))
    assert len(body) == encoded_size("q8-delta", x0.size)
    state = h.state()
    hostile = {
        "one byte short": body[:-1],
        "one byte long": body + b"\0",
        "a NaN scale": struct.pack("<f", float("nan")) + body[4:],
        "a negative scale": struct.pack("<f", -1.0) + body[4:],
        "a huge scale": struct.pack("<f", 3e38) + body[4:],
        "raw float32 sent as q8-delta": local.tobytes(),
    }
    for name, bad in hostile.items():
        r = post(h, alice, bad, 0, "q8-delta")
        assert r.status_code in (400, 413), (name, r.status_code, r.json)
        assert h.state() == state, name  # nothing stored
    for bad_encoding in ("f16", "Q8-DELTA", "q8-delta ", "", "f32;q8", "\u0661"):
        r = post(h, alice, body, 0, bad_encoding)
        assert r.status_code == 400, (bad_encoding, r.json)
    assert h.state() == state
    r = post(h, alice, body, 0, "q8-delta", gz=True)
    assert r.status_code == 201, r.json
    assert r.json["status"] == "applied"
    _, x1 = h.model(task["id"], alice["token"])
    rebuilt = x0 + np.frombuffer(decode_q8_delta(body, x0.size), np.float32)
    np.testing.assert_allclose(x1, x0 + 0.5 * (rebuilt - x0), atol=1e-6)
    np.testing.assert_allclose(rebuilt, local, atol=0.01 * 6 / 127)  # within half a step of the true change
