"""The search index rows the recorder's writer hands over (their spool encoding, the one
statement that stores a batch of them) and their deletion with a shredded session. Only
beacons and role codes; never a word.

Kept apart from :mod:`auditagent.store.search_index` (the query side) so the write path
imports nothing but the standard library and psycopg.
"""

from __future__ import annotations

import array
import json
import struct
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Connection, text

__all__ = [
    "IndexRows",
    "delete_for_sessions",
    "delete_markers",
    "stored_tokens",
    "write_rows_async",
]

BEACON_BITS = 14
"""auditagent.search.beacons.BEACON_BITS (not imported: this module stays off the key path)."""


def stored_tokens(scope: int, beacons: Sequence[int]) -> list[int]:
    """How beacons are stored: under their key's scope, so that one GIN index serves all."""
    base = scope << BEACON_BITS
    return [base | b for b in beacons]


_HEAD = struct.Struct(">16sB?HI")


def _le(a: array.array[int]) -> array.array[int]:
    """Beacons are little-endian in a spool file, whatever the host (byteswap is in place)."""
    if sys.byteorder == "big":
        a.byteswap()
    return a


_GROUP = struct.Struct(">BI")
_FILTER = 0


@dataclass(frozen=True)
class IndexRows:
    """A session's new index rows under one key version, as the writer hands them over."""

    session_id: uuid.UUID
    tenant: str
    key_id: str
    beacons: Mapping[int, Sequence[int]]
    """Role code -> beacons not yet written for this session, sorted (one row per role,
    holding them all; a beacon is handed over once per session and role)."""
    complete: bool = False
    """True with a session's last rows when every record of it was indexed: the session is
    marked as indexed under ``key_id`` (a reindex then leaves it alone)."""
    scope: int = field(kw_only=True)
    """The search key's scope (``BeaconKey.scope``): stored beacons are ``scope << 14 | b``."""
    word_filter: bytes | None = field(default=None, kw_only=True)
    """With ``complete``: the session's word filter under ``key_id``
    (auditagent/search/wordfilter.py: keyed bits, never a word)."""

    def to_bytes(self) -> bytes:
        """Spool frame payload: beacons and role codes only, never a word."""
        key_id, tenant = self.key_id.encode(), self.tenant.encode()
        parts = [
            _HEAD.pack(self.session_id.bytes, len(key_id), self.complete, len(tenant), self.scope)
        ]
        parts += [key_id, tenant]
        for code, tokens in self.beacons.items():
            parts.append(_GROUP.pack(code, len(tokens)))
            parts.append(_le(array.array("H", tokens)).tobytes())
        if self.word_filter is not None:
            # Group code 0 is no role: the filter, its length in bytes.
            parts += [_GROUP.pack(_FILTER, len(self.word_filter)), self.word_filter]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> IndexRows:
        sid, nk, complete, nt, scope = _HEAD.unpack_from(data)
        at = _HEAD.size
        key_id = data[at : at + nk].decode()
        tenant = data[at + nk : at + nk + nt].decode()
        at += nk + nt
        beacons: dict[int, list[int]] = {}
        word_filter: bytes | None = None
        while at < len(data):
            code, n = _GROUP.unpack_from(data, at)
            at += _GROUP.size
            if code == _FILTER:
                word_filter = data[at : at + n]
                at += n
                continue
            tokens = array.array("H")
            tokens.frombytes(data[at : at + 2 * n])
            beacons[code] = _le(tokens).tolist()
            at += 2 * n
        return cls(
            uuid.UUID(bytes=sid),
            tenant,
            key_id,
            beacons,
            complete,
            scope=scope,
            word_filter=word_filter,
        )


# One statement per batch, whatever the number of sessions: the rows travel as one JSON
# document (encoded in C). One row per session, role and batch holds that batch's new beacons
# as an int4 array under one GIN index: a few rows per session instead of one per beacon, and
# no B-tree entry per beacon. A row is named by its smallest beacon, so a replay is a no-op.
# The partition key (migration 0018) is the session's start, from its row (written before, in
# this batch or an earlier one): a row of no session fails on NOT NULL rather than go astray.
_ROWS = """
INSERT INTO search_index (session_id, key_id, role, first_token, tenant, tokens,
                          session_started_at)
SELECT x.sid, x.kid, x.role, x.first, x.tenant, x.tokens,
       (SELECT s.started_at FROM sessions s WHERE s.id = x.sid)
FROM jsonb_to_recordset(%s::jsonb) AS x(sid uuid, kid text, role smallint, first smallint,
                                        tenant text, tokens integer[])
ON CONFLICT DO NOTHING
"""
# DO NOTHING: a marker already there is a reindex's, which wrote its own filter (or none, for a
# session it found open: that one is then decrypted when nominated, never missed).
_MARKERS = """
INSERT INTO search_index_sessions (session_id, tenant, key_id, word_filter)
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::bytea[])
ON CONFLICT (session_id) DO NOTHING
"""
# Rows and markers in one statement (a data-modifying WITH): one round trip for a batch that
# closes sessions, where one INSERT per marker cost the writer more than the rows.
_INSERT_BOTH = "WITH index_rows AS (" + _ROWS + ")" + _MARKERS


async def write_rows_async(cur: psycopg.AsyncCursor[Any], batch: Sequence[IndexRows]) -> None:
    """The writer's index rows for one batch, in the batch's transaction; idempotent, so a
    spool replay may repeat them."""
    groups = [
        {
            "sid": str(b.session_id),
            "kid": b.key_id,
            "role": code,
            "first": tokens[0],
            "tenant": b.tenant,
            "tokens": stored_tokens(b.scope, tokens),
        }
        for b in batch
        for code, tokens in b.beacons.items()
        if tokens
    ]
    done = [b for b in batch if b.complete]
    rows = (json.dumps(groups, separators=(",", ":")),) if groups else ()
    markers = (
        (
            [b.session_id for b in done],
            [b.tenant for b in done],
            [b.key_id for b in done],
            [b.word_filter for b in done],
        )
        if done
        else ()
    )
    if rows and markers:
        await cur.execute(_INSERT_BOTH, rows + markers)
    elif rows:
        await cur.execute(_ROWS, rows)
    elif markers:
        await cur.execute(_MARKERS, markers)


def delete_for_sessions(conn: Connection, session_ids: Iterable[uuid.UUID]) -> int:
    """Drop the index rows of sessions being shredded or erased (the caller's transaction)."""
    ids = list(session_ids)
    if not ids:
        return 0
    n = conn.execute(
        text("DELETE FROM search_index WHERE session_id = ANY(:ids)"), {"ids": ids}
    ).rowcount
    conn.execute(
        text("DELETE FROM search_index_sessions WHERE session_id = ANY(:ids)"), {"ids": ids}
    )
    return int(n or 0)


def delete_markers(conn: Connection, session_ids: Iterable[uuid.UUID]) -> None:
    """Drop the sessions' index markers (a month's drop: their rows went with the partitions)."""
    ids = list(session_ids)
    if ids:
        conn.execute(
            text("DELETE FROM search_index_sessions WHERE session_id = ANY(:ids)"), {"ids": ids}
        )
