"""Refused attempts by authenticated principals are themselves access-logged (HIPAA audit
controls: who tried to read what they may not), without changing the answer they get."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import admin as store_admin
from auditagent.store import db
from tests.api_support import (  # noqa: F401
    access_rows,
    auth,
    client,
    engine,
    keyring,
    make_token,
    record_conversation,
)


def _denials(url: str, principal: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db.libpq_url(url)) as conn:
        return conn.execute(
            "SELECT action, tenant, session_id, detail->>'status', reason FROM access_log"
            " WHERE principal_name = %s AND (detail->>'denied')::boolean ORDER BY seq",
            (principal,),
        ).fetchall()


def test_refusals_are_logged_for_the_data_owner(
    client: TestClient,  # noqa: F811
    settings: Settings,
    keyring: LocalKeyring,  # noqa: F811
    engine: Engine,  # noqa: F811
    tenant: str,
) -> None:
    url = settings.database_url or ""
    rec = record_conversation(settings, keyring, tenant=tenant)
    other = f"{tenant}-other"
    intruder = auth(make_token(engine, "auditor", other, name="intruder"), "curious")
    # another tenant's session: 404 as for a missing one, logged under the owner's tenant
    r = client.get(f"/v1/sessions/{rec.session_id}/transcript", headers=intruder)
    assert r.status_code == 404
    # a tenant filter outside the key's scope: 403
    assert client.get(f"/v1/sessions?tenant={tenant}", headers=intruder).status_code == 403
    # an admin-only route: 403
    assert client.get("/v1/admin/apikeys", headers=intruder).status_code == 403
    assert _denials(url, "intruder") == [
        ("session.denied", tenant, rec.session_id, "404", "curious"),
        ("tenant.denied", tenant, None, "403", "curious"),
        ("admin.denied", other, None, "403", "curious"),
    ]
    # the refusal reads nothing: no row claims a successful read of the session
    assert [a for (_, a, *_rest) in access_rows(url, rec.session_id)] == ["session.denied"]
    assert store_admin.verify_access_log(engine).ok


def test_missing_session_and_bad_token_are_not_logged(
    client: TestClient,  # noqa: F811
    settings: Settings,
    engine: Engine,  # noqa: F811
    tenant: str,
) -> None:
    import uuid

    url = settings.database_url or ""
    h = auth(make_token(engine, "auditor", tenant, name="lost-reader"))
    assert client.get(f"/v1/sessions/{uuid.uuid4()}", headers=h).status_code == 404
    # an unauthenticated caller has no identity to log; it is counted by status in /metrics
    assert client.get("/v1/sessions", headers=auth("aa_not-a-token")).status_code == 401
    assert _denials(url, "lost-reader") == []
