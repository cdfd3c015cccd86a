"""Legal holds at each scope against retention and erasure, erasure with and without a hold,
and the admin API: policies (floor 422), holds, erasure (409 naming the hold), runs, and the
410-with-deletion-record answer for an erased session while the others still verify. Holds
and erasures say what they cover and refuse to match nothing; records written after an
erasure are deleted; the app role cannot change what decides expiry; the deletion report and
its signed certificate."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from auditagent import records as r
from auditagent import retention
from auditagent.cli import main
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import access_log, db, principals
from auditagent.store.holds import list_holds
from auditagent.store.runs import get_run
from tests.support import retention as rs
from tests.support.retention import deletion_rows, record_sessions, state


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
    assert [h.id for h in list_holds(engine, include_released=True)] == [hold.id]
    assert list_holds(engine) == []


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
    run = get_run(engine, report.run_id)  # type: ignore[arg-type]
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


def _auth(engine: Engine, role: str, tenant: str | None) -> dict[str, str]:
    _, token = principals.create_principal(
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
    assert res.status_code == 409
    assert res.headers["content-type"].startswith("application/problem+json")
    assert "floor of 7 days" in res.json()["detail"]
    assert res.json()["type"].endswith("/below-retention-floor")
    res = client.put("/v1/retention/policies", json={"tenant": "acme"}, headers=admin)
    assert res.status_code == 422 and "at least a day" in res.json()["detail"]
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
    assert hold["active"] and hold["scope"] == "participant" and hold["sessions_covered"] == 1
    nobody = {"scope": "participant", "tenant": "acme", "participant": "nobody", "reason": "M-2"}
    res = client.post("/v1/holds", json=nobody, headers=admin)
    assert res.status_code == 404 and "would cover no session" in res.json()["detail"]
    res = client.post("/v1/holds", json={**nobody, "allow_empty": True}, headers=admin)
    assert res.status_code == 201 and res.json()["sessions_covered"] == 0
    client.post(f"/v1/holds/{res.json()['id']}/release", json={"reason": "x"}, headers=admin)
    unknown = {"scope": "tenant", "tenant": "no-such", "reason": "M-3", "allow_empty": True}
    assert client.post("/v1/holds", json=unknown, headers=admin).status_code == 404
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
    assert len(client.get("/v1/holds?include_released=true", headers=admin).json()["items"]) == 2
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


# --- issue 17: actions that say what they matched ----------------------------------------------


def test_holds_and_erasures_say_what_they_cover_and_refuse_to_match_nothing(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    record_sessions(fresh_settings, keyring, [("acme", "alice", "x"), ("acme", "alice", "y")])
    hold = retention.create_hold(
        engine,
        keyring,
        scope="participant",
        tenant="acme",
        participant="alice",
        reason="M-1",
        created_by="counsel",
    )
    assert hold.sessions_covered == 2
    whole = retention.create_hold(
        engine, keyring, scope="tenant", tenant="acme", reason="M-2", created_by="counsel"
    )
    assert whole.sessions_covered == 2
    released = retention.release_hold(
        engine, whole.id, released_by="counsel", reason="done", tenant=None, key_provider=keyring
    )
    assert released.sessions_covered == 2
    # A mistyped identity (or another keyring) matches nothing: an error, not a silent no-op.
    with pytest.raises(retention.MatchesNothing, match="would cover no session"):
        retention.create_hold(
            engine,
            keyring,
            scope="participant",
            tenant="acme",
            participant="alcie",
            reason="M-3",
            created_by="counsel",
        )
    early = retention.create_hold(
        engine,
        keyring,
        scope="participant",
        tenant="acme",
        participant="carol",
        reason="M-3",
        created_by="counsel",
        allow_empty=True,
    )
    assert early.sessions_covered == 0
    # A tenant that does not exist is refused, even with allow_empty.
    with pytest.raises(retention.UnknownTenant, match="no tenant 'acmee'"):
        retention.create_hold(
            engine,
            keyring,
            scope="tenant",
            tenant="acmee",
            reason="M-4",
            created_by="counsel",
            allow_empty=True,
        )
    with pytest.raises(retention.UnknownTenant):
        retention.erase_participant(
            engine,
            keyring,
            settings=fresh_settings,
            tenant="acmee",
            participant="alice",
            reason="DSR",
            requested_by="dpo",
            allow_empty=True,
        )
    with pytest.raises(retention.MatchesNothing, match="matches no session"):
        retention.erase_participant(
            engine,
            keyring,
            settings=fresh_settings,
            tenant="acme",
            participant="alcie",
            reason="DSR",
            requested_by="dpo",
        )
    assert len(list_holds(engine)) == 2  # nothing was placed by the refused calls


def test_cli_holds_and_erasure_take_the_identity_from_stdin_or_a_file(
    cli_env: Settings,
    keyring: LocalKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    a1, a2, bob = record_sessions(
        cli_env, keyring, [("acme", "alice", "x"), ("acme", "alice", "y"), ("acme", "bob", "x")]
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO("alice\n"))
    args = ["holds", "add", "--tenant", "acme", "--participant", "-", "--reason", "M-9"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "scope participant" in out and "covering 2 sessions" in out
    hold_id = out.split()[1]
    monkeypatch.setattr(sys, "stdin", io.StringIO("alcie\n"))
    assert main(args) == 2  # MatchesNothing: one line naming the fix
    _, err = capsys.readouterr()
    assert "would cover no session" in err and "--allow-empty" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["holds", "add", "--tenant", "nope", "--whole-tenant", "--reason", "x"]) == 2
    assert "no tenant 'nope'" in capsys.readouterr().err
    assert main(["holds", "release", hold_id, "--reason", "settled"]) == 0
    assert "it covered 2 sessions" in capsys.readouterr().out

    who = tmp_path / "dsr.txt"
    who.write_text("alice\n")
    erase = ["erasure", "--tenant", "acme", "--participant-file", str(who), "--reason", "DSR-3"]
    assert main([*erase, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "2 sessions matched, 2 shredded, 2 purged (10 events)" in out
    assert "checkpoint written" in out
    for s in (a1, a2):
        assert state(cli_env, s.session_id) == ("purged", 0, False)
    assert state(cli_env, bob.session_id) == ("closed", 5, True)
    assert main([*erase, "--yes"]) == 2
    assert "matches no session" in capsys.readouterr().err
    assert main([*erase, "--yes", "--allow-empty"]) == 0
    assert "0 sessions matched" in capsys.readouterr().out
    # No identity went to the access log, the runs or the deletion records.
    for table in ("access_log", "retention_runs", "deletion_records", "retention_changes"):
        dump = str(rs.sql_rows(cli_env, f"SELECT * FROM {table}"))
        assert "alice" not in dump, table


def test_records_written_after_an_erasure_are_deleted(
    cli_env: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def go() -> uuid.UUID:
        async with AuditRecorder(cli_env, key_provider=keyring) as recorder:
            rec = recorder.open_session(tenant="acme", participant="alice")
            rec.add(r.UserUtterance(at=datetime.now(timezone.utc), text="first", source="stt"))
            await recorder.flush()
            report = await asyncio.to_thread(
                retention.erase_participant,
                engine,
                keyring,
                settings=cli_env,
                tenant="acme",
                participant="alice",
                reason="DSR-5",
                requested_by="dpo",
            )
            assert report.sessions_deleted == 1
            # The call goes on after the erasure: its records land under a destroyed key.
            rec.add(
                r.UserUtterance(at=datetime.now(timezone.utc), text="zanzibarquokka", source="stt")
            )
            rec.close(reason="done")
            await recorder.flush()
            return rec.session_id

    sid = asyncio.run(go())
    status, left, wrapped = state(cli_env, sid)
    assert (status, wrapped) == ("purged", False) and left == 2
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 1 and f"session {sid}: 2 records written after it was erased" in out
    # The next run deletes them, and the proof holds again.
    assert main(["retention", "run", "--yes"]) == 0
    assert state(cli_env, sid) == ("purged", 0, False)
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 0, out


def test_app_role_cannot_change_what_decides_expiry_but_still_records() -> None:
    from tests.support.databases import ADMIN_URL, create_database, drop_database, server_url

    role = f"aa_app_{uuid.uuid4().hex[:6]}"
    name = create_database()
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        owner_url = db.sqlalchemy_url(server_url(name))
        db.upgrade(
            Settings(database_url=owner_url, db_app_role=role, data_dir=Path("/nonexistent")),
            url=owner_url,
        )
        base, _, dbname = server_url(name).rpartition("/")
        app_url = base.replace("postgres@", f"{role}@", 1) + "/" + dbname
        with tempfile.TemporaryDirectory() as tmp:
            app = Settings(database_url=app_url, data_dir=Path(tmp), flush_interval=0.05)
            keys = LocalKeyring.init(app.resolved_keyring_path)
            # The recorder works as the app role: sessions, keys, events, counts, close.
            (s,) = record_sessions(app, keys, [("acme", "alice", "x")])
            assert state(app, s.session_id) == ("closed", 5, True)
        with psycopg.connect(db.libpq_url(app_url)) as conn:
            for sql in (
                "UPDATE sessions SET ended_at = now() - interval '9 years'",
                'UPDATE sessions SET labels = \'{"agent": "other"}\'',
                "UPDATE sessions SET participant_index = NULL",
                "DELETE FROM sessions",
                "UPDATE data_keys SET wrapped = NULL",
                "DELETE FROM data_keys",
                "INSERT INTO retention_policies (id, tenant, keep_days, created_by) "
                "VALUES (gen_random_uuid(), 'acme', 1, 'x')",
                "UPDATE legal_holds SET released_at = now()",
                "DELETE FROM legal_holds",
                "INSERT INTO deletion_records (seq, session_id, tenant, policy, reason, "
                "event_count, deleted_at, prev_hash, hash) "
                "VALUES (0, gen_random_uuid(), 'acme', 'x', 'x', 0, now(), '', '')",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql)
                conn.rollback()
    finally:
        drop_database(name)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


# --- issue 17: the examiner's report ----------------------------------------------------------


def test_deletions_api_report_and_signed_certificate(
    client: TestClient,
    cli_env: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    acme, beta = record_sessions(
        cli_env, keyring, [("acme", "a", "x"), ("beta", "b", "x")], ended_days_ago=31
    )
    report = retention.run_retention(engine, cli_env, key_provider=keyring)
    assert report.sessions_deleted == 2
    admin = _auth(engine, "admin", None)
    auditor = _auth(engine, "auditor", "acme")
    res = client.get("/v1/deletions", headers=admin)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["valid"] and body["deletion_chain"] == {
        **body["deletion_chain"],
        "ok": True,
        "count": 2,
    }
    assert {i["session_id"] for i in body["items"]} == {str(acme.session_id), str(beta.session_id)}
    item = body["items"][0]
    assert item["valid"] and item["signature"] and item["basis"]["expires_at"]
    assert [r["id"] for r in body["runs"]] == [str(report.run_id)]
    mine = client.get("/v1/deletions", headers=auditor).json()
    assert [i["session_id"] for i in mine["items"]] == [str(acme.session_id)]
    assert client.get("/v1/deletions?tenant=beta", headers=auditor).status_code == 403
    # The certificate: signed, checked offline against the published key.
    res = client.get("/v1/deletions/certificate?tenant=acme", headers=admin)
    assert res.status_code == 200 and "attachment" in res.headers["content-disposition"]
    cert = tmp_path / "cert.json"
    cert.write_bytes(res.content)
    public = base64.b64encode(keyring.signing_public_key()).decode()
    assert main(["retention", "report", "--check", str(cert), "--public-key", public]) == 0
    assert "valid, 1 deletion records and 1 runs" in capsys.readouterr().out
    doc = json.loads(res.content)
    doc["body"]["deletion_records"][0]["basis"]["expires_at"] = "2020-01-01T00:00:00.000000Z"
    cert.write_text(json.dumps(doc))
    assert main(["retention", "report", "--check", str(cert), "--public-key", public]) == 1
    assert "INVALID" in capsys.readouterr().out
    # The CLI report says the same and writes the same kind of bundle.
    out_file = tmp_path / "cli-cert.json"
    assert main(["retention", "report", "--tenant", "beta", "--bundle", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert f"session {beta.session_id} tenant=beta retention" in out and ": valid" in out
    assert "1/1 deletion records valid, 1 runs; deletion chain valid (2 records)" in out
    assert main(["retention", "report", "--check", str(out_file)]) == 0
    # Reading deletions is access-logged like any read.
    actions = [e.entry.action for e in access_log.list_access_log(engine, limit=50)]
    assert actions.count("deletions.list") == 2 and "deletions.certificate" in actions


def test_erased_session_is_410_and_verifies_only_with_its_deletion_record(
    client: TestClient, fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    silent, erased = record_sessions(
        fresh_settings, keyring, [("acme", "alice", "x"), ("acme", "bob", "x")]
    )
    # A superuser destroys a key with no deletion record (the guard trigger forbids it).
    rs.superuser_sql(
        fresh_settings,
        (
            "UPDATE data_keys SET wrapped = NULL, shredded_at = now() WHERE session_id = %s",
            (silent.session_id,),
        ),
        disable=("data_keys.data_keys_guard",),
    )
    retention.erase_participant(
        engine,
        keyring,
        settings=fresh_settings,
        tenant="acme",
        participant="bob",
        reason="DSR-1",
        requested_by="dpo",
    )
    h = _auth(engine, "auditor", "acme")
    for rec in (silent, erased):
        for suffix in ("/transcript", "/events", "/export"):
            res = client.get(f"/v1/sessions/{rec.session_id}{suffix}", headers=h)
            assert res.status_code == 410
            assert res.json()["type"].endswith("/erased")
    bad = client.get(f"/v1/sessions/{silent.session_id}/verify", headers=h).json()
    assert bad["ok"] is False and bad["erased"] is True and bad["deletion_record"] is None
    assert "without a deletion record" in bad["reason"]
    # Legitimately erased and purged: erased, with its record — not "chain truncated".
    good = client.get(f"/v1/sessions/{erased.session_id}/verify", headers=h).json()
    assert good["ok"] is True and good["erased"] is True, good
    assert good["deletion_record"]["reason"] == "erasure" and good["deletion_record"]["valid"]
    assert good["events"] == 5
    detail = client.get(f"/v1/sessions/{erased.session_id}", headers=h).json()
    assert detail["integrity"]["ok"] is True and detail["integrity"]["erased"] is True
