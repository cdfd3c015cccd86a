"""SQL for the search index: candidate sessions by beacon, index rows, reindex progress.

Only beacons (keyed, truncated word hashes) and role codes reach these tables; the words
themselves never leave the process that holds the key.
"""

from __future__ import annotations

import array
import json
import struct
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import (
    Connection,
    Integer,
    SmallInteger,
    String,
    and_,
    column,
    distinct,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
    values,
)
from sqlalchemy.sql.elements import ColumnElement

from .models import DataKeyRow, EventRow, SearchIndexRow, SearchIndexSessionRow, SessionRow
from .reader import SessionFilter, _where

__all__ = [
    "IndexRows",
    "candidates",
    "count_to_reindex",
    "data_keys_for",
    "delete_for_sessions",
    "events_for_sessions",
    "events_of_kinds",
    "key_versions_in_use",
    "replace_session",
    "sessions_to_reindex",
    "write_rows_async",
]


_HEAD = struct.Struct(">16sB?H")


def _le(a: array.array[int]) -> array.array[int]:
    """Beacons are little-endian in a spool file, whatever the host (byteswap is in place)."""
    if sys.byteorder == "big":
        a.byteswap()
    return a


_GROUP = struct.Struct(">BI")


@dataclass(frozen=True)
class IndexRows:
    """A session's new index rows under one key version, as the writer hands them over."""

    session_id: uuid.UUID
    tenant: str
    key_id: str
    beacons: Mapping[int, Sequence[int]]
    """Role code -> beacons not yet written for this session (one row each)."""
    complete: bool = False
    """True with a session's last rows when every record of it was indexed: the session is
    marked as indexed under ``key_id`` (a reindex then leaves it alone)."""

    def to_bytes(self) -> bytes:
        """Spool frame payload: beacons and role codes only, never a word."""
        key_id, tenant = self.key_id.encode(), self.tenant.encode()
        parts = [_HEAD.pack(self.session_id.bytes, len(key_id), self.complete, len(tenant))]
        parts += [key_id, tenant]
        for code, tokens in self.beacons.items():
            parts.append(_GROUP.pack(code, len(tokens)))
            parts.append(_le(array.array("H", tokens)).tobytes())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> IndexRows:
        sid, nk, complete, nt = _HEAD.unpack_from(data)
        at = _HEAD.size
        key_id = data[at : at + nk].decode()
        tenant = data[at + nk : at + nk + nt].decode()
        at += nk + nt
        beacons: dict[int, list[int]] = {}
        while at < len(data):
            code, n = _GROUP.unpack_from(data, at)
            at += _GROUP.size
            tokens = array.array("H")
            tokens.frombytes(data[at : at + 2 * n])
            beacons[code] = _le(tokens).tolist()
            at += 2 * n
        return cls(uuid.UUID(bytes=sid), tenant, key_id, beacons, complete)


