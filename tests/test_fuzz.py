"""Property-based fuzzing of every endpoint: no 5xx, and a refused request changes nothing."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_helpers import ADMIN, Harness
from server.openapi import document

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("fuzz"))
    task = h.create_task(max_update_norm=50.0)
    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    return h, task, joined, x0


def _assert_refusal_is_clean(h, response, before):
    assert response.status_code < 500, response.data[:300]
    if response.status_code >= 400:
        assert set(response.json) == {"error", "detail"}
        assert h.state() == before


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@FUZZ
@given(base=st.one_of(st.integers(-5, 10**6).map(str), header_text),
       samples=st.one_of(st.integers(-5, 10**9).map(str), header_text),
       key=header_text,
       metrics=st.one_of(json_values.map(json.dumps), header_text),
       encoding=st.sampled_from(["", "gzip", "br", "identity", "x"]),
       body_kind=st.sampled_from(["random", "right-size", "nan", "huge-values", "empty"]),
       noise=st.binary(max_size=512))
def test_fuzz_updates(world, base, samples, key, metrics, encoding, body_kind, noise):
    h, task, joined, x0 = world
    if body_kind == "random":
        body = noise
    elif body_kind == "right-size":
        body = (x0 + np.float32(0.001)).astype("<f4").tobytes()
    elif body_kind == "nan":
        body = np.full(x0.size, np.nan, "<f4").tobytes()
    elif body_kind == "huge-values":
        body = np.full(x0.size, 3e38, "<f4").tobytes()
    else:
        body = b""
    before = h.state()
    r = h.post_update(joined, body, 0, headers={"X-WebFL-Base-Version": base, "X-WebFL-Samples": samples,
                                                "Idempotency-Key": key, "X-WebFL-Metrics": metrics,
                                                "Content-Encoding": encoding})
    _assert_refusal_is_clean(h, r, before)


@FUZZ
@given(body=json_values)
def test_fuzz_join(world, body):
    h, *_ = world
    before = h.state()
    r = h.client.post("/api/join", data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code < 500
    if r.status_code >= 400:
        assert h.state() == before


@FUZZ
@given(title=json_values, config=json_values)
def test_fuzz_admin_create_and_edit(world, title, config):
    h, task, *_ = world
    before = h.state()
    r = h.admin("POST", "/api/admin/tasks", json={"title": title, "config": config}, )
    _assert_refusal_is_clean(h, r, before)
    if r.status_code == 201:  # a valid random task: fine, but keep the world small
        h.ext.tasks.wait_for_build(r.json["id"])
        return
    before = h.state()
    r = h.admin("PATCH", f"/api/admin/tasks/{task['id']}", json={"title": title, "config": config})
    assert r.status_code < 500, r.data[:300]
    if r.status_code >= 400:
        assert h.state() == before


ROUTES = [(path, method.upper()) for path, ops in document()["paths"].items() for method in ops]


@FUZZ
@given(route=st.sampled_from(ROUTES), segment=st.text(max_size=40), query=st.text(max_size=40),
       body=st.binary(max_size=256), who=st.sampled_from(["none", "admin", "participant", "junk"]),
       junk=header_text)
def test_fuzz_every_route(world, route, segment, query, body, who, junk):
    h, task, joined, _ = world
    path, method = route
    url = (path.replace("{task_id}", task["id"] if segment == "" else segment)
           .replace("{name}", segment or "checkpoint").replace("{code}", segment or task["join_code"]))
    token = {"none": None, "admin": ADMIN, "participant": joined["token"], "junk": junk or "x"}[who]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    before = h.state()
    from urllib.parse import quote

    r = h.client.open(quote(url, safe="/") + "?" + quote(query, safe="=&"), method=method, headers=headers, data=body)
    assert r.status_code < 500, (url, method, r.data[:300])
    if r.status_code >= 400 and method != "GET":
        assert h.state() == before
