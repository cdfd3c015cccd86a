"""Retention policies at their boundary times, the run (shred, batched delete, mark purged),
interruption and resume, the deletion-record chain and the CLI contract (one stdout line)."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from auditagent import retention
from auditagent.cli import main
from auditagent.integrity.encoding import ts
from auditagent.integrity.ledgers import deletion_record_hash
from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db, purge_rows
from auditagent.store.locks import db_clock
from auditagent.store.policies import list_policies
from auditagent.store.runs import get_run
from tests.support import retention as rs
from tests.support.retention import deletion_rows, record_sessions, set_ended, sql_rows, state

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
    assert len(list_policies(engine, tenant="acme")) == 2
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
    assert list_policies(engine) == []


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
    run = get_run(engine, report.run_id)  # type: ignore[arg-type]
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
    assert purge_rows.delete_event_batch(engine, s.session_id, batch_size=100) == 0
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
    # Nothing left: no confirmation needed, and the (empty) run is still recorded and signed.
    assert main(["retention", "run"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "complete: 0 sessions matched" in line and line.endswith("checkpoint written")


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


# --- issue 17: a proof the database alone cannot forge -----------------------------------------


def _forge_deletion(settings: Settings, session_id: uuid.UUID) -> None:
    """A superuser appends a correctly chained deletion record for a live session, destroys its
    key, deletes its events and marks it purged: everything but a signature."""
    rows = sql_rows(settings, "SELECT seq, hash FROM deletion_records ORDER BY seq DESC LIMIT 1")
    seq, prev = (int(rows[0][0]) + 1, bytes(rows[0][1])) if rows else (0, bytes(32))  # type: ignore[call-overload]
    ((count, head, tenant),) = sql_rows(
        settings, "SELECT event_count, head_hash, tenant FROM sessions WHERE id = %s", (session_id,)
    )
    deleted_at = datetime.now(timezone.utc).replace(microsecond=0)
    digest = deletion_record_hash(
        prev_hash=prev,
        seq=seq,
        run_id=None,
        session_id=session_id,
        tenant=str(tenant),
        policy="default keep_days=30",
        reason="retention",
        event_count=int(count),  # type: ignore[call-overload]
        final_hash=bytes(head),  # type: ignore[arg-type]
        deleted_at=deleted_at,
    )
    rs.superuser_sql(
        settings,
        (
            "INSERT INTO deletion_records (seq, run_id, session_id, tenant, policy, reason, "
            "event_count, final_hash, deleted_at, prev_hash, hash) VALUES "
            "(%s, NULL, %s, %s, 'default keep_days=30', 'retention', %s, %s, %s, %s, %s)",
            (seq, session_id, tenant, count, head, deleted_at, prev, digest),
        ),
        (
            "UPDATE data_keys SET wrapped = NULL, shredded_at = now() WHERE session_id = %s",
            (session_id,),
        ),
        ("DELETE FROM events WHERE session_id = %s", (session_id,)),
        (
            "UPDATE sessions SET status = 'purged', participant_index = NULL WHERE id = %s",
            (session_id,),
        ),
        disable=(
            "data_keys.data_keys_guard",
            "events.events_append_only",
            "sessions.sessions_guard",
        ),
    )


def test_forged_deletion_record_is_caught_by_the_products_own_checkpoints(
    cli_env: Settings, keyring: LocalKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    (old,) = record_sessions(cli_env, keyring, [("acme", "a", "x")], ended_days_ago=31)
    young, gone = record_sessions(cli_env, keyring, [("acme", "b", "x"), ("acme", "d", "x")])
    # The product deletes the old session and signs a checkpoint by itself at the end.
    assert main(["retention", "run", "--yes"]) == 0
    assert state(cli_env, old.session_id) == ("purged", 0, False)
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 0, out
    _forge_deletion(cli_env, young.session_id)
    # And another session simply disappears after that checkpoint.
    rs.superuser_sql(
        cli_env,
        ("DELETE FROM events WHERE session_id = %s", (gone.session_id,)),
        ("DELETE FROM data_keys WHERE session_id = %s", (gone.session_id,)),
        ("DELETE FROM sessions WHERE id = %s", (gone.session_id,)),
        disable=("events.events_append_only",),
    )
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 1
    assert "deletion record not signed by the checkpoint key" in out
    assert f"session {gone.session_id}: missing from the database" in out
    # The product refuses to build on a forged record: nothing more is deleted.
    (later,) = record_sessions(cli_env, keyring, [("acme", "c", "x")], ended_days_ago=31)
    assert main(["retention", "run", "--yes"]) == 2
    assert "deletion record 1 does not verify" in capsys.readouterr().err
    assert state(cli_env, later.session_id) == ("closed", 5, True)


def test_data_key_destroyed_without_a_deletion_record_is_caught(
    cli_env: Settings, keyring: LocalKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    (s,) = record_sessions(cli_env, keyring, [("acme", "a", "x")])
    rs.checkpoint_write(capsys)
    assert rs.verify_all(cli_env, capsys)[0] == 0
    destroy = (
        "UPDATE data_keys SET wrapped = NULL, shredded_at = now() WHERE session_id = %s",
        (s.session_id,),
    )
    # The database refuses it, whoever asks...
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only with a deletion record"):
        rs.superuser_sql(cli_env, destroy)
    # ...and a superuser who switches the guard off is caught.
    rs.superuser_sql(cli_env, destroy, disable=("data_keys.data_keys_guard",))
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 1
    assert f"session {s.session_id}: data key destroyed without a deletion record" in out


def test_rewritten_end_time_is_caught_and_never_deleted(
    cli_env: Settings,
    keyring: LocalKeyring,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    (s,) = record_sessions(cli_env, keyring, [("acme", "a", "x")])
    rs.checkpoint_write(capsys)
    # ended_at is written once; only a superuser with the guard off can move it.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="written once"):
        rs.superuser_sql(
            cli_env,
            (
                "UPDATE sessions SET ended_at = ended_at - interval '400 days' WHERE id = %s",
                (s.session_id,),
            ),
        )
    set_ended(cli_env, s.session_id, s.ended_at - timedelta(days=400))
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 1
    assert f"session {s.session_id}: ended_at" in out and "the end time was rewritten" in out
    # A run does not delete on the rewritten time; its error names the step.
    assert main(["retention", "run", "--yes"]) == 1
    out, _ = capsys.readouterr()
    assert "1 sessions matched, deleted 0 sessions" in out and "1 errors" in out
    assert "step 'check the basis and shred'" in caplog.text and "rewritten" in caplog.text
    assert state(cli_env, s.session_id) == ("closed", 5, True)


def test_sql_inserted_short_policy_is_caught_and_not_applied(
    cli_env: Settings,
    keyring: LocalKeyring,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    (s,) = record_sessions(cli_env, keyring, [("acme", "a", "x")], ended_days_ago=10)
    (other,) = record_sessions(cli_env, keyring, [("beta", "b", "x")], ended_days_ago=31)
    rs.checkpoint_write(capsys)
    rs.superuser_sql(
        cli_env,
        (
            "INSERT INTO retention_policies (id, tenant, agent, keep_days, created_by) "
            "VALUES (%s, 'acme', NULL, 1, 'mallory')",
            (uuid.uuid4(),),
        ),
    )
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 1
    assert (
        "retention policy tenant=acme agent=* version 1 (keep_days=1) is not in the signed " in out
    )
    assert "under the floor of 7 days" in out
    # The run leaves the tampered tenant alone (an error), and does the rest.
    assert main(["retention", "run", "--yes"]) == 1
    out, _ = capsys.readouterr()
    assert "sessions of tenant acme refused" in out
    assert "not in the signed change log" in caplog.text
    assert state(cli_env, s.session_id) == ("closed", 5, True)
    assert state(cli_env, other.session_id) == ("purged", 0, False)
    # Policies are versioned, never overwritten: not even by the owner.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        rs.superuser_sql(cli_env, ("UPDATE retention_policies SET keep_days = 2", ()))


def test_clock_ahead_of_the_database_cannot_delete_early(
    cli_env: Settings, keyring: LocalKeyring, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    (s,) = record_sessions(cli_env, keyring, [("acme", "a", "x")])
    future = (datetime.now(timezone.utc) + timedelta(days=400)).isoformat()
    # Planning ahead is fine; deleting ahead is not.
    assert main(["retention", "run", "--dry-run", "--now", future]) == 0
    assert "would delete 1 sessions" in capsys.readouterr().out
    assert main(["retention", "run", "--yes", "--now", future]) == 2
    _, err = capsys.readouterr()
    assert "later than the database's" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(retention.ClockAhead):
        retention.run_retention(
            engine,
            cli_env,
            key_provider=keyring,
            now=datetime.now(timezone.utc) + timedelta(days=400),
        )
    assert state(cli_env, s.session_id) == ("closed", 5, True)


def test_default_under_the_floor_is_refused_at_start(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDITAGENT_RETENTION_FLOOR_DAYS", "365")
    for argv in (["retention", "run", "--dry-run"], ["serve"], ["verify", "--all"]):
        assert main(argv) == 2
        _, err = capsys.readouterr()
        assert "default retention (30 days) is shorter than the retention floor (365 days)" in err
    with pytest.raises(ValueError, match="shorter than the retention floor"):
        Settings(retention_default_days=30, retention_floor_days=365)
    # Six years of days is two leap days short of six calendar years.
    with pytest.raises(ValueError, match=r"\(2190 days\) is shorter than .*\(6 years\)"):
        Settings(retention_default_days=2190, retention_floor_days=0, retention_floor_years=6)


def test_floor_holds_at_run_time_for_an_older_shorter_policy(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    (s,) = record_sessions(fresh_settings, keyring, [("acme", "a", "x")], ended_days_ago=20)
    retention.set_policy(
        engine,
        fresh_settings,
        tenant="acme",
        agent=None,
        keep_days=10,
        created_by="t",
        key_provider=keyring,
    )
    assert {c.session_id for c in retention.plan_retention(engine, fresh_settings).candidates} == {
        s.session_id
    }
    raised = Settings(**{**fresh_settings.model_dump(), "retention_floor_days": 30})
    report = retention.run_retention(engine, raised, key_provider=keyring)
    assert report.candidates == [] and state(fresh_settings, s.session_id) == ("closed", 5, True)


def test_six_years_means_six_calendar_years(
    make_database: Callable[[], str],
    data_dir: Path,
) -> None:
    settings = Settings(database_url=make_database(), data_dir=data_dir, retention_floor_days=7)
    assert settings.retention_default == retention.RetentionPeriod(years=6)
    keys = LocalKeyring.init(settings.resolved_keyring_path)
    (s,) = record_sessions(settings, keys, [("acme", "a", "x")])
    eng = db.make_engine(settings)
    try:
        six_years = retention.RetentionPeriod(years=6).add_to(s.ended_at)
        assert (six_years - s.ended_at).days > 2190
        # Any six years hold a leap day: 2190 days after the end it is not due yet.
        late = retention.plan_retention(eng, settings, now=s.ended_at + timedelta(days=2190) + US)
        assert late.candidates == []
        due = retention.plan_retention(eng, settings, now=six_years + US)
        assert [c.expires_at for c in due.candidates] == [six_years]
        # A policy in calendar terms: one year and a month, whatever the month lengths.
        retention.set_policy(
            eng,
            settings,
            tenant="acme",
            agent="x",
            keep_years=1,
            keep_months=1,
            created_by="t",
            key_provider=keys,
        )
        expiry = retention.RetentionPeriod(years=1, months=1).add_to(s.ended_at)
        (c,) = retention.plan_retention(eng, settings, now=expiry + US).candidates
        assert c.expires_at == expiry and "keep_years=1 keep_months=1" in c.policy
    finally:
        eng.dispose()


def test_confirmation_binds_the_run_to_what_it_asked_about(
    cli_env: Settings,
    keyring: LocalKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (asked,) = record_sessions(cli_env, keyring, [("acme", "a", "x")], ended_days_ago=31)
    arrived: list[rs.Recorded] = []

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

        def readline(self, size: int | None = -1) -> str:
            # While the operator reads the prompt, another session becomes due.
            arrived.extend(
                record_sessions(cli_env, keyring, [("acme", "b", "x")], ended_days_ago=31)
            )
            return "y\n"

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert main(["retention", "run"]) == 0
    out, _ = capsys.readouterr()
    assert "1 sessions matched, deleted 1 sessions" in out
    assert state(cli_env, asked.session_id) == ("purged", 0, False)
    assert state(cli_env, arrived[0].session_id) == ("closed", 5, True)


def test_deletion_record_carries_its_basis_and_the_real_time_of_deletion(
    fresh_settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    (s,) = record_sessions(fresh_settings, keyring, [("acme", "a", "intake")], ended_days_ago=31)
    hold = retention.create_hold(
        engine, keyring, scope="tenant", tenant="acme", reason="M-1", created_by="counsel"
    )
    retention.release_hold(
        engine, hold.id, released_by="counsel", reason="done", tenant=None, key_provider=keyring
    )
    an_hour_ago = db_clock(engine) - timedelta(hours=1)
    report = retention.run_retention(engine, fresh_settings, key_provider=keyring, now=an_hour_ago)
    (record,) = report.deletion_records
    assert record.deleted_at > an_hour_ago + timedelta(minutes=59)  # real time, not the run's
    b = record.basis
    assert b is not None
    assert b["ended_at"] == ts(s.ended_at) == b["closed_at"]
    assert b["policy"] is None and b["default"] == {"years": 0, "months": 0, "days": 30}
    assert b["floor"] == {"years": 0, "months": 0, "days": 7}
    assert b["expires_at"] == ts(s.ended_at + timedelta(days=30))
    assert b["run_clock"] == ts(an_hour_ago)
    assert b["holds"]["checked"] and b["holds"]["changes"] == 2  # placed, then released
    assert record.signed_by(keyring.signing_public_key())
    assert retention.verify_deletion_chain(engine, public_key=keyring.signing_public_key()).ok


def test_failing_step_is_named_in_the_error_log(
    fresh_settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (s,) = record_sessions(fresh_settings, keyring, [("acme", "a", "x")], ended_days_ago=31)

    def broken(*args: object, **kwargs: object) -> int:
        raise OSError("disk on fire zanzibarquokka")

    monkeypatch.setattr(purge_rows, "delete_event_batch", broken)
    report = retention.run_retention(engine, fresh_settings, key_provider=keyring)
    assert report.errors == 1 and not report.ok
    (line,) = [r.getMessage() for r in caplog.records if "failed at step" in r.getMessage()]
    assert f"session {s.session_id} failed at step 'delete events' (OSError)" in line
    assert "zanzibarquokka" not in caplog.text  # type names only, never a message


def test_cli_admin_actions_are_access_logged_with_the_operator(
    cli_env: Settings, keyring: LocalKeyring, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    from auditagent.store import access_log

    (s,) = record_sessions(cli_env, keyring, [("acme", "alice", "x")], ended_days_ago=31)
    who = ["--as", "Dana Scully"]
    assert main(["retention", "policy", "set", "--tenant", "acme", "--keep-days", "20", *who]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "holds",
                "add",
                "--tenant",
                "acme",
                "--session",
                str(s.session_id),
                "--reason",
                "M-2",
                *who,
            ]
        )
        == 0
    )
    hold_id = capsys.readouterr().out.split()[1]
    assert main(["holds", "release", hold_id, "--reason", "closed", *who]) == 0
    assert main(["retention", "run", "--yes"]) == 0
    assert main(["retention", "policy", "delete", "--tenant", "acme", *who]) == 0
    entries = list(reversed(access_log.list_access_log(engine, limit=20)))
    actions = [(e.entry.action, e.entry.principal_name) for e in entries]
    me = f"cli:{rs.os_user()}"
    assert actions == [
        ("retention.policies.put", f"Dana Scully (cli, os user {rs.os_user()})"),
        ("holds.create", f"Dana Scully (cli, os user {rs.os_user()})"),
        ("holds.release", f"Dana Scully (cli, os user {rs.os_user()})"),
        ("retention.run", me),
        ("retention.policies.delete", f"Dana Scully (cli, os user {rs.os_user()})"),
    ]
    assert entries[1].entry.session_id == s.session_id and entries[1].entry.reason == "M-2"
    assert entries[3].entry.detail["sessions_matched"] == 1
    assert access_log.verify_access_log(engine).ok
    # The same identity is on the change itself.
    assert list_policies(engine, history=True)[0].created_by.startswith("Dana Scully")


# A CLI run that stalls inside its first batch delete (after the batch committed), so a test
# can signal it at a known point. Only the store function is wrapped; the CLI is the real one.
_STALLED_RUN = """
import sys, time
from auditagent.store import purge_rows as store
from auditagent.cli import main
real = store.delete_event_batch
def stalled(*args, **kwargs):
    n = real(*args, **kwargs)
    open(sys.argv[1], "w").close()
    time.sleep(60)
    return n
