"""Property-based fuzzing of every endpoint: no 5xx, and a refused request changes nothing."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_helpers import ADMIN, Harness
from server.openapi import document

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([2**63, -(2**63) - 1, 10**30]) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    """One instance per backend: every hostile input meets the embedded SQLite default and
    PostgreSQL alike (integers past 64 bits, huge strings, deep JSON reach both drivers)."""
    url = request.getfixturevalue("pg_cluster").new_database() if request.param == "postgresql" else ""
    h = Harness(tmp_path_factory.mktemp("fuzz"), DATABASE_URL=url)
    task = h.create_task(max_update_norm=50.0, user_study=True)
    joined = h.join(task)
    # agreed to the study, so hostile study events meet the whole validation, not only "no consent"
    r = h.client.post(f"/api/tasks/{task['id']}/study/consent", json={"agreed": True},
                      headers={"Authorization": f"Bearer {joined['token']}"})
    assert r.status_code == 200
    _, x0 = h.model(task["id"], joined["token"])
    yield h, task, joined, x0
    h.close()


def _assert_refusal_is_clean(h, response, before):
    assert response.status_code < 500, response.data[:300]
    if response.status_code >= 400:
        assert set(response.json) == {"error", "detail"}
        assert h.state() == before


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@FUZZ
@given(base=st.one_of(st.integers(-5, 10**6).map(str), st.integers().map(str), header_text),
       samples=st.one_of(st.integers(-5, 10**9).map(str), st.integers().map(str), header_text,
                         st.sampled_from(["9223372036854775808", "1" + "0" * 20, "١٢", "1_0"])),
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
@given(encoding=st.sampled_from(["q8-delta"] * 6 + ["f32", "Q8-delta", "q8", "\u0661", "x" * 300]),
       scale=st.one_of(st.floats(width=32), st.sampled_from([0.0, 5e-45, float("inf"), 3.4028235e38])),
       code=st.integers(-128, 127), kind=st.sampled_from(["uniform", "noise", "short", "long", "gzip"]),
       noise=st.binary(min_size=1, max_size=64))
def test_fuzz_q8_delta_updates(world, encoding, scale, code, kind, noise):
    """The 8-bit change encoding (browser_py/update_encoding.py): any block scale, any codes,
    any length, under any declared encoding: a clean answer, and a refusal changes nothing."""
    import gzip
    import struct

    from browser_py.update_encoding import blocks

    h, task, joined, x0 = world
    n = x0.size
    scales = struct.pack("<f", scale) * blocks(n)
    codes = bytes([code & 0xFF]) * n if kind != "noise" else (noise * (n // len(noise) + 1))[:n]
    body = {"short": (scales + codes)[:-1], "long": scales + codes + b"\0"}.get(kind, scales + codes)
    headers = {"X-WebFL-Encoding": encoding}
    if kind == "gzip":
        body, headers = gzip.compress(body), headers | {"Content-Encoding": "gzip"}
    version, _ = h.model(task["id"], joined["token"])  # on the newest: a good one can be merged
    before = h.state()
    r = h.post_update(joined, body, version, headers=headers)
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


CONDITIONAL = ["If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since", "Range", "If-Range"]


@FUZZ
@given(route=st.sampled_from([r for r in ROUTES if r[1] == "GET"]), header=st.sampled_from(CONDITIONAL),
       value=st.one_of(header_text, st.sampled_from(['"' + "a" * 100_000 + '"', "*", 'W/"x", "y"', "bytes=0-",
                                                     "bytes=-1", "bytes=99999999999999999999-", "bytes=5-2,0-0",
                                                     "Tue, 31 Dec 9999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT",
                                                     "١٢٣", ","])))
def test_fuzz_conditional_headers(world, route, header, value):
    """ETags make some answers conditional: hostile If-*/Range headers change no status to a 5xx."""
    h, task, joined, _ = world
    path, _ = route
    url = path.replace("{task_id}", task["id"]).replace("{name}", "checkpoint").replace("{code}", task["join_code"])
    r = h.client.get(url, headers={"Authorization": f"Bearer {joined['token']}", header: value})
    assert r.status_code < 500, (url, header, value[:40], r.data[:300])


# --- every declared field of every operation, with hostile values --------------------------

HOSTILE_NUMBERS = [2**63, 2**64 + 1, -(2**63) - 1, 10**20, 10**4000, -1, 0, 1.7976931348623157e308,
                   -1.7976931348623157e308, 5e-324, 1e308 * 10, 0.5, True, None]
HOSTILE_TEXT = ["١٢٣", "１２", "²", "1_000", " 12 ", "+5", "-0", "0x10", "1e3", "9" * 19, "9" * 5000,
                "x" * 300_000, "\x00", "\u202e", "😀" * 100, "", "[]", "{}", "null"]
DEEP = ["[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000]
WIDE = ["[" + ",".join(["0"] * 50_000) + "]", "{" + ",".join(f'"k{i}":{i}' for i in range(20_000)) + "}"]

hostile_value = st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(HOSTILE_TEXT),
                          st.integers(), st.floats(), st.text(max_size=50),
                          st.sampled_from(DEEP + WIDE),
                          json_values)


def _operations() -> list[tuple[str, str, str, str]]:
    """(path, method, location, field) for every parameter and JSON body property declared."""
    doc = document()
    schemas = doc["components"]["schemas"]
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                out.append((path, method.upper(), p["in"], p["name"]))
            ref = (op.get("requestBody", {}).get("content", {}).get("application/json", {})
                   .get("schema", {}).get("$ref"))
            if ref:
                body = schemas[ref.rsplit("/", 1)[-1]]
                for name in body["properties"]:
                    out.append((path, method.upper(), "body", name))
                if "config" in body["properties"]:
                    out += [(path, method.upper(), "config", n) for n in schemas["TaskConfig"]["properties"]]
                    out.append((path, method.upper(), "extension-param", "clip"))
                    out += [(path, method.upper(), "aggregator", n)
                            for m in ("FedAsyncParams", "FedBuffParams", "FedAvgParams")
                            for n in schemas[m]["properties"]]
                out.append((path, method.upper(), "raw-body", ""))
    return out


OPERATIONS = _operations()


def _as_header(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(op=st.sampled_from(OPERATIONS), value=hostile_value, raw=st.sampled_from(DEEP + WIDE + HOSTILE_TEXT),
       who=st.sampled_from(["participant", "admin"]), aggregator=st.sampled_from(["fedasync", "fedbuff", "fedavg"]))
def test_fuzz_every_declared_field_with_extremes(world, op, value, raw, who, aggregator):
    """Each declared header, query, path segment and JSON field, one at a time, set to an
    extreme (integers past 64 bits, float64's maximum, other scripts' digits, deep and wide
    JSON, huge strings): never a 5xx, and a refusal leaves the database and files as they were."""
    from urllib.parse import quote

    h, task, joined, x0 = world
    path, method, where, name = op
    token = ADMIN if who == "admin" else joined["token"]
    headers = {"Authorization": f"Bearer {token}"}
    query = {}
    segments = {"task_id": task["id"], "code": task["join_code"], "name": "checkpoint", "client_id": "nobody"}
    body: bytes | None = None
    if method == "POST" and path.endswith("/updates"):
        headers |= {"X-WebFL-Base-Version": "0", "X-WebFL-Samples": "10", "Idempotency-Key": os.urandom(8).hex(),
                    "X-WebFL-Metrics": '{"loss": 0.5}', "Content-Type": "application/octet-stream"}
        body = (x0 + np.float32(1e-4)).astype("<f4").tobytes()
    json_body = {"/api/join": {"code": task["join_code"], "name": "fuzz"},
                 "/api/admin/tasks": {"title": "fuzz", "config": {"classes": ["a", "b"]}},
                 "/api/admin/tasks/{task_id}": {"title": "fuzz", "config": {}}}.get(path)
    if where == "header":  # HTTP cannot carry a raw line break in a header value: no client can send one
        headers[name] = _as_header(value)[:10_000].replace("\r", " ").replace("\n", " ")
    elif where == "query":
        query[name] = _as_header(value)
    elif where == "path":
        segments[name] = _as_header(value)[:2000] or "x"
    elif where == "body":
        json_body = dict(json_body or {}) | {name: value}
    elif where == "config":
        json_body = dict(json_body or {}) | {"config": {"classes": ["a", "b"], name: value}}
    elif where == "extension-param":  # a real extension's parameter, any value
        json_body = dict(json_body or {}) | {"config": {"classes": ["a", "b"], "extensions": [
            {"name": "local_dp", "params": {name: value, "seed": 3, "mode": "text"}}]}}
    elif where == "aggregator":
        json_body = dict(json_body or {}) | {"config": {"classes": ["a", "b"],
                                                        "aggregator": {"name": aggregator, name: value}}}
    if where == "raw-body":
        body, headers["Content-Type"] = raw.encode(), "application/json"
    elif json_body is not None and method in ("POST", "PATCH"):
        try:
            body = json.dumps(json_body).encode()
        except (ValueError, OverflowError):
            body = str(json_body).encode()
        headers["Content-Type"] = "application/json"
    url = path
    for key, seg in segments.items():
        url = url.replace("{" + key + "}", quote(seg, safe=""))
    if query:
        url += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
    before = h.state()
    r = h.client.open(url, method=method, headers=headers, data=body)
    assert r.status_code < 500, (op, str(value)[:200], r.data[:300])
    if r.status_code >= 400:
        assert set(r.json) == {"error", "detail"}, r.data[:300]
        assert h.state() == before, (op, str(value)[:200])
    elif path.startswith("/api/admin/tasks") and method in ("POST", "PATCH") and "id" in (r.json or {}):
        h.ext.tasks.wait_for_build(r.json["id"])  # a rebuild it started finishes before the next example
