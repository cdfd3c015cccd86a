"""``events`` partitioned by month of the session's start (migration 0016): the shape a fresh
database comes out with, and months kept ahead by the recorder itself, as the app role that
owns nothing, off the hook path."""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from auditagent.store import partitions as p
from tests.support.databases import ADMIN_URL, create_database, drop_database, server_url
from tests.support.retention import record_sessions, state


def _rows(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(db.libpq_url(url)) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_fresh_database_has_events_partitioned_by_month(database_url: str) -> None:
    assert _rows(
        database_url,
        "SELECT partstrat, a.attname FROM pg_partitioned_table pt "
        "JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0] "
        "WHERE pt.partrelid = 'events'::regclass",
    ) == [("r", "session_started_at")]
    key = _rows(
        database_url,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'events'::regclass AND i.indisprimary",
    )
    assert {k for (k,) in key} == {"session_id", "seq", "session_started_at"}
    names = {
        n
        for (n,) in _rows(
            database_url,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'events'::regclass",
        )
    }
    now = p.Month.of(datetime.now(timezone.utc))
    assert names >= {"events_default", *(p.partition_name("events", m) for m in now.ahead(2))}
    assert all(p.is_partition_name(n) for n in names)


def _drop_month(owner_url: str, month: p.Month) -> None:
    """What only the retention path does: the month flag, then detach and drop (in every
    growing table)."""
    with psycopg.connect(db.libpq_url(owner_url)) as conn:
        conn.execute("SET LOCAL auditagent.allow_purge = 'month'")
        for table in p.GROWING_TABLES:
            name = p.partition_name(table, month)
            conn.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
            conn.execute(f"DROP TABLE {name}")


def test_the_recorder_keeps_months_ahead_as_the_app_role() -> None:
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
        ahead = p.Month.of(datetime.now(timezone.utc)).ahead(2)[-1]
        _drop_month(owner_url, ahead)
        missing = "SELECT to_regclass(%s) IS NULL"
        assert _rows(owner_url, missing, (p.partition_name("events", ahead),)) == [(True,)]
        # The app role owns no table: it can neither create a partition nor drop one itself.
        with psycopg.connect(db.libpq_url(app_url)) as conn:
            for sql in (
                f"CREATE TABLE {p.partition_name('events', ahead)} PARTITION OF events "
                "FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')",
                "DROP TABLE events_default",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql)
                conn.rollback()
        with tempfile.TemporaryDirectory() as tmp:
            app = Settings(database_url=app_url, data_dir=Path(tmp), flush_interval=0.05)
            keys = LocalKeyring.init(app.resolved_keyring_path)
            # A real recorder as the app role; its first idle tick after a write brings the
            # month back (through the SECURITY DEFINER function), before it lets go of its
            # connection. record_sessions returns once the recorder is closed.
            (s,) = record_sessions(app, keys, [("acme", "alice", "x")])
            assert state(app, s.session_id) == ("closed", 5, True)
        deadline = time.monotonic() + 10
        for table in p.GROWING_TABLES:
            while _rows(owner_url, missing, (p.partition_name(table, ahead),)) != [(False,)]:
                assert time.monotonic() < deadline, f"no month ahead of {table} was created"
                time.sleep(0.05)
    finally:
        drop_database(name)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_downgrade_past_0016_refuses_with_the_fix(make_database: object) -> None:
    from alembic import command

    url = make_database()  # type: ignore[operator]
    settings = Settings(database_url=url, data_dir=Path("/nonexistent"))
    cfg = db.alembic_config(settings, url=url)
    engine = db.make_engine(settings, url=url)
    try:
        with (
            pytest.raises(RuntimeError, match="restore the database from a backup"),
            engine.begin() as conn,
        ):
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0014")
        assert db.current_revision(engine) == db.head_revision()
    finally:
        engine.dispose()