store.delete_event_batch = stalled
sys.exit(main(["retention", "run", "--yes", "--batch-size", "1"]))
"""


def _stalled_run(marker: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _STALLED_RUN, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the run never reached its first batch: {proc.communicate()}")
        time.sleep(0.02)
    return proc


def _run_status(settings: Settings) -> list[object]:
    return [
        r[0] for r in sql_rows(settings, "SELECT status FROM retention_runs ORDER BY started_at")
    ]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_run_stopped_by_a_signal_records_it_and_still_prints_its_summary(
    cli_env: Settings,
    keyring: LocalKeyring,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sig: signal.Signals,
    code: int,
) -> None:
    (s,) = record_sessions(cli_env, keyring, [("acme", "a", "x")], ended_days_ago=31)
    proc = _stalled_run(tmp_path / "in-batch")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    (line,) = out.splitlines()
    assert " interrupted: 1 sessions matched, deleted 0 sessions" in line
    assert _run_status(cli_env) == ["interrupted"]
    assert main(["retention", "run", "--yes"]) == 0
    assert state(cli_env, s.session_id) == ("purged", 0, False)


def test_run_killed_with_sigkill_is_marked_interrupted_by_the_next_run(
    cli_env: Settings, keyring: LocalKeyring, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (s,) = record_sessions(cli_env, keyring, [("acme", "a", "x")], ended_days_ago=31)
    proc = _stalled_run(tmp_path / "in-batch")
    proc.kill()
    proc.communicate(timeout=60)
    assert _run_status(cli_env) == ["running"]  # nobody left to say otherwise
    assert main(["retention", "run", "--yes"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "1 earlier runs marked interrupted" in line
    assert _run_status(cli_env) == ["interrupted", "complete"]
    assert state(cli_env, s.session_id) == ("purged", 0, False)


def test_deleted_hold_is_caught_and_its_sessions_kept(
    cli_env: Settings,
    keyring: LocalKeyring,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    (held,) = record_sessions(cli_env, keyring, [("acme", "alice", "x")], ended_days_ago=31)
    (other,) = record_sessions(cli_env, keyring, [("beta", "bob", "x")], ended_days_ago=31)
    args = ["holds", "add", "--tenant", "acme", "--whole-tenant", "--reason", "matter 7"]
    assert main(args) == 0
    hold_id = capsys.readouterr().out.split()[1]
    assert rs.verify_all(cli_env, capsys)[0] == 0  # the hold wrote its own signed note
    # Nobody may delete a hold, or release it behind the log's back...
    for sql in ("DELETE FROM legal_holds", "UPDATE legal_holds SET reason = 'x'"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="legal_holds"):
            rs.superuser_sql(cli_env, (sql, ()))
    # ...but a superuser can, with the guard off.
    rs.superuser_sql(
        cli_env,
        ("DELETE FROM legal_holds WHERE id = %s", (uuid.UUID(hold_id),)),
        disable=("legal_holds.legal_holds_guard",),
    )
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 1
    assert f"legal hold {hold_id} (tenant, tenant acme, placed by cli:" in out
    assert "missing from legal_holds (deleted)" in out
    # The run keeps what the deleted hold protected, and does the rest.
    assert main(["retention", "run", "--yes"]) == 1
    assert "1 sessions of tenant acme refused" in capsys.readouterr().out
    assert state(cli_env, held.session_id) == ("closed", 5, True)
    assert state(cli_env, other.session_id) == ("purged", 0, False)
    # Removing the hold's log entry too is caught by the note it signed outside the database.
    rs.superuser_sql(
        cli_env,
        ("DELETE FROM retention_changes", ()),
        disable=("retention_changes.retention_changes_append_only",),
    )
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 1 and "committed to 1 entries, the database has 0" in out


def test_upgrade_adopts_what_predates_signed_retention(
    cli_env: Settings, keyring: LocalKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    # What a database upgraded to 0017 holds: a policy, a hold and deletion records that
    # nobody signed (written by the previous version, here by SQL).
    (legacy,) = record_sessions(cli_env, keyring, [("acme", "a", "x")], ended_days_ago=400)
    _forge_deletion(cli_env, legacy.session_id)
    rs.superuser_sql(
        cli_env,
        (
            "INSERT INTO retention_policies (id, tenant, agent, keep_days, created_by) "
            "VALUES (%s, 'acme', NULL, 60, 'ops')",
            (uuid.uuid4(),),
        ),
        (
            "INSERT INTO legal_holds (id, scope, tenant, reason, created_by) "
            "VALUES (%s, 'tenant', 'beta', 'M-0', 'counsel')",
            (uuid.uuid4(),),
        ),
    )
    (due,) = record_sessions(cli_env, keyring, [("acme", "b", "x")], ended_days_ago=61)
    (held,) = record_sessions(cli_env, keyring, [("beta", "c", "x")], ended_days_ago=400)
    rs.checkpoint_write(capsys)
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 1 and "not in the signed change log" in out and "not signed" in out
    # Listed first, adopted only with --yes.
    assert main(["retention", "adopt"]) == 0
    out = capsys.readouterr().out
    assert "would adopt 1 policies, 1 holds, 1 deletion records" in out
    assert "policy tenant=acme agent=* keep_days=60 version 1 by ops" in out
    assert main(["retention", "adopt", "--yes", "--as", "ops lead"]) == 0
    assert "adopted 1 policies, 1 holds, 1 deletion records" in capsys.readouterr().out
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 0, out
    # Runs go on from there: the adopted policy applies, the adopted hold holds, and the next
    # signed record chains onto the adopted ones.
    assert main(["retention", "run", "--yes"]) == 0
    assert state(cli_env, due.session_id) == ("purged", 0, False)
    assert state(cli_env, held.session_id) == ("closed", 5, True)
    assert rs.verify_all(cli_env, capsys)[0] == 0
    assert main(["retention", "adopt"]) == 0
    assert "would adopt 0 policies, 0 holds, 0 deletion records" in capsys.readouterr().out