def candidates(
    conn: Connection,
    *,
    beacons: Mapping[tuple[str, str], Sequence[int]],
    role: int | None,
    filters: SessionFilter,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """Sessions holding every beacon of ``beacons[(tenant, key_id)]`` for their tenant under
    some key version, newest first, after the keyset position ``after``; ``sessions`` rows.

    One group of distinct beacons per tenant and key version: a session indexed under v1, or
    already reindexed under v2, is found either way while a reindex runs; a search across
    tenants (tenantless admins) is one group per tenant. All groups go to the server as one
    VALUES list, so the statement has the same shape for one tenant or a thousand."""
    rows = [
        (tenant, key_id, b, len(set(tokens)))
        for (tenant, key_id), tokens in beacons.items()
        for b in sorted(set(tokens))
    ]
    if not rows:
        return []
    wanted = values(
        column("tenant", String),
        column("key_id", String),
        column("token", SmallInteger),
        column("n", Integer),
        name="wanted",
    ).data(rows)
    si = SearchIndexRow
    conds: list[ColumnElement[bool]] = []
    if role is not None:
        conds.append(si.role == role)
    found = (
        select(si.session_id)
        .join(
            wanted,
            and_(
                si.tenant == wanted.c.tenant,
                si.key_id == wanted.c.key_id,
                si.token == wanted.c.token,
            ),
        )
        .where(*conds)
        .group_by(si.session_id, si.key_id, wanted.c.n)
        .having(func.count(distinct(si.token)) == wanted.c.n)
        .distinct()
        .subquery("found")
    )
    where = [*_where(filters), SessionRow.status.in_(("open", "closed"))]
    if after is not None:
        where.append(tuple_(SessionRow.started_at, SessionRow.id) < tuple_(*after))
    stmt = (
        select(SessionRow.__table__)
        .join(found, found.c.session_id == SessionRow.id)
        .where(and_(*where))
        .order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def events_for_sessions(
    conn: Connection, session_ids: Sequence[uuid.UUID], kinds: Sequence[str]
) -> dict[uuid.UUID, list[Any]]:
    """Sealed rows of ``kinds`` of several sessions in one round trip, per session in seq order."""
    stmt = (
        select(EventRow.__table__)
        .where(EventRow.session_id.in_(list(session_ids)), EventRow.kind.in_(list(kinds)))
        .order_by(EventRow.session_id, EventRow.seq)
    )
    out: dict[uuid.UUID, list[Any]] = {sid: [] for sid in session_ids}
    for row in conn.execute(stmt):
        out[row.session_id].append(row)
    return out


def data_keys_for(conn: Connection, session_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    stmt = select(DataKeyRow.__table__).where(DataKeyRow.session_id.in_(list(session_ids)))
    return {row.session_id: row for row in conn.execute(stmt)}


def key_versions_in_use(conn: Connection, *, tenant: str, key_ids: Sequence[str]) -> list[str]:
    """Which of ``key_ids`` the tenant has index rows under (one index probe each)."""
    return [
        k
        for k in key_ids
        if conn.execute(
            select(literal(1))
            .where(SearchIndexRow.tenant == tenant, SearchIndexRow.key_id == k)
            .limit(1)
        ).first()
        is not None
    ]


def events_of_kinds(conn: Connection, session_id: uuid.UUID, kinds: Sequence[str]) -> list[Any]:
    """A session's sealed rows of ``kinds`` in seq order (only text-bearing records are
    decrypted for a search)."""
    stmt = (
        select(EventRow.__table__)
        .where(EventRow.session_id == session_id, EventRow.kind.in_(list(kinds)))
        .order_by(EventRow.seq)
    )
    return list(conn.execute(stmt).all())


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


def sessions_to_reindex(
    conn: Connection, *, key_id: str, tenant: str | None, limit: int, skip: Sequence[uuid.UUID] = ()
) -> list[Any]:
    """Readable sessions not yet indexed under ``key_id``, oldest first (ids and tenants)."""
    marker = SearchIndexSessionRow
    conds: list[ColumnElement[bool]] = [SessionRow.status.in_(("open", "closed"))]
    if tenant is not None:
        conds.append(SessionRow.tenant == tenant)
    if skip:
        conds.append(SessionRow.id.not_in(list(skip)))
    stmt = (
        select(SessionRow.id, SessionRow.tenant, SessionRow.status)
        .outerjoin(marker, marker.session_id == SessionRow.id)
        .where(and_(*conds), (marker.key_id.is_(None)) | (marker.key_id != key_id))
        .order_by(SessionRow.started_at, SessionRow.id)
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def count_to_reindex(conn: Connection, *, key_id: str, tenant: str | None) -> int:
    marker = SearchIndexSessionRow
    conds: list[ColumnElement[bool]] = [SessionRow.status.in_(("open", "closed"))]
    if tenant is not None:
        conds.append(SessionRow.tenant == tenant)
    stmt = (
        select(literal(1))
        .select_from(SessionRow)
        .outerjoin(marker, marker.session_id == SessionRow.id)
        .where(and_(*conds), (marker.key_id.is_(None)) | (marker.key_id != key_id))
    )
    return int(conn.execute(select(text("count(*)")).select_from(stmt.subquery())).scalar_one())


def replace_session(
    conn: Connection,
    *,
    session_id: uuid.UUID,
    tenant: str,
    key_id: str,
    entries: Iterable[tuple[int, int]],
) -> None:
    """A session's index rebuilt under ``key_id``: its old rows go, in the caller's transaction."""
    conn.execute(text("DELETE FROM search_index WHERE session_id = :s"), {"s": session_id})
    rows = [
        {"session_id": session_id, "key_id": key_id, "role": r, "token": t, "tenant": tenant}
        for r, t in sorted(set(entries))
    ]
    if rows:
        conn.execute(insert(SearchIndexRow), rows)
    conn.execute(
        text(
            "INSERT INTO search_index_sessions (session_id, tenant, key_id) VALUES (:s, :t, :k)"
            " ON CONFLICT (session_id) DO UPDATE SET key_id = EXCLUDED.key_id,"
            " indexed_at = now()"
        ),
        {"s": session_id, "t": tenant, "k": key_id},
    )


# One statement per batch, whatever the number of sessions and rows: the rows travel as one
# JSON document (encoded in C) and are spread out by the server.
_INSERT_ROWS = """
INSERT INTO search_index (session_id, key_id, role, token, tenant)
SELECT x.sid, x.kid, x.role, unnest(x.tokens), x.tenant
FROM jsonb_to_recordset(%s::jsonb) AS x(sid uuid, kid text, role smallint, tokens smallint[],
                                        tenant text)
ON CONFLICT DO NOTHING
"""
_INSERT_MARKER = """
INSERT INTO search_index_sessions (session_id, tenant, key_id) VALUES (%s, %s, %s)
ON CONFLICT (session_id) DO NOTHING
"""


async def write_rows_async(cur: psycopg.AsyncCursor[Any], batch: Sequence[IndexRows]) -> None:
    """The writer's index rows for one batch, in the batch's transaction; idempotent, so a
    spool replay may repeat them."""
    groups = [
        {
            "sid": str(b.session_id),
            "kid": b.key_id,
            "role": code,
            "tokens": tokens,
            "tenant": b.tenant,
        }
        for b in batch
        for code, tokens in b.beacons.items()
        if tokens
    ]
    if groups:
        await cur.execute(_INSERT_ROWS, (json.dumps(groups, separators=(",", ":")),))
    markers = [(b.session_id, b.tenant, b.key_id) for b in batch if b.complete]
    if markers:
        await cur.executemany(_INSERT_MARKER, markers)
