"""The Postgres audio store: idempotent puts, reads in order, ranges across chunks, deletes
only on the retention path; the table is append-only like events."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import create_engine, text

from auditagent.audio.ogg import PlainChunk
from auditagent.audio.reading import ByteRange, read_stream
from auditagent.audio.sealing import seal_chunk
from auditagent.audio.store import PostgresAudioStore
from auditagent.integrity import crypto
from auditagent.store import db

KEY = crypto.new_data_key()


def _chunks(sid: uuid.UUID, n: int = 3) -> list:  # type: ignore[type-arg]
    return [
        seal_chunk(
            crypto.Sealer(KEY),
            PlainChunk(index=i, offset=i * 1000, duration=1000, data=bytes([65 + i]) * (10 + i)),
            tenant="acme",
            session_id=sid,
            key_id="k",
        )
        for i in range(n)
    ]


def _session(url: str) -> uuid.UUID:
    """A session's row: a chunk is stored under its session's start (the partition key)."""
    sid = uuid.uuid4()
    with psycopg.connect(db.libpq_url(url)) as conn:
        conn.execute(
            "INSERT INTO sessions (id, tenant, started_at) VALUES (%s, 'acme', now())", (sid,)
        )
    return sid


def test_put_is_idempotent_and_reads_come_back_in_order(database_url: str) -> None:
    sid = _session(database_url)
    chunks = _chunks(sid)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        store = PostgresAudioStore(conn)
        store.put(list(reversed(chunks)))
        store.put(chunks[:1])  # a spool replay repeats what was committed
    with engine.connect() as conn:
        store = PostgresAudioStore(conn)
        assert list(store.read(sid)) == chunks
        assert list(store.read(sid, first=1, last=1)) == chunks[1:2]
        infos = store.index(sid)
        assert [(i.index, i.offset, i.size) for i in infos] == [
            (0, 0, 10),
            (1, 1000, 11),
            (2, 2000, 12),
        ]
        whole = b"".join(read_stream(store, crypto.Sealer(KEY), sid, infos))
        assert whole == b"A" * 10 + b"B" * 11 + b"C" * 12
        for a, b in [(0, 0), (5, 14), (9, 10), (10, 32), (21, 32), (0, 32)]:
            part = b"".join(read_stream(store, crypto.Sealer(KEY), sid, infos, ByteRange(a, b)))
            assert part == whole[a : b + 1], (a, b)
        assert store.sessions_with_audio([sid, uuid.uuid4()]) == {sid}
    engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audio_chunks SET size = 1 WHERE session_id = %s",
        "DELETE FROM audio_chunks WHERE session_id = %s",
    ],
)
def test_chunks_are_append_only(database_url: str, statement: str) -> None:
    sid = _session(database_url)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        PostgresAudioStore(conn).put(_chunks(sid, 1))
    engine.dispose()
    with psycopg.connect(db.libpq_url(database_url)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement, (sid,))
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE audio_chunks")


def test_the_retention_path_deletes(database_url: str) -> None:
    sid = _session(database_url)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        PostgresAudioStore(conn).put(_chunks(sid))
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL auditagent.allow_purge = 'on'"))
        assert PostgresAudioStore(conn).delete(sid) == 3
    with engine.connect() as conn:
        assert PostgresAudioStore(conn).index(sid) == []
    engine.dispose()


def test_a_chunk_of_no_session_is_refused_not_misplaced(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with (
            pytest.raises(psycopg.errors.NotNullViolation, match="session_started_at"),
            engine.begin() as conn,
        ):
            PostgresAudioStore(conn).put(_chunks(uuid.uuid4(), 1))
    finally:
        engine.dispose()
