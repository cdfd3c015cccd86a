"""Call audio chunks and search index rows partitioned by month of the session's start
(migration 0018), like ``events``: the shape a fresh database comes out with, an existing
database's rows moved into their months and back again by the downgrade, and the partitions
guarded like those of ``events``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from alembic import command

from auditagent.settings import Settings
from auditagent.store import db
from auditagent.store import partitions as p
from tests.support.databases import create_database, drop_database, server_url

TABLES = ("audio_chunks", "search_index")


def _rows(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(db.libpq_url(url)) as conn:
        return conn.execute(sql, params).fetchall()


def _partitions(url: str, table: str) -> set[str]:
    return {
        str(n)
        for (n,) in _rows(
            url,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            (table,),
        )
    }


@pytest.mark.parametrize("table", TABLES)
def test_a_fresh_database_has_the_table_partitioned_by_month(database_url: str, table: str) -> None:
    assert _rows(
        database_url,
        "SELECT partstrat, a.attname FROM pg_partitioned_table pt "
        "JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0] "
        "WHERE pt.partrelid = to_regclass(%s)",
        (table,),
    ) == [("r", "session_started_at")]
    # Every key carries the session id first and the partition key.
    for (definition,) in _rows(
        database_url,
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = to_regclass(%s) AND indisunique",
        (table,),
    ):
        cols = str(definition).split("(", 1)[1]
        assert cols.startswith("session_id") and "session_started_at" in cols, definition
    now = p.Month.of(datetime.now(timezone.utc))
    names = _partitions(database_url, table)
    assert names >= {f"{table}_default", *(p.partition_name(table, m) for m in now.ahead(2))}
    assert all(p.is_partition_name(n) for n in names)


def test_the_search_gin_index_and_the_audio_storage_reach_every_partition(
    database_url: str,
) -> None:
    (gin,) = _rows(
        database_url,
        "SELECT pg_get_indexdef('ix_search_index_tokens'::regclass), "
        "(SELECT count(*) FROM pg_inherits WHERE inhparent = 'ix_search_index_tokens'::regclass)",
    )
    assert "USING gin (tokens)" in str(gin[0])
    assert gin[1] == len(_partitions(database_url, "search_index"))
    # Sealed Opus does not compress: no partition tries (migration 0015's setting, kept).
    storage = _rows(
        database_url,
        "SELECT DISTINCT a.attstorage FROM pg_attribute a JOIN pg_inherits i "
        "ON i.inhrelid = a.attrelid WHERE i.inhparent = 'audio_chunks'::regclass "
        "AND a.attname = 'ciphertext'",
    )
    assert storage == [("e",)]


@pytest.fixture
def at_0016() -> Iterator[str]:
    name = create_database()
    url = db.sqlalchemy_url(server_url(name))
    db.upgrade(Settings(database_url=url, data_dir=Path("/nonexistent")), url=url, revision="0016")
    try:
        yield url
    finally:
        drop_database(name)


def _fill(url: str) -> dict[uuid.UUID, datetime]:
    """Two sessions a month apart, each with call audio and search index rows, as 0016 kept
    them (no partition key)."""
    now = datetime.now(timezone.utc)
    started = {uuid.uuid4(): now - timedelta(days=40), uuid.uuid4(): now}
    with psycopg.connect(db.libpq_url(url)) as conn:
        for sid, at in started.items():
            conn.execute(
                "INSERT INTO sessions (id, tenant, started_at) VALUES (%s, 'acme', %s)", (sid, at)
            )
            for i in range(3):
                conn.execute(
                    "INSERT INTO audio_chunks (session_id, chunk_index, tenant, key_id, "
                    "offset_samples, duration_samples, size, nonce, ciphertext) "
                    "VALUES (%s, %s, 'acme', 'k1', %s, 960, 4, %s, %s)",
                    (sid, i, 960 * i, b"n" * 12, b"sealed-quokka"),
                )
            for role in (1, 2):
                conn.execute(
                    "INSERT INTO search_index (session_id, key_id, role, first_token, tenant, "
                    "tokens) VALUES (%s, 's1', %s, 7, 'acme', ARRAY[7, 9, 4242])",
                    (sid, role),
                )
    return started


AUDIO = (
    "SELECT session_id, chunk_index, offset_samples, nonce, ciphertext FROM audio_chunks "
    "ORDER BY 1, 2"
)
SEARCH = "SELECT session_id, key_id, role, first_token, tokens FROM search_index ORDER BY 1, 3"


def test_an_existing_database_moves_its_rows_into_their_months_and_back(at_0016: str) -> None:
    url = at_0016
    started = _fill(url)
    audio, search = _rows(url, AUDIO), _rows(url, SEARCH)
    assert (len(audio), len(search)) == (6, 4)

    settings = Settings(database_url=url, data_dir=Path("/nonexistent"))
    assert db.upgrade(settings, url=url) == db.head_revision()

    assert (_rows(url, AUDIO), _rows(url, SEARCH)) == (audio, search)
    for table in TABLES:
        placed = _rows(
            url,
            f"SELECT t.tableoid::regclass::text, t.session_id FROM {table} t "
            "JOIN sessions s ON s.id = t.session_id AND s.started_at = t.session_started_at "
            "GROUP BY 1, 2",
        )
        parts = {sid: part for part, sid in placed}
        assert set(parts) == set(started)  # every row carries its session's start
        for sid, at in started.items():
            assert parts[sid] == p.partition_name(table, p.Month.of(at))
    # The GIN index serves the moved rows.
    assert _rows(url, "SELECT count(*) FROM search_index WHERE tokens @> ARRAY[4242]") == [(4,)]

    cfg = db.alembic_config(settings, url=url)
    engine = db.make_engine(settings, url=url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0016")
        assert db.current_revision(engine) == "0016"
    finally:
        engine.dispose()
    for table in TABLES:
        assert _rows(url, "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (table,)) == [
            ("r",)
        ]
        assert _rows(url, "SELECT count(*) FROM pg_class WHERE relname LIKE %s", (f"{table}_p%",))
    assert (_rows(url, AUDIO), _rows(url, SEARCH)) == (audio, search)
    # Still append-only after the round trip, and 0016's guard lets the purge path through.
    sid = next(iter(started))
    with psycopg.connect(db.libpq_url(url)) as conn:
        conn.execute(
            "INSERT INTO events (session_id, seq, tenant, kind, at, key_id, nonce, ciphertext, "
            "prev_hash, hash, session_started_at) VALUES (%s, 0, 'acme', 'note', now(), 'k', "
            "'\\x00', '\\x00', '\\x00', '\\x00', %s)",
            (sid, started[sid]),
        )
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("DELETE FROM events WHERE session_id = %s", (sid,))
        conn.rollback()
        conn.execute("SET LOCAL auditagent.allow_purge = 'on'")
        assert conn.execute("DELETE FROM events WHERE session_id = %s", (sid,)).rowcount == 1
    with (
        psycopg.connect(db.libpq_url(url)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
    ):
        conn.execute("DELETE FROM audio_chunks")

    assert db.upgrade(settings, url=url) == db.head_revision()
    assert (_rows(url, AUDIO), _rows(url, SEARCH)) == (audio, search)


def test_upgrade_refuses_call_audio_of_no_session(at_0016: str) -> None:
    url = at_0016
    with psycopg.connect(db.libpq_url(url)) as conn:
        conn.execute(
            "INSERT INTO audio_chunks (session_id, chunk_index, tenant, key_id, offset_samples, "
            "duration_samples, size, nonce, ciphertext) "
            "VALUES (%s, 0, 'acme', 'k1', 0, 960, 4, %s, %s)",
            (uuid.uuid4(), b"n" * 12, b"c"),
        )
    settings = Settings(database_url=url, data_dir=Path("/nonexistent"))
    with pytest.raises(RuntimeError, match="restore their sessions rows"):
        db.upgrade(settings, url=url)
    engine = db.make_engine(settings, url=url)
    try:
        assert db.current_revision(engine) == "0016"
    finally:
        engine.dispose()


@pytest.mark.parametrize("table", TABLES)
def test_a_partition_is_not_dropped_or_truncated_outside_the_retention_path(
    database_url: str, table: str
) -> None:
    part = p.partition_name(table, p.Month.of(datetime.now(timezone.utc)))
    with psycopg.connect(db.libpq_url(database_url)) as conn:
        for stmt in (f"DROP TABLE {part}", f"TRUNCATE {part}", f"DROP TABLE {table}_default"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not allowed"):
                conn.execute(stmt)
            conn.rollback()
