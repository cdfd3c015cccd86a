"""Legal holds at each scope against retention and erasure, erasure with and without a hold,
and the admin API: policies (floor 422), holds, erasure (409 naming the hold), runs, and the
410-with-deletion-record answer for an erased session while the others still verify."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from auditagent_api import create_app
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent import retention
from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import admin as store_admin
from auditagent.store import retention as store
from tests import retention_support as rs
from tests.retention_support import deletion_rows, record_sessions, state

engine = rs.engine
fresh_settings = rs.fresh_settings
keyring = rs.keyring


@pytest.mark.parametrize("scope", ["session", "participant", "tenant"])
def test_hold_at_each_scope_survives_retention_until_released(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine, scope: str
) -> None:
    held, other_tenant, same_tenant = record_sessions(
        fresh_settings,
        keyring,
        [("acme", "alice", "x"), ("beta", "alice", "x"), ("acme", "bob", "x")],
        ended_days_ago=400,
    )
    hold = retention.create_hold(
        engine,
        keyring,
        scope=scope,  # type: ignore[arg-type]
        tenant="acme",
        reason="matter 2026-17",
        created_by="counsel",
        session_id=held.session_id,
        participant="alice",
    )
    report = retention.run_retention(engine, fresh_settings)
    kept = {held.session_id} | ({same_tenant.session_id} if scope == "tenant" else set())
    assert report.sessions_skipped_held == len(kept)
    for s in (held, other_tenant, same_tenant):
        expected = ("closed", 5, True) if s.session_id in kept else ("purged", 0, False)
        assert state(fresh_settings, s.session_id) == expected, s

    # Released (recorded with who, when, why): the next run deletes what it kept.
    released = retention.release_hold(
        engine,
        hold.id,
        released_by="counsel",
        reason="matter closed",
        tenant=None,
        key_provider=keyring,
    )
    assert released.released_by == "counsel" and released.release_reason == "matter closed"
    assert released.released_at is not None
    with pytest.raises(retention.Conflict, match="already released"):
        retention.release_hold(
            engine, hold.id, released_by="x", reason="again", tenant=None, key_provider=keyring
        )
    again = retention.run_retention(engine, fresh_settings)
    assert again.sessions_deleted == len(kept) and again.sessions_skipped_held == 0
    assert [h.id for h in store.list_holds(engine, include_released=True)] == [hold.id]
    assert store.list_holds(engine) == []


def test_erasure_shreds_and_purges_every_session_of_the_participant(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    a1, a2, bob, other = record_sessions(
        fresh_settings,
        keyring,
        [
            ("acme", "alice", "x"),
            ("acme", "alice", "y"),
            ("acme", "bob", "x"),
            ("beta", "alice", "x"),
        ],
    )
    report = retention.erase_participant(
        engine,
        keyring,
        settings=fresh_settings,
        tenant="acme",
        participant="alice",
        reason="DSR-881",
        requested_by="dpo",
        batch_size=2,
    )
    assert report.ok and report.sessions_deleted == 2 and report.events_deleted == 10
    for s in (a1, a2):
        assert state(fresh_settings, s.session_id) == ("purged", 0, False)
    # Same identity in another tenant is another person as far as the index goes.
    for s in (bob, other):
        assert state(fresh_settings, s.session_id) == ("closed", 5, True)
    rows = deletion_rows(fresh_settings)
    assert {r[1] for r in rows} == {a1.session_id, a2.session_id}
    assert {(r[2], r[3]) for r in rows} == {("erasure", "erasure")}
    run = store.get_run(engine, report.run_id)  # type: ignore[arg-type]
    assert run is not None
    assert (run.trigger, run.reason, run.requested_by) == ("erasure", "DSR-881", "dpo")
    # Erasing again matches nothing: an error, unless the operator says that is expected.
    with pytest.raises(retention.MatchesNothing, match="matches no session"):
        retention.erase_participant(
            engine,
            keyring,
            settings=fresh_settings,
            tenant="acme",
            participant="alice",
            reason="DSR-881",
            requested_by="dpo",
        )
    again = retention.erase_participant(
        engine,
        keyring,
        settings=fresh_settings,
        tenant="acme",
        participant="alice",
        reason="DSR-881",
        requested_by="dpo",
        allow_empty=True,
    )
    assert again.candidates == [] and again.ok


def test_erasure_is_blocked_by_a_hold_naming_it(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    a1, a2 = record_sessions(
        fresh_settings, keyring, [("acme", "alice", "x"), ("acme", "alice", "y")]
    )
    hold = retention.create_hold(
        engine,
        keyring,
        scope="session",
        tenant="acme",
        reason="litigation",
        created_by="counsel",
        session_id=a2.session_id,
    )
    with pytest.raises(retention.ErasureBlocked, match=f"legal hold {hold.id}"):
        retention.erase_participant(
            engine,
            keyring,
            settings=fresh_settings,
            tenant="acme",
            participant="alice",
            reason="DSR",
            requested_by="dpo",
        )
    # Nothing at all was erased: not even the session the hold does not name.
    for s in (a1, a2):
        assert state(fresh_settings, s.session_id) == ("closed", 5, True)
    assert deletion_rows(fresh_settings) == []


# --- API --------------------------------------------------------------------------------------


@pytest.fixture
def client(fresh_settings: Settings, engine: Engine, keyring: LocalKeyring) -> Iterator[TestClient]:
    app = create_app(fresh_settings, engine=engine, key_provider=keyring)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _auth(engine: Engine, role: str, tenant: str | None) -> dict[str, str]:
    _, token = store_admin.create_principal(
        engine, role=role, tenant=tenant, name=f"{role}-{tenant or 'all'}"
    )
    return {"Authorization": f"Bearer {token}", "X-Audit-Reason": "ticket 42"}


def test_api_policies_floor_and_admin_only(client: TestClient, engine: Engine) -> None:
    admin = _auth(engine, "admin", "acme")
    auditor = _auth(engine, "auditor", "acme")
    assert client.get("/v1/retention/policies", headers=auditor).status_code == 403
    res = client.put(
        "/v1/retention/policies", json={"tenant": "acme", "keep_days": 3}, headers=admin
    )
    assert res.status_code == 422
    assert res.headers["content-type"].startswith("application/problem+json")
    assert "floor of 7 days" in res.json()["detail"]
    res = client.put(
        "/v1/retention/policies",
        json={"tenant": "acme", "agent": "intake", "keep_days": 90},
        headers=admin,
    )
    assert res.status_code == 200 and res.json()["tenant"] == "acme"
    assert "admin-acme" in res.json()["created_by"]
    # Another tenant is out of scope for a tenant-bound admin.
    res = client.put(
        "/v1/retention/policies", json={"tenant": "beta", "keep_days": 90}, headers=admin
    )
    assert res.status_code == 403
    listed = client.get("/v1/retention/policies", headers=admin).json()
    assert listed["default_keep_days"] == 30 and listed["floor_days"] == 7
    assert [(p["agent"], p["keep_days"]) for p in listed["items"]] == [("intake", 90)]
    assert (
        client.delete("/v1/retention/policies?tenant=acme&agent=intake", headers=admin).status_code
        == 204
    )
    assert (
        client.delete("/v1/retention/policies?tenant=acme&agent=intake", headers=admin).status_code
        == 404
    )


def test_api_holds_erasure_409_and_erased_session_410_with_deletion_record(
    client: TestClient, fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    alice, bob = record_sessions(
        fresh_settings, keyring, [("acme", "alice", "x"), ("acme", "bob", "x")]
    )
    admin = _auth(engine, "admin", None)
    auditor = _auth(engine, "auditor", "acme")
    res = client.post(
        "/v1/holds",
        json={"scope": "participant", "tenant": "acme", "participant": "alice", "reason": "M-1"},
        headers=admin,
    )
    assert res.status_code == 201, res.text
    hold = res.json()
    assert hold["active"] and hold["scope"] == "participant"
    assert "alice" not in res.text  # the identity is stored only as its blind index
    assert (
        client.post("/v1/holds", json={"scope": "tenant", "reason": "x"}, headers=admin).status_code
        == 422
    )
    assert (
        client.post(
            "/v1/holds", json={"scope": "tenant", "tenant": "acme", "reason": "x"}, headers=auditor
        ).status_code
        == 403
    )

    # The session detail shows the hold.
    detail = client.get(f"/v1/sessions/{alice.session_id}", headers=auditor).json()
    assert [h["id"] for h in detail["legal_holds"]] == [hold["id"]]

    erase = {"tenant": "acme", "participant": "alice", "reason": "DSR-7"}
    res = client.post("/v1/erasure", json=erase, headers=admin)
    assert res.status_code == 409
    assert res.headers["content-type"].startswith("application/problem+json")
    body = res.json()
    assert hold["id"] in body["detail"] and body["legal_holds"][0]["id"] == hold["id"]
    assert state(fresh_settings, alice.session_id) == ("closed", 5, True)

    res = client.post(f"/v1/holds/{hold['id']}/release", json={"reason": "settled"}, headers=admin)
    assert res.status_code == 200 and res.json()["released_by"].startswith("admin-all")
    assert client.get("/v1/holds", headers=admin).json()["items"] == []
    assert len(client.get("/v1/holds?include_released=true", headers=admin).json()["items"]) == 1
    assert (
        client.post(
            f"/v1/holds/{hold['id']}/release", json={"reason": "x"}, headers=admin
        ).status_code
        == 409
    )

    res = client.post("/v1/erasure", json=erase, headers=admin)
    assert res.status_code == 200, res.text
    out = res.json()
    assert out["sessions_deleted"] == 1 and out["events_deleted"] == 5
    (record,) = out["deletion_records"]
    assert record["session_id"] == str(alice.session_id) and record["reason"] == "erasure"

    for suffix in ("/transcript", "/events", "/export"):
        res = client.get(f"/v1/sessions/{alice.session_id}{suffix}", headers=auditor)
        assert res.status_code == 410, suffix
        gone = res.json()
        assert gone["type"].endswith("/erased")
        assert gone["deletion_record"]["hash"] == record["hash"]
        assert gone["deletion_record"]["event_count"] == 5
    # The remaining session still reads and verifies.
    assert (
        client.get(f"/v1/sessions/{bob.session_id}/transcript", headers=auditor).status_code == 200
    )
    assert client.get(f"/v1/sessions/{bob.session_id}/verify", headers=auditor).json()["ok"] is True


def test_api_retention_run_dry_then_real(
    client: TestClient, fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    (old,) = record_sessions(fresh_settings, keyring, [("acme", "a", "x")], ended_days_ago=31)
    (new,) = record_sessions(fresh_settings, keyring, [("acme", "b", "x")])
    admin = _auth(engine, "admin", "acme")
    dry = client.post("/v1/retention/runs", headers=admin).json()
    assert dry["dry_run"] and dry["sessions_planned"] == 1 and dry["run_id"] is None
    assert dry["sessions"][0]["session_id"] == str(old.session_id)
    assert state(fresh_settings, old.session_id)[0] == "closed"
    real = client.post("/v1/retention/runs?dry_run=false", headers=admin).json()
    assert real["complete"] and real["sessions_deleted"] == 1 and real["events_deleted"] == 5
    assert uuid.UUID(real["run_id"])
    assert state(fresh_settings, new.session_id) == ("closed", 5, True)
