"""Refused attempts by authenticated principals are themselves access-logged (HIPAA audit
controls: who tried to read what they may not), without changing the answer they get."""

from __future__ import annotations

import json

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import access_log as access_store
from auditagent.store import db
from tests.support.api import access_rows, auth, make_token, record_conversation


def _denials(url: str, principal: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db.libpq_url(url)) as conn:
        return conn.execute(
            "SELECT action, tenant, session_id, detail->>'status', reason FROM access_log"
            " WHERE principal_name = %s AND (detail->>'denied')::boolean ORDER BY seq",
            (principal,),
        ).fetchall()


def test_refusals_are_logged_for_the_data_owner_and_only_admins_see_who(
    client: TestClient,
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    tenant: str,
) -> None:
    url = settings.database_url or ""
    rec = record_conversation(settings, keyring, tenant=tenant)
    other = f"{tenant}-secret-C"
    intruder = auth(make_token(engine, "auditor", other, name="auditor@secret-tenant-C"), "curious")
    # another tenant's session: 404 as for a missing one
    r = client.get(
        f"/v1/sessions/{rec.session_id}/transcript", headers={**intruder, "X-Request-ID": "req-1"}
    )
    assert r.status_code == 404
    # a tenant filter outside the key's scope: 403
    r = client.get(f"/v1/sessions?tenant={tenant}", headers={**intruder, "X-Request-ID": "req-2"})
    assert r.status_code == 403
    # an admin-only route (within the caller's own tenant): 403
    r = client.get("/v1/admin/apikeys", headers={**intruder, "X-Request-ID": "req-3"})
    assert r.status_code == 403

    # The data owner's auditor sees that refused attempts happened, but not who made them.
    owner = auth(make_token(engine, "auditor", tenant, name="owner-auditor"))
    seen = client.get("/v1/access-log", headers=owner).json()["items"]
    denied = [e for e in seen if e["detail"].get("denied")]
    assert [(e["action"], e["session_id"], e["correlation_id"]) for e in denied] == [
        ("tenant.denied", None, "req-2"),
        ("session.denied", str(rec.session_id), "req-1"),
    ]
    for e in denied:
        assert (e["principal_id"], e["principal_name"], e["role"], e["reason"]) == (None,) * 4
        assert isinstance(e["detail"]["ref"], int)
    assert "secret-tenant-C" not in json.dumps(seen)
    # ... and the session's own log shows the refusal, no read
    assert [a for (_, a, *_rest) in access_rows(url, rec.session_id)] == ["session.denied"] * 2

    # A tenantless admin follows the reference to the caller's identity.
    admin = auth(make_token(engine, "admin", None))
    every = client.get("/v1/access-log?limit=500", headers=admin).json()["items"]
    by_seq = {e["seq"]: e for e in every}
    for e in denied:
        who = by_seq[e["detail"]["ref"]]
        assert who["tenant"] is None and who["detail"]["target_tenant"] == tenant
        assert (who["principal_name"], who["reason"]) == ("auditor@secret-tenant-C", "curious")
        assert who["correlation_id"] == e["correlation_id"]
    # The caller's refusal inside its own tenant is one row with its identity.
    own = client.get(f"/v1/access-log?tenant={other}", headers=admin).json()["items"]
    assert [
        (e["action"], e["principal_name"], e["correlation_id"])
        for e in own
        if e["detail"].get("denied")
    ] == [("admin.denied", "auditor@secret-tenant-C", "req-3")]
    assert access_store.verify_access_log(engine).ok


def test_missing_session_and_bad_token_are_not_logged(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    tenant: str,
) -> None:
    import uuid

    url = settings.database_url or ""
    h = auth(make_token(engine, "auditor", tenant, name="lost-reader"))
    assert client.get(f"/v1/sessions/{uuid.uuid4()}", headers=h).status_code == 404
    # an unauthenticated caller has no identity to log; it is counted by status in /metrics
    assert client.get("/v1/sessions", headers=auth("aa_not-a-token")).status_code == 401
    assert _denials(url, "lost-reader") == []
