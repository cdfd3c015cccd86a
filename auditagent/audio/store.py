"""Where sealed chunks live: a small blob-store interface and its Postgres implementation.

Postgres is the default (one ``audio_chunks`` row per chunk, keyed by session then chunk index,
partitioned by month of the session's start like ``events``). The interface is what an
S3-compatible store would implement: chunks are immutable, written once (idempotently, so a
spool replay may repeat them), read by session in index order, and deleted per session only by
the retention path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from sqlalchemy import Connection, text

from .sealing import SealedChunk

__all__ = [
    "AudioBlobStore",
    "ChunkInfo",
    "PostgresAudioStore",
    "insert_chunks",
]


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """A stored chunk's placement, without its bytes."""

    index: int
    offset: int
    duration: int
    size: int


class AudioBlobStore(Protocol):
    def put(self, chunks: Sequence[SealedChunk]) -> None:
        """Store chunks; a chunk already stored (same session and index) is left as it is."""
        ...

    def index(self, session_id: uuid.UUID) -> list[ChunkInfo]:
        """The session's chunks in index order, without their bytes."""
        ...

    def read(
        self, session_id: uuid.UUID, *, first: int = 0, last: int | None = None
    ) -> Iterator[SealedChunk]:
        """The session's sealed chunks ``first..last`` (inclusive) in index order."""
        ...

    def delete(self, session_id: uuid.UUID) -> int:
        """Remove a session's chunks (retention path only); how many were removed."""
        ...


_COLUMNS = (
    "session_id, chunk_index, tenant, key_id, offset_samples, duration_samples, size, nonce, "
    "ciphertext"
)
# The partition key (migration 0018) is the session's start, taken from its row (a primary-key
# lookup per chunk, a few chunks a minute of call): a chunk of no session fails on NOT NULL.
_INSERT = (
    f"INSERT INTO audio_chunks ({_COLUMNS}, session_started_at) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, (SELECT started_at FROM sessions WHERE id = %s)) "
    "ON CONFLICT (session_id, chunk_index, session_started_at) DO NOTHING"
)


def _row(c: SealedChunk) -> tuple[Any, ...]:
    return (
        c.session_id,
        c.index,
        c.tenant,
        c.key_id,
        c.offset,
        c.duration,
        c.size,
        c.nonce,
        c.ciphertext,
        c.session_id,
    )


def _chunk(row: Any) -> SealedChunk:
    return SealedChunk(
        session_id=row[0],
        index=row[1],
        tenant=row[2],
        key_id=row[3],
        offset=row[4],
        duration=row[5],
        size=row[6],
        nonce=bytes(row[7]),
        ciphertext=bytes(row[8]),
    )


async def insert_chunks(cur: psycopg.AsyncCursor[Any], chunks: Sequence[SealedChunk]) -> None:
    """The recorder's write: inside the transaction of the batch that carries the chunks'
    audio records, so a committed record always has its chunk."""
    if chunks:
        await cur.executemany(_INSERT, [_row(c) for c in chunks])


class PostgresAudioStore:
    """:class:`AudioBlobStore` over a SQLAlchemy connection (the caller owns the transaction)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def put(self, chunks: Sequence[SealedChunk]) -> None:
        if not chunks:
            return
        raw = self._conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with raw.cursor() as cur:
            cur.executemany(_INSERT, [_row(c) for c in chunks])

    def index(self, session_id: uuid.UUID) -> list[ChunkInfo]:
        rows = self._conn.execute(
            text(
                "SELECT chunk_index, offset_samples, duration_samples, size FROM audio_chunks "
                "WHERE session_id = :sid ORDER BY chunk_index"
            ),
            {"sid": session_id},
        ).all()
        return [ChunkInfo(r[0], r[1], r[2], r[3]) for r in rows]

    def read(
        self, session_id: uuid.UUID, *, first: int = 0, last: int | None = None
    ) -> Iterator[SealedChunk]:
        result = self._conn.execute(
            text(
                f"SELECT {_COLUMNS} FROM audio_chunks WHERE session_id = :sid "
                "AND chunk_index >= :first AND (CAST(:last AS integer) IS NULL "
                "OR chunk_index <= :last) ORDER BY chunk_index"
            ),
            {"sid": session_id, "first": first, "last": last},
        )
        for row in result:
            yield _chunk(row)

    def delete(self, session_id: uuid.UUID) -> int:
        # The guard trigger refuses this unless the retention path set allow_purge.
        result = self._conn.execute(
            text("DELETE FROM audio_chunks WHERE session_id = :sid"), {"sid": session_id}
        )
        return int(result.rowcount or 0)

    def sessions_with_audio(self, session_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        if not session_ids:
            return set()
        rows = self._conn.execute(
            text("SELECT DISTINCT session_id FROM audio_chunks WHERE session_id = ANY(:ids)"),
            {"ids": list(session_ids)},
        ).all()
        return {r[0] for r in rows}
