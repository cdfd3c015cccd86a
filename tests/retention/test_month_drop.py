"""Retention by the month (issue 16): an expired month of ``events``, call audio and search
index goes whole — each session's signed deletion record first, then one DROP of each table's
partition — and anything less than a whole expired, unheld month goes per session as before.
Real recorder, real Postgres."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import cast

import psycopg
import pytest
from sqlalchemy import Engine

from auditagent import retention
from auditagent.keys import LocalKeyring
from auditagent.recorder import clock
from auditagent.settings import Settings
from auditagent.store import db
from auditagent.store import partitions as p
from tests.support import retention as rs
from tests.support.retention import Recorded, deletion_rows, record_sessions, sql_rows, state

DAYS_AGO = 70  # a past month, whole, expired under the 30-day default


@contextmanager
def _started(days_ago: float, monkeypatch: pytest.MonkeyPatch) -> Iterator[p.Month]:
    """Sessions opened meanwhile start ``days_ago`` (the recorder's clock seam), in a month
    whose partition exists — as it would have, had the deployment been running then."""
    at = datetime.now(timezone.utc) - timedelta(days=days_ago)
    real = clock.utcnow
    monkeypatch.setattr(clock, "utcnow", lambda: at)
    try:
        yield p.Month.of(at)
    finally:
        monkeypatch.setattr(clock, "utcnow", real)


def _old_month(
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    *,
    tables: tuple[str, ...] = p.GROWING_TABLES,
) -> tuple[p.Month, list[Recorded]]:
    at = datetime.now(timezone.utc) - timedelta(days=DAYS_AGO)
    with engine.begin() as conn:
        for table in tables:
            p.ensure_months(conn, table, [p.Month.of(at)])
    with _started(DAYS_AGO, monkeypatch) as month:
        old = record_sessions(
            settings,
            keyring,
            [("acme", "alice", "intake"), ("acme", "bob", "intake"), ("acme", "carol", "x")],
            ended_days_ago=DAYS_AGO - 1,
        )
    return month, old


def _exists(settings: Settings, name: str) -> bool:
    return sql_rows(settings, "SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0] is True


def _add_audio(settings: Settings, sids: list[uuid.UUID]) -> None:
    """A stand-in sealed chunk per session (nothing reads it), under its session's start."""
    rs.superuser_sql(
        settings,
        *[
            (
                "INSERT INTO audio_chunks (session_id, chunk_index, tenant, key_id, "
                "offset_samples, duration_samples, size, nonce, ciphertext, session_started_at) "
                "SELECT %s, 0, 'acme', 'k', 0, 960, 1, %s, %s, started_at FROM sessions "
                "WHERE id = %s",
                (sid, b"\x00", b"\x00", sid),
            )
            for sid in sids
        ],
    )


def _unpartitioned(settings: Settings, sid: object) -> tuple[int, ...]:
    """(call audio chunks, search index rows, search index session rows) of a session."""
    (row,) = sql_rows(
        settings,
        "SELECT (SELECT count(*) FROM audio_chunks WHERE session_id = %s), "
        "(SELECT count(*) FROM search_index WHERE session_id = %s), "
        "(SELECT count(*) FROM search_index_sessions WHERE session_id = %s)",
        (sid, sid, sid),
    )
    return tuple(cast(int, n) for n in row)


def test_an_expired_month_goes_whole_after_its_deletion_records(
    cli_env: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    month, old = _old_month(cli_env, keyring, engine, monkeypatch)
    part = p.partition_name("events", month)
    rows = sql_rows(cli_env, f"SELECT count(*), count(DISTINCT session_id) FROM {part}")
    assert rows == [(15, 3)]  # the recorder's rows landed in their session's month
    (young,) = record_sessions(cli_env, keyring, [("acme", "dave", "intake")])
    # Call audio and the search index are partitioned by the same month: the month's go with
    # the drop, the young session's stay.
    every = [s.session_id for s in old] + [young.session_id]
    _add_audio(cli_env, every)
    before = {sid: _unpartitioned(cli_env, sid) for sid in every}
    assert all(a == 1 and n > 0 and m == 1 for a, n, m in before.values()), before
    parts = [p.partition_name(t, month) for t in p.GROWING_TABLES]
    assert sql_rows(
        cli_env,
        "SELECT (SELECT count(*) FROM audio_chunks_default), "
        f"(SELECT count(*) FROM {parts[1]}), (SELECT count(*) FROM {parts[2]}) > 0",
    ) == [(0, 3, True)]

    report = retention.run_retention(engine, cli_env, batch_size=2)

    assert report.ok, report.summary()
    assert report.months_dropped == [f"{month.year:04d}{month.month:02d}"]
    assert (report.sessions_deleted, report.events_deleted) == (3, 15)
    assert not any(_exists(cli_env, name) for name in parts)
    for s in old:
        assert state(cli_env, s.session_id) == ("purged", 0, False)
    assert state(cli_env, young.session_id) == ("closed", 5, True)
    for s in old:
        assert _unpartitioned(cli_env, s.session_id) == (0, 0, 0)
    assert _unpartitioned(cli_env, young.session_id) == before[young.session_id]
    records = deletion_rows(cli_env)
    assert {r[1] for r in records} == {s.session_id for s in old}
    assert all(r[3] == "retention" and r[4] == 5 and r[6] == report.run_id for r in records)
    # The chain, the signatures, the checkpoint the run wrote: all whole.
    code, out = rs.verify_all(cli_env, capsys)
    assert code == 0, out
    # The next run has nothing left to do there.
    again = retention.run_retention(engine, cli_env)
    assert again.ok and again.candidates == [] and again.months_dropped == []


def test_a_held_session_keeps_its_month_and_the_rest_goes_per_session(
    cli_env: Settings, keyring: LocalKeyring, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    month, old = _old_month(cli_env, keyring, engine, monkeypatch)
    held = old[0]
    retention.create_hold(
        engine,
        keyring,
        scope="session",
        tenant="acme",
        session_id=held.session_id,
        reason="litigation",
        created_by="test",
    )
    _add_audio(cli_env, [s.session_id for s in old])
    kept = _unpartitioned(cli_env, held.session_id)
    assert kept[0] == 1 and kept[1] > 0
    report = retention.run_retention(engine, cli_env, batch_size=2)
    assert report.ok and report.months_dropped == []
    assert (report.sessions_deleted, report.events_deleted) == (2, 10)
    assert all(_exists(cli_env, p.partition_name(t, month)) for t in p.GROWING_TABLES)
    assert state(cli_env, held.session_id) == ("closed", 5, True)
    assert _unpartitioned(cli_env, held.session_id) == kept  # audio and index, still there
    for s in old[1:]:
        assert state(cli_env, s.session_id) == ("purged", 0, False)
        assert _unpartitioned(cli_env, s.session_id) == (0, 0, 0)


def test_a_month_with_a_session_not_yet_expired_is_purged_per_session(
    cli_env: Settings, keyring: LocalKeyring, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    month, _ = _old_month(cli_env, keyring, engine, monkeypatch)
    with _started(DAYS_AGO, monkeypatch):
        (late,) = record_sessions(cli_env, keyring, [("acme", "erin", "x")], ended_days_ago=1)
    report = retention.run_retention(engine, cli_env)
    assert report.ok and report.months_dropped == []
    assert report.sessions_deleted == 3
    assert state(cli_env, late.session_id) == ("closed", 5, True)
    assert _exists(cli_env, p.partition_name("events", month))


def test_erasure_stays_per_session(
    cli_env: Settings, keyring: LocalKeyring, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    month, old = _old_month(cli_env, keyring, engine, monkeypatch)
    _add_audio(cli_env, [s.session_id for s in old])
    others = {s.session_id: _unpartitioned(cli_env, s.session_id) for s in old[1:]}
    report = retention.erase_participant(
        engine,
        keyring,
        settings=cli_env,
        tenant="acme",
        participant="alice",
        reason="gdpr art. 17",
        requested_by="test",
    )
    assert report.months_dropped == [] and report.sessions_deleted == 1
    assert state(cli_env, old[0].session_id) == ("purged", 0, False)
    assert state(cli_env, old[1].session_id) == ("closed", 5, True)
    assert _unpartitioned(cli_env, old[0].session_id) == (0, 0, 0)
    assert {sid: _unpartitioned(cli_env, sid) for sid in others} == others
    assert all(_exists(cli_env, p.partition_name(t, month)) for t in p.GROWING_TABLES)


def test_a_month_drop_takes_the_rows_a_default_partition_kept_of_it(
    cli_env: Settings, keyring: LocalKeyring, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The month exists for events only: the call audio and index rows wait in the defaults.
    month, old = _old_month(cli_env, keyring, engine, monkeypatch, tables=("events",))
    _add_audio(cli_env, [s.session_id for s in old])
    assert sql_rows(
        cli_env,
        "SELECT (SELECT count(*) FROM audio_chunks_default), "
        "(SELECT count(*) FROM search_index_default) > 0",
    ) == [(3, True)]
    report = retention.run_retention(engine, cli_env)
    assert report.months_dropped == [f"{month.year:04d}{month.month:02d}"], report.summary()
    for s in old:
        assert state(cli_env, s.session_id) == ("purged", 0, False)
        assert _unpartitioned(cli_env, s.session_id) == (0, 0, 0)
    assert {r[1] for r in deletion_rows(cli_env)} == {s.session_id for s in old}


def test_a_partition_is_not_dropped_or_truncated_outside_the_retention_path(
    settings: Settings, keyring: LocalKeyring, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    month, _ = _old_month(settings, keyring, engine, monkeypatch)
    part = p.partition_name("events", month)
    assert settings.database_url
    with psycopg.connect(db.libpq_url(settings.database_url)) as conn:
        for stmt in (
            f"DROP TABLE {part}",
            f"TRUNCATE {part}",
            "DROP TABLE events_default",
            f"DELETE FROM {part}",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not allowed"):
                conn.execute(stmt)
            conn.rollback()
        # Detached, it is still refused: the name says what it held.
        conn.execute(f"ALTER TABLE events DETACH PARTITION {part}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="retention run"):
            conn.execute(f"DROP TABLE {part}")
        conn.rollback()
    assert sql_rows(settings, f"SELECT count(*) FROM {part}") == [(15,)]


def test_rows_of_a_month_never_created_wait_in_the_default_partition(
    cli_env: Settings, keyring: LocalKeyring, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _started(DAYS_AGO, monkeypatch) as month:
        (s,) = record_sessions(cli_env, keyring, [("acme", "zed", "x")], ended_days_ago=60)
    assert not _exists(cli_env, p.partition_name("events", month))
    assert sql_rows(cli_env, "SELECT count(*) FROM events_default") == [(5,)]
    # The month is not created over them later (moving them would be a delete) ...
    with engine.begin() as conn:
        assert p.ensure_months(conn, "events", [month]) == []
    # ... and retention purges them per session, as before.
    report = retention.run_retention(engine, cli_env)
    assert report.ok and report.months_dropped == [] and report.events_deleted == 5
    assert state(cli_env, s.session_id) == ("purged", 0, False)


def test_a_retention_run_creates_the_months_ahead(
    settings: Settings, keyring: LocalKeyring, engine: Engine
) -> None:
    ahead = p.Month.of(datetime.now(timezone.utc)).ahead(2)[-1]
    names = {t: p.partition_name(t, ahead) for t in p.GROWING_TABLES}
    assert settings.database_url
    with psycopg.connect(db.libpq_url(settings.database_url)) as conn:
        conn.execute("SET LOCAL auditagent.allow_purge = 'month'")
        for table, name in names.items():
            conn.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
            conn.execute(f"DROP TABLE {name}")
    assert not any(_exists(settings, name) for name in names.values())
    report = retention.run_retention(engine, settings)
    assert report.ok and report.candidates == []
    assert all(_exists(settings, name) for name in names.values())
