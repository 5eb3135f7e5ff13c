"""Every endpoint that needs a token refuses the wrong ones (derived from the OpenAPI doc,
so a new endpoint cannot skip this matrix)."""
from __future__ import annotations

import pytest

from api_helpers import Harness
from server.openapi import document


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("auth"))
    mine, other = h.create_task("mine"), h.create_task("other")
    return h, mine, h.join(mine), h.join(other)


def _cases():
    for path, ops in document()["paths"].items():
        for method, op in ops.items():
            if "security" in op:
                yield path, method.upper(), {k for s in op["security"] for k in s}


CASES = list(_cases())


def _url(path: str, task_id: str) -> str:
    return path.replace("{task_id}", task_id).replace("{name}", "manifest.json").replace("{code}", "X")


@pytest.mark.parametrize("path, method, schemes", CASES, ids=[f"{m} {p}" for p, m, _ in CASES])
def test_auth_matrix(world, path, method, schemes):
    h, mine, me, stranger = world
    url = _url(path, mine["id"])
    before = h.state()

    def call(token: str | None):
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return h.client.open(url, method=method, headers=headers, data=b"")

    for token, expected in ((None, 401), ("not-a-real-token", 401)):
        r = call(token)
        assert r.status_code == expected, (token, r.json)
        assert set(r.json) == {"error", "detail"}
    if "participantToken" in schemes:
        assert call(stranger["token"]).status_code == 403  # another task's participant
    else:
        assert call(me["token"]).status_code == 403        # participant on an admin endpoint
    if "adminToken" not in schemes:
        from api_helpers import ADMIN

        assert call(ADMIN).status_code == 403
    assert h.state() == before


def test_admin_token_is_stored_only_as_a_hash(world):
    h, *_ = world
    from api_helpers import ADMIN

    db_bytes = (h.data_dir / "webfl.sqlite3").read_bytes()
    assert ADMIN.encode() not in db_bytes


def test_participant_tokens_are_stored_only_as_hashes(world):
    h, _, me, stranger = world
    rows = h.ext.db.connect().execute("SELECT * FROM clients").fetchall()
    assert all(me["token"] not in tuple(map(str, r)) and stranger["token"] not in tuple(map(str, r)) for r in rows)
