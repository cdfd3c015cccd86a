"""SQL for the search index: candidate sessions by beacon, index rows, reindex progress.

Only beacons (keyed, truncated word hashes) and role codes reach these tables; the words
themselves never leave the process that holds the key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    insert,
    intersect,
    literal,
    select,
    text,
    tuple_,
    union,
)
from sqlalchemy.sql.elements import ColumnElement

from .models import DataKeyRow, EventRow, SearchIndexRow, SearchIndexSessionRow, SessionRow
from .reader import SessionFilter, _where
from .search_rows import stored_tokens

__all__ = [
    "candidate_filters",
    "candidates",
    "count_to_reindex",
    "data_keys_for",
    "events_for_sessions",
    "events_of_kinds",
    "key_versions_in_use",
    "replace_session",
    "sessions_by_id",
    "sessions_to_reindex",
]


def _candidates(
    *,
    beacons: Mapping[tuple[str, str], Sequence[int]],
    role: int | None,
    filters: SessionFilter,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[Any, list[ColumnElement[bool]]] | None:
    si = SearchIndexRow
    groups: list[Any] = []
    for (tenant, key_id), tokens in beacons.items():
        per_token = [
            select(si.session_id).where(
                si.tokens.contains([t]),
                si.tenant == tenant,
                si.key_id == key_id,
                *([si.role == role] if role is not None else []),
            )
            for t in sorted(set(tokens))
        ]
        if per_token:
            groups.append(per_token[0] if len(per_token) == 1 else intersect(*per_token))
    if not groups:
        return None
    found: Any = groups[0] if len(groups) == 1 else union(*groups)
    found = found.subquery("found")
    where = [*_where(filters), SessionRow.status.in_(("open", "closed"))]
    if after is not None:
        where.append(tuple_(SessionRow.started_at, SessionRow.id) < tuple_(*after))
    return found, where


def candidates(
    conn: Connection,
    *,
    beacons: Mapping[tuple[str, str], Sequence[int]],
    role: int | None,
    filters: SessionFilter,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """Sessions holding every stored beacon of ``beacons[(tenant, key_id)]`` (as stored:
    under the key's scope) for their tenant under some key version, newest first, after the
    keyset position ``after``; ``sessions`` rows.

    Per tenant and key version, the sessions of each beacon (one GIN probe each, rows of
    ``role`` only when one is asked) intersected: a session's beacons are spread over the rows
    of its batches. A session indexed under v1, or already reindexed under v2, is found
    either way while a reindex runs; a search across tenants (tenantless admins) is one group
    per tenant."""
    got = _candidates(beacons=beacons, role=role, filters=filters, after=after)
    if got is None:
        return []
    found, where = got
    stmt = (
        select(SessionRow.__table__)
        .where(SessionRow.id.in_(select(found.c.session_id)), and_(*where))
        .order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def candidate_filters(
    conn: Connection,
    *,
    beacons: Mapping[tuple[str, str], Sequence[int]],
    role: int | None,
    filters: SessionFilter,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """The sessions :func:`candidates` gives, in its order, as narrow rows: ``id``,
    ``started_at``, ``tenant`` and, when the session has one, its word filter with the key
    version it is under (``filter_key_id``, ``word_filter``; None without one)."""
    got = _candidates(beacons=beacons, role=role, filters=filters, after=after)
    if got is None:
        return []
    found, where = got
    marker = SearchIndexSessionRow
    stmt = (
        select(
            SessionRow.id,
            SessionRow.started_at,
            SessionRow.tenant,
            marker.key_id.label("filter_key_id"),
            marker.word_filter,
        )
        .outerjoin(marker, marker.session_id == SessionRow.id)
        .where(SessionRow.id.in_(select(found.c.session_id)), and_(*where))
        .order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def sessions_by_id(conn: Connection, session_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """``sessions`` rows of ``session_ids`` (one round trip)."""
    stmt = select(SessionRow.__table__).where(SessionRow.id.in_(list(session_ids)))
    return {row.id: row for row in conn.execute(stmt)}


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
    scope: int,
    entries: Iterable[tuple[int, int]],
    word_filter: bytes | None = None,
) -> None:
    """A session's index rebuilt under ``key_id`` (whose scope is ``scope``), one row per
    role, and its word filter under ``key_id`` (or none): its old rows and filter go, in the
    caller's transaction."""
    conn.execute(text("DELETE FROM search_index WHERE session_id = :s"), {"s": session_id})
    # The partition key (migration 0018): the session's start.
    started = conn.execute(
        select(SessionRow.started_at).where(SessionRow.id == session_id)
    ).scalar_one()
    by_role: dict[int, set[int]] = {}
    for r, t in entries:
        by_role.setdefault(r, set()).add(t)
    rows = [
        {
            "session_id": session_id,
            "key_id": key_id,
            "role": r,
            "first_token": min(ts),
            "tenant": tenant,
            "tokens": stored_tokens(scope, sorted(ts)),
            "session_started_at": started,
        }
        for r, ts in sorted(by_role.items())
    ]
    if rows:
        conn.execute(insert(SearchIndexRow), rows)
    conn.execute(
        text(
            "INSERT INTO search_index_sessions (session_id, tenant, key_id, word_filter)"
            " VALUES (:s, :t, :k, :f) ON CONFLICT (session_id) DO UPDATE SET"
            " key_id = EXCLUDED.key_id, word_filter = EXCLUDED.word_filter, indexed_at = now()"
        ),
        {"s": session_id, "t": tenant, "k": key_id, "f": word_filter},
    )
