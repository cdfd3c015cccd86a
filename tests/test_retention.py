"""Retention policies at their boundary times, the run (shred, batched delete, mark purged),
interruption and resume, the deletion-record chain and the CLI contract (one stdout line)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from auditagent import retention
from auditagent.cli import main
from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from auditagent.store import retention as store
from tests import retention_support as rs
from tests.retention_support import deletion_rows, record_sessions, set_ended, state

# Fixtures used by this module (pytest finds them as module attributes).
engine = rs.engine
fresh_settings = rs.fresh_settings
keyring = rs.keyring

US = timedelta(microseconds=1)


def _ids(report: retention.RunReport) -> set[uuid.UUID]:
    return {c.session_id for c in report.candidates}


def test_default_policy_boundary_is_exclusive(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    (s,) = record_sessions(fresh_settings, keyring, [("acme", "alice", "intake")])
    expiry = s.ended_at + timedelta(days=fresh_settings.retention_default_days)
    at_expiry = retention.run_retention(engine, fresh_settings, now=expiry, dry_run=True)
    assert at_expiry.candidates == []
    after = retention.run_retention(engine, fresh_settings, now=expiry + US, dry_run=True)
    assert _ids(after) == {s.session_id}
    assert after.candidates[0].policy == "default keep_days=30"
    # A dry run changes nothing.
    assert state(fresh_settings, s.session_id) == ("closed", 5, True)


def test_agent_policy_beats_tenant_policy_beats_default(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    sessions = record_sessions(
        fresh_settings,
        keyring,
        [("acme", "a", "intake"), ("acme", "b", "billing"), ("other", "c", "intake")],
    )
    base = sessions[0].ended_at
    for s in sessions:
        set_ended(fresh_settings, s.session_id, base)
    retention.set_policy(
        engine, fresh_settings, tenant="acme", agent=None, keep_days=60, created_by="test"
    )
    retention.set_policy(
        engine, fresh_settings, tenant="acme", agent="intake", keep_days=10, created_by="test"
    )
    intake, billing, other = (s.session_id for s in sessions)

    def expired(days: int) -> set[uuid.UUID]:
        now = base + timedelta(days=days) + US
        return _ids(retention.run_retention(engine, fresh_settings, now=now, dry_run=True))

    assert expired(9) == set()
    assert expired(10) == {intake}
    assert expired(30) == {intake, other}  # other tenant: the 30-day default
    assert expired(60) == {intake, other, billing}
    # Replacing a policy keeps one row per (tenant, agent), including the tenant-wide one.
    retention.set_policy(
        engine, fresh_settings, tenant="acme", agent=None, keep_days=20, created_by="test2"
    )
    assert expired(20) == {intake, other, billing} - {other}
    assert len(store.list_policies(engine, tenant="acme")) == 2
    retention.remove_policy(
        engine,
        fresh_settings,
        tenant="acme",
        agent="intake",
        removed_by="test",
        key_provider=keyring,
    )
    assert expired(10) == set()


def test_policy_below_floor_is_refused_naming_the_floor(
    fresh_settings: Settings, engine: Engine
) -> None:
    with pytest.raises(retention.PolicyBelowFloor, match="floor of 7 days"):
        retention.set_policy(
            engine, fresh_settings, tenant="acme", agent=None, keep_days=6, created_by="t"
        )
    assert store.list_policies(engine) == []


def test_run_shreds_deletes_and_records_each_session(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    (old,) = record_sessions(fresh_settings, keyring, [("acme", "a", "intake")], ended_days_ago=31)
    (young,) = record_sessions(fresh_settings, keyring, [("acme", "b", "intake")])
    report = retention.run_retention(engine, fresh_settings, batch_size=2)
    assert report.ok and report.sessions_deleted == 1 and report.events_deleted == 5
    assert state(fresh_settings, old.session_id) == ("purged", 0, False)
    assert state(fresh_settings, young.session_id) == ("closed", 5, True)
    rows = deletion_rows(fresh_settings)
    assert len(rows) == 1
    seq, sid, policy, reason, count, final_hash, run_id = rows[0]
    assert (seq, sid, reason, count, run_id) == (0, old.session_id, "retention", 5, report.run_id)
    assert policy == "default keep_days=30"
    assert final_hash is not None
    assert retention.verify_deletion_chain(engine).ok
    run = store.get_run(engine, report.run_id)  # type: ignore[arg-type]
    assert run is not None and run.status == "complete" and run.events_deleted == 5
    # Rerunning finds nothing more to do.
    again = retention.run_retention(engine, fresh_settings)
    assert again.candidates == [] and len(deletion_rows(fresh_settings)) == 1


def test_interrupted_run_resumes_without_a_second_deletion_record(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    a, b = record_sessions(
        fresh_settings, keyring, [("acme", "a", "x"), ("acme", "b", "x")], ended_days_ago=31
    )
    first = retention.run_retention(engine, fresh_settings, batch_size=2, max_batches=2)
    assert not first.complete and not first.ok
    assert "interrupted" in first.summary()
    # The first session was shredded before any row went: unreadable already, rows half gone.
    status, left, wrapped = state(fresh_settings, a.session_id)
    assert (status, wrapped) == ("shredded", False) and left == 1
    assert state(fresh_settings, b.session_id) == ("closed", 5, True)

    # A crash in the middle of the next run (raised from the progress hook).
    def crash(done: int, total: int, events: int) -> None:
        if events >= 1:
            raise retention.RunInterrupted()

    with pytest.raises(retention.RunInterrupted):
        retention.run_retention(engine, fresh_settings, batch_size=2, progress=crash)

    final = retention.run_retention(engine, fresh_settings, batch_size=2)
    assert final.ok
    assert state(fresh_settings, a.session_id) == ("purged", 0, False)
    assert state(fresh_settings, b.session_id) == ("purged", 0, False)
    rows = deletion_rows(fresh_settings)
    assert sorted(r[1] for r in rows) == sorted([a.session_id, b.session_id])  # type: ignore[type-var]
    assert all(r[4] == 5 for r in rows)
    assert retention.verify_deletion_chain(engine).ok


def test_deleting_events_needs_a_shredded_session(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    (s,) = record_sessions(fresh_settings, keyring, [("acme", "a", "x")])
    assert store.delete_event_batch(engine, s.session_id, batch_size=100) == 0
    assert state(fresh_settings, s.session_id) == ("closed", 5, True)
    # And outside this module the database still refuses.
    assert fresh_settings.database_url
    with (
        psycopg.connect(db.libpq_url(fresh_settings.database_url)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM events WHERE session_id = %s", (s.session_id,))


def test_deletion_record_chain_detects_an_edited_record(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    record_sessions(
        fresh_settings, keyring, [("acme", "a", "x"), ("acme", "b", "x")], ended_days_ago=31
    )
    retention.run_retention(engine, fresh_settings)
    assert retention.verify_deletion_chain(engine).ok
    assert fresh_settings.database_url
    with psycopg.connect(db.libpq_url(fresh_settings.database_url)) as conn:
        conn.execute("ALTER TABLE deletion_records DISABLE TRIGGER deletion_records_append_only")
        conn.execute("UPDATE deletion_records SET event_count = 2 WHERE seq = 0")
        conn.execute("ALTER TABLE deletion_records ENABLE TRIGGER deletion_records_append_only")
    result = retention.verify_deletion_chain(engine)
    assert not result.ok and result.first_bad_seq == 0 and "altered" in (result.reason or "")


@pytest.fixture
def cli_env(
    fresh_settings: Settings, keyring: LocalKeyring, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    assert fresh_settings.database_url
    monkeypatch.setenv("AUDITAGENT_DATABASE_URL", fresh_settings.database_url)
    monkeypatch.setenv("AUDITAGENT_DATA_DIR", str(fresh_settings.data_dir))
    monkeypatch.setenv("AUDITAGENT_RETENTION_DEFAULT_DAYS", "30")
    monkeypatch.setenv("AUDITAGENT_RETENTION_FLOOR_DAYS", "7")
    return fresh_settings


def test_cli_run_prints_one_line_and_refuses_without_yes(
    cli_env: Settings, keyring: LocalKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    (s,) = record_sessions(cli_env, keyring, [("acme", "a", "x")], ended_days_ago=31)

    assert main(["retention", "run", "--dry-run"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        "retention dry run: would delete 1 sessions (5 events), 0 held sessions kept"
    ]

    # Not a terminal and no --yes: says what it would do, refuses, changes nothing.
    assert main(["retention", "run"]) == 2
    out, err = capsys.readouterr()
    assert "would delete 1 sessions" in out
    assert "pass --yes" in err and len(err.strip().splitlines()) == 1
    assert state(cli_env, s.session_id)[0] == "closed"

    assert main(["retention", "run", "--yes", "--batch-size", "2"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1
    assert "complete: 1 sessions matched, deleted 1 sessions (5 events)" in lines[0]
    assert lines[0].endswith("checkpoint written")
    assert err == ""  # no progress bar without a terminal
    assert state(cli_env, s.session_id) == ("purged", 0, False)


def test_cli_interrupted_run_exits_non_zero(
    cli_env: Settings, keyring: LocalKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    (s,) = record_sessions(cli_env, keyring, [("acme", "a", "x")], ended_days_ago=31)
    args = ["retention", "run", "--yes", "--batch-size", "1"]
    assert main([*args, "--max-batches", "1"]) == 1
    assert "interrupted" in capsys.readouterr().out
    assert main(args) == 0
    assert state(cli_env, s.session_id) == ("purged", 0, False)


def test_cli_policy_floor_is_one_line(
    cli_env: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["retention", "policy", "set", "--tenant", "acme", "--keep-days", "3"]) == 2
    _, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "retention floor of 7 days" in err
    assert main(["retention", "policy", "set", "--tenant", "acme", "--keep-days", "90"]) == 0
    assert main(["retention", "policy", "list"]) == 0
    out, _ = capsys.readouterr()
    assert "tenant=acme agent=* keep_days=90" in out
