"""Authentication, roles and tenant scope: the full role x tenant x endpoint matrix."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import principals as principal_store
from auditagent.store.principals import InvalidPrincipal
from tests.support.api import access_rows, auth, make_token, record_conversation

# (method, path template, kind): "list" endpoints take ?tenant=, "session" ones a session id.
ENDPOINTS = [
    ("GET", "/v1/sessions?tenant={tenant}", "list"),
    ("GET", "/v1/sessions/{sid}", "session"),
    ("GET", "/v1/sessions/{sid}/transcript", "session"),
    ("GET", "/v1/sessions/{sid}/events", "session"),
    ("GET", "/v1/sessions/{sid}/verify", "session"),
    ("GET", "/v1/sessions/{sid}/export", "session"),
    ("GET", "/v1/access-log?tenant={tenant}", "list"),
    ("GET", "/v1/analytics/latency?tenant={tenant}", "list"),
    ("GET", "/v1/admin/apikeys", "admin"),
]

# Principal: (role, tenant is "A" / "B" / None). Session and filter are in tenant A.
PRINCIPALS = {
    "auditor-A": ("auditor", "A"),
    "auditor-B": ("auditor", "B"),
    "admin-A": ("admin", "A"),
    "admin-B": ("admin", "B"),
    "admin-all": ("admin", None),
}


def expected(principal: str, kind: str) -> int:
    role, tenant = PRINCIPALS[principal]
    if kind == "admin":
        return 200 if role == "admin" else 403
    if tenant in ("A", None):
        return 200
    # Another tenant: an explicit tenant filter is 403, a session id is 404 (no existence leak).
    return 403 if kind == "list" else 404


@pytest.fixture
def world(
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
) -> dict[str, object]:
    suffix = uuid.uuid4().hex[:6]
    tenants = {"A": f"a-{suffix}", "B": f"b-{suffix}"}
    rec = record_conversation(settings, keyring, tenant=tenants["A"])
    tokens = {
        name: make_token(engine, role, tenants[t] if t else None, name=f"{name}-{suffix}")
        for name, (role, t) in PRINCIPALS.items()
    }
    return {"tenants": tenants, "session": rec.session_id, "tokens": tokens}


@pytest.mark.parametrize("principal", list(PRINCIPALS))
@pytest.mark.parametrize(("method", "template", "kind"), ENDPOINTS)
def test_role_tenant_matrix(
    client: TestClient,
    world: dict[str, object],
    principal: str,
    method: str,
    template: str,
    kind: str,
) -> None:
    tenants: dict[str, str] = world["tenants"]  # type: ignore[assignment]
    tokens: dict[str, str] = world["tokens"]  # type: ignore[assignment]
    path = template.format(tenant=tenants["A"], sid=world["session"])
    res = client.request(method, path, headers=auth(tokens[principal]))
    assert res.status_code == expected(principal, kind), res.text
    if res.status_code >= 400:
        assert res.headers["content-type"].startswith("application/problem+json")
        assert res.json()["status"] == res.status_code


@pytest.mark.parametrize(("method", "template", "kind"), ENDPOINTS)
def test_missing_and_bad_tokens_are_401(
    client: TestClient,
    world: dict[str, object],
    method: str,
    template: str,
    kind: str,
) -> None:
    tenants: dict[str, str] = world["tenants"]  # type: ignore[assignment]
    path = template.format(tenant=tenants["A"], sid=world["session"])
    for headers in (
        {},
        {"Authorization": "Bearer aa_not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        res = client.request(method, path, headers=headers)
        assert res.status_code == 401, (headers, res.text)
        assert res.headers["www-authenticate"].startswith("Bearer")
        assert res.headers["content-type"].startswith("application/problem+json")


def test_auditor_without_tenant_filter_sees_only_its_tenant(
    client: TestClient,
    world: dict[str, object],
) -> None:
    tokens: dict[str, str] = world["tokens"]  # type: ignore[assignment]
    tenants: dict[str, str] = world["tenants"]  # type: ignore[assignment]
    res = client.get("/v1/sessions", headers=auth(tokens["auditor-B"]))
    assert res.status_code == 200
    assert all(item["tenant"] == tenants["B"] for item in res.json()["items"])
    res = client.get("/v1/sessions", headers=auth(tokens["auditor-A"]), params={"limit": 500})
    assert str(world["session"]) in {item["id"] for item in res.json()["items"]}
    assert {item["tenant"] for item in res.json()["items"]} == {tenants["A"]}


def test_revoked_token_gets_401(
    client: TestClient,
    world: dict[str, object],
    engine: Engine,
) -> None:
    tokens: dict[str, str] = world["tokens"]  # type: ignore[assignment]
    tenants: dict[str, str] = world["tenants"]  # type: ignore[assignment]
    token = make_token(engine, "auditor", tenants["A"])
    assert client.get("/v1/sessions", headers=auth(token)).status_code == 200
    keys = client.get("/v1/admin/apikeys", headers=auth(tokens["admin-A"])).json()["items"]
    key_id = next(k["id"] for k in keys if token.startswith(k["token_prefix"]))
    # A tenant-bound admin cannot revoke another tenant's keys: 404, as if absent.
    res = client.post(f"/v1/admin/apikeys/{key_id}/revoke", headers=auth(tokens["admin-B"]))
    assert res.status_code == 404
    assert client.get("/v1/sessions", headers=auth(token)).status_code == 200
    res = client.post(f"/v1/admin/apikeys/{key_id}/revoke", headers=auth(tokens["admin-A"]))
    assert res.status_code == 200 and res.json()["revoked_at"] is not None
    res = client.get("/v1/sessions", headers=auth(token))
    assert res.status_code == 401
    assert "invalid_token" in res.headers["www-authenticate"]
    # An auditor may not revoke at all.
    res = client.post(f"/v1/admin/apikeys/{key_id}/revoke", headers=auth(tokens["auditor-A"]))
    assert res.status_code == 403


def test_admin_key_list_never_contains_tokens(
    client: TestClient,
    world: dict[str, object],
) -> None:
    tokens: dict[str, str] = world["tokens"]  # type: ignore[assignment]
    body = client.get("/v1/admin/apikeys", headers=auth(tokens["admin-all"])).text
    for token in tokens.values():
        assert token not in body


def test_auditor_without_tenant_is_refused_at_creation(engine: Engine) -> None:
    with pytest.raises(InvalidPrincipal, match="needs a tenant"):
        principal_store.create_principal(engine, role="auditor", tenant=None, name="x")
    with pytest.raises(InvalidPrincipal, match="unknown role"):
        principal_store.create_principal(engine, role="root", tenant=None, name="x")


def test_audit_reason_is_recorded(
    client: TestClient,
    world: dict[str, object],
    settings: Settings,
) -> None:
    tokens: dict[str, str] = world["tokens"]  # type: ignore[assignment]
    sid = world["session"]
    assert isinstance(sid, uuid.UUID)
    res = client.get(
        f"/v1/sessions/{sid}/transcript", headers=auth(tokens["auditor-A"], "ticket CASE-17")
    )
    assert res.status_code == 200
    rows = access_rows(settings.database_url or "", sid)
    _, action, principal_name, reason = rows[-1]
    assert (action, reason) == ("sessions.transcript", "ticket CASE-17")
    assert str(principal_name).startswith("auditor-A-")
