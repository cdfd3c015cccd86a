"""`GET /v1/search`: tenant scope, roles, pages, bad input, the access log, erasure and holds.

Done when: a word a user said in one tenant's call finds that call for that tenant's auditor,
nothing for another tenant, nothing after the session is erased, and is nowhere in the database.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from tests.search.support import record
from tests.support.api import auth, make_token
from tests.support.helpers import assert_no_plaintext

WORD = "Zebrafinch"


@pytest.fixture
def settings(fresh_settings: Settings) -> Settings:
    """A database of its own: erasure signs into a change log only one keyring may sign."""
    return fresh_settings


def _ids(res: Any) -> list[str]:
    assert res.status_code == 200, res.text
    return [item["session"]["id"] for item in res.json()["items"]]


def _index_rows(settings: Settings, sid: uuid.UUID) -> int:
    with psycopg.connect(db.libpq_url(settings.database_url or "")) as conn:
        row = conn.execute("SELECT count(*) FROM search_index WHERE session_id = %s", (sid,))
        got = row.fetchone()
    assert got is not None
    return int(got[0])


def _assert_not_in_pg_dump(settings: Settings, *words: str) -> None:
    """Neither the word (any case) nor an unkeyed SHA-256 of it anywhere in a pg_dump."""
    if shutil.which("pg_dump") is None:  # the row-by-row check above still ran
        return
    out = subprocess.run(
        ["pg_dump", "--no-owner", db.libpq_url(settings.database_url or "")],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout.lower()
    assert b"search_index" in out
    for w in words:
        digest = hashlib.sha256(w.encode()).digest()
        for form in (w.encode(), digest.hex().encode(), digest[:8].hex().encode()):
            assert form not in out, f"{w!r} found in the dump as {form!r}"


def test_search_is_tenant_scoped_confirmed_logged_and_forgets_erased_sessions(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
) -> None:
    s = settings
    alice = record(
        s,
        keyring,
        tenant="acme",
        participant="alice",
        lines=[
            ("user", f"my card was stolen, {WORD} please"),
            ("agent", "the refund is guaranteed"),
        ],
    )
    bob = record(
        s,
        keyring,
        tenant="acme",
        participant="bob",
        lines=[
            ("user", f"{WORD.lower()} again"),
            ("tool", "transfer_funds"),
        ],
    )
    other = record(s, keyring, tenant="globex", lines=[("user", f"a {WORD} at globex")])
    acme = auth(make_token(engine, "auditor", "acme"))
    globex = auth(make_token(engine, "auditor", "globex"))
    admin = auth(make_token(engine, "admin", None))

    res = client.get("/v1/search", params={"q": WORD}, headers=acme)
    assert set(_ids(res)) == {str(alice), str(bob)}
    hit = next(i for i in res.json()["items"] if i["session"]["id"] == str(alice))["hits"][0]
    assert hit["role"] == "user" and hit["seq"] == 1
    assert hit["snippet"][hit["match_start"] : hit["match_end"]] == WORD
    assert _ids(client.get("/v1/search", params={"q": WORD}, headers=globex)) == [str(other)]
    denied = client.get("/v1/search", params={"q": WORD, "tenant": "acme"}, headers=globex)
    assert denied.status_code == 403
    # A tenantless admin searches every tenant, or the one named.
    assert set(_ids(client.get("/v1/search", params={"q": WORD}, headers=admin))) == {
        str(alice),
        str(bob),
        str(other),
    }
    q = {"q": WORD, "tenant": "globex"}
    assert _ids(client.get("/v1/search", params=q, headers=admin)) == [str(other)]

    # Roles, phrases and tools.
    assert _ids(client.get("/v1/search", params={"q": WORD, "role": "agent"}, headers=acme)) == []
    q = {"q": '"refund is guaranteed"', "role": "agent"}
    assert _ids(client.get("/v1/search", params=q, headers=acme)) == [str(alice)]
    q = {"q": "transfer_funds declined", "role": "tool"}
    assert _ids(client.get("/v1/search", params=q, headers=acme)) == [str(bob)]
    # A session-list filter narrows the search the same way.
    q = {"q": WORD, "participant": "bob"}
    assert _ids(client.get("/v1/search", params=q, headers=acme)) == [str(bob)]
    # ... and across tenants for a tenantless admin (the identity's index under each tenant).
    assert _ids(client.get("/v1/search", params=q, headers=admin)) == [str(bob)]

    # Pages: one session each, newest first, then no cursor.
    first = client.get("/v1/search", params={"q": WORD, "limit": 1}, headers=acme).json()
    assert [i["session"]["id"] for i in first["items"]] == [str(bob)]
    params = {"q": WORD, "limit": 1, "cursor": first["next_cursor"]}
    second = client.get("/v1/search", params=params, headers=acme).json()
    assert [i["session"]["id"] for i in second["items"]] == [str(alice)]

    # Every search is in the access log, its query only as a keyed MAC.
    log = client.get("/v1/access-log", params={"limit": 500}, headers=admin).json()["items"]
    searches = [e for e in log if e["action"] == "search"]
    assert searches and all(len(e["detail"]["query_mac"]) == 64 for e in searches)
    assert_no_plaintext(s.database_url or "", None, WORD, WORD.lower(), "guaranteed")
    _assert_not_in_pg_dump(s, WORD.lower(), "guaranteed")

    # A legal hold keeps bob's session and its index; erasing alice takes hers.
    res = client.post(
        "/v1/holds",
        json={"scope": "participant", "tenant": "acme", "participant": "bob", "reason": "M-1"},
        headers=admin,
    )
    assert res.status_code == 201, res.text
    erase = {"tenant": "acme", "participant": "bob", "reason": "DSR-2"}
    assert client.post("/v1/erasure", json=erase, headers=admin).status_code == 409
    erase = {"tenant": "acme", "participant": "alice", "reason": "DSR-1"}
    res = client.post("/v1/erasure", json=erase, headers=admin)
    assert res.status_code == 200, res.text
    assert _index_rows(s, alice) == 0 and _index_rows(s, bob) > 0
    assert _ids(client.get("/v1/search", params={"q": WORD}, headers=acme)) == [str(bob)]
    assert _ids(client.get("/v1/search", params={"q": "guaranteed"}, headers=acme)) == []
