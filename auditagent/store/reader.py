"""Read queries for the review service: session metadata, sealed events, holds.

Nothing here decrypts; callers that need plaintext go through ``auditagent.reading``.
"""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, tuple_

from ..integrity import chain_verifier, encoding
from . import batches
from .models import DataKeyRow, EventRow, LegalHoldRow, SessionRow

__all__ = [
    "MAX_PAGE",
    "InvalidCursor",
    "SessionFilter",
    "SessionPage",
    "data_key_and_events",
    "decode_cursor",
    "encode_cursor",
    "event_counts",
    "event_tuples",
    "get_data_key",
    "get_session",
    "holds_for_session",
    "iter_events",
    "key_and_events_statements",
    "list_sessions",
    "newest_data_key",
    "sessions_for_analytics",
    "timing_events",
    "verify_session",
]

MAX_PAGE = 500
_CURSOR = struct.Struct(">q16s")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class InvalidCursor(ValueError):
    pass


def encode_cursor(started_at: datetime, session_id: uuid.UUID) -> str:
    """Opaque to clients: base64url of (started_at in microseconds, session id)."""
    raw = _CURSOR.pack(encoding.at_microseconds(started_at), session_id.bytes)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


CURSOR_PATTERN = r"^[A-Za-z0-9_-]{32}$"
_MIN_US = encoding.at_microseconds(datetime.min.replace(tzinfo=timezone.utc))
_MAX_US = encoding.at_microseconds(datetime.max.replace(tzinfo=timezone.utc))


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        micros, sid = _CURSOR.unpack(raw)
    except (binascii.Error, struct.error, ValueError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    # A cursor is only a position; one past either end of time means "from that end".
    micros = min(max(micros, _MIN_US), _MAX_US)
    return _EPOCH + timedelta(microseconds=micros), uuid.UUID(bytes=sid)


@dataclass(frozen=True)
class SessionFilter:
    tenant: str | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None
    agent: str | None = None
    architecture: str | None = None
    participant_index: bytes | None = None
    participant_indexes: tuple[bytes, ...] | None = None
    """For a search spanning tenants: the identity's index under each tenant."""
    tool: str | None = None
    close_reason: str | None = None
    status: str | None = None
    notice: str | None = None
    """``completed``: the recording notice was heard in full; ``missing``: it was not (or
    none was asked for)."""


@dataclass(frozen=True)
class SessionPage:
    items: list[Any]
    next_cursor: str | None


def _where(f: SessionFilter) -> list[Any]:
    conds: list[Any] = []
    if f.tenant is not None:
        conds.append(SessionRow.tenant == f.tenant)
    if f.started_from is not None:
        conds.append(SessionRow.started_at >= f.started_from)
    if f.started_to is not None:
        conds.append(SessionRow.started_at < f.started_to)
    if f.agent is not None:
        conds.append(
            or_(SessionRow.agent_name == f.agent, SessionRow.labels["agent"].astext == f.agent)
        )
    if f.architecture is not None:
        conds.append(SessionRow.architecture == f.architecture)
    if f.participant_index is not None:
        conds.append(SessionRow.participant_index == f.participant_index)
    if f.participant_indexes is not None:
        conds.append(SessionRow.participant_index.in_(list(f.participant_indexes)))
    if f.tool is not None:
        # ANY over the array would not use the GIN index; containment does.
        conds.append(SessionRow.tool_names.contains([f.tool]))
    if f.close_reason is not None:
        conds.append(SessionRow.close_reason == f.close_reason)
    if f.notice == "completed":
        conds.append(SessionRow.notice == "completed")
    elif f.notice == "missing":
        conds.append(SessionRow.notice.is_distinct_from("completed"))
    if f.status is not None:
        conds.append(SessionRow.status == f.status)
    return conds


def list_sessions(
    conn: Connection, *, filters: SessionFilter, limit: int = 50, cursor: str | None = None
) -> SessionPage:
    """One page, newest first, keyset-paginated on (started_at, id) so pages never shift when
    sessions are added while a client walks them."""
    limit = max(1, min(limit, MAX_PAGE))
    conds = _where(filters)
    if cursor is not None:
        at, sid = decode_cursor(cursor)
        conds.append(tuple_(SessionRow.started_at, SessionRow.id) < tuple_(at, sid))
    stmt = (
        select(SessionRow.__table__)
        .where(and_(*conds))
        .order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
        .limit(limit + 1)
    )
    rows = conn.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1].started_at, rows[-1].id) if more and rows else None
    return SessionPage(items=list(rows), next_cursor=nxt)


def tenants(conn: Connection) -> list[str]:
    return list(conn.execute(select(SessionRow.tenant).distinct()).scalars())


def get_session(conn: Connection, session_id: uuid.UUID) -> Any | None:
    return conn.execute(select(SessionRow.__table__).where(SessionRow.id == session_id)).first()


def event_counts(conn: Connection, session_id: uuid.UUID) -> dict[str, int]:
    rows = conn.execute(
        select(EventRow.kind, func.count())
        .where(EventRow.session_id == session_id)
        .group_by(EventRow.kind)
        .order_by(EventRow.kind)
    ).all()
    return {kind: int(n) for kind, n in rows}


def iter_events(
    conn: Connection, session_id: uuid.UUID, *, kinds: Sequence[str] | None = None
) -> Iterator[Any]:
    """Sealed rows in seq order, streamed so a long session is never held in memory twice."""
    stmt = (
        select(EventRow.__table__).where(EventRow.session_id == session_id).order_by(EventRow.seq)
    )
    if kinds is not None:
        stmt = stmt.where(EventRow.kind.in_(list(kinds)))
    # On the statement, not the connection: Connection.execution_options() changes the
    # connection in place, and a later INSERT on it would then go through a named cursor.
    yield from conn.execute(stmt.execution_options(yield_per=1000))


EVENT_TUPLE_COLUMNS = (
    "seq",
    "tenant",
    "kind",
    "at",
    "key_id",
    "nonce",
    "ciphertext",
    "prev_hash",
    "hash",
)
"""Column order of the tuples from :func:`event_tuples`."""

FETCH_ALL_MAX = 20_000
"""Sessions of up to this many records are fetched in one round trip (a 2,000-record session
is ~1 MB); longer ones are streamed through a server-side cursor."""

_EVENTS_SQL = (
    f"SELECT {', '.join(EVENT_TUPLE_COLUMNS)} FROM {EventRow.__tablename__}"
    " WHERE session_id = %s ORDER BY seq"
)


def event_tuples(
    conn: Connection, session_id: uuid.UUID, *, expected_rows: int | None = None
) -> Iterator[tuple[Any, ...]]:
    """The session's sealed rows in seq order as plain tuples in ``EVENT_TUPLE_COLUMNS`` order
    (bytea columns as ``bytes``); the session id is the one asked for.

    Goes to the driver directly: no SQLAlchemy ``Row`` per record. When ``expected_rows`` (the
    session's ``event_count``) is at most ``FETCH_ALL_MAX`` the rows are fetched in one round
    trip; otherwise, or when it is unknown, they are streamed through a server-side cursor so
    a very long session is never held in memory twice. Runs in the connection's current
    transaction (the driver begins one if none is open).
    """
    dbapi: Any = conn.connection.dbapi_connection
    if expected_rows is not None and expected_rows <= FETCH_ALL_MAX:
        cur = dbapi.cursor()
        try:
            cur.execute(_EVENTS_SQL, (session_id,))
            rows: list[tuple[Any, ...]] = cur.fetchall()
        finally:
            cur.close()
        yield from rows
        return
    cur = dbapi.cursor(name=f"auditagent_events_{uuid.uuid4().hex}")
    try:
        cur.itersize = 5000
        cur.execute(_EVENTS_SQL, (session_id,))
        yield from cur
    finally:
        cur.close()


_KEY_AND_EVENTS_SQL = (
    f"SELECT {', '.join(c.name for c in DataKeyRow.__table__.columns)}"
    f" FROM {DataKeyRow.__tablename__} WHERE session_id = %(sid)s; "
    f"SELECT {', '.join(EVENT_TUPLE_COLUMNS)} FROM {EventRow.__tablename__}"
    " WHERE session_id = %(sid)s ORDER BY seq"
)


def key_and_events_statements(session: Any) -> tuple[str, dict[str, Any], tuple[int]] | None:
    """For a session of at most ``FETCH_ALL_MAX`` records: the statements reading its data key
    row (named) and its sealed rows (tuples in ``EVENT_TUPLE_COLUMNS`` order), their
    parameters and which is named, to send in a batch (``store.batches``); None otherwise."""
    if session is None or session.event_count is None or session.event_count > FETCH_ALL_MAX:
        return None
    return _KEY_AND_EVENTS_SQL, {"sid": session.id}, (0,)


def data_key_and_events(
    conn: Connection, session_id: uuid.UUID, *, expected_rows: int | None
) -> tuple[Any | None, Iterator[tuple[Any, ...]]]:
    """:func:`get_data_key` and :func:`event_tuples` of one session. A session of at most
    ``FETCH_ALL_MAX`` records has both in one round trip and no transaction (each statement
    sees what was committed when it began, as under READ COMMITTED); a longer one is
    streamed as :func:`event_tuples` does."""
    if expected_rows is None or expected_rows > FETCH_ALL_MAX:
        key = get_data_key(conn, session_id)
        return key, event_tuples(conn, session_id, expected_rows=expected_rows)
    with batches.on_driver(conn) as db:
        found, rows = db.run(_KEY_AND_EVENTS_SQL, {"sid": session_id}, named=(0,))
    return (found[0] if found else None), iter(rows)


def get_data_key(conn: Connection, session_id: uuid.UUID) -> Any | None:
    return conn.execute(
        select(DataKeyRow.__table__).where(DataKeyRow.session_id == session_id)
    ).first()


def newest_data_key(conn: Connection) -> Any | None:
    """The most recently created data key that still exists (not shredded), or None."""
    return conn.execute(
        select(DataKeyRow.__table__)
        .where(DataKeyRow.wrapped.is_not(None), DataKeyRow.shredded_at.is_(None))
        .order_by(DataKeyRow.created_at.desc())
        .limit(1)
    ).first()


def holds_for_session(conn: Connection, session: Any) -> list[Any]:
    """Unreleased holds covering the session: on it, on its participant, or on its tenant."""
    scope = [
        and_(LegalHoldRow.scope == "session", LegalHoldRow.session_id == session.id),
        LegalHoldRow.scope == "tenant",
    ]
    if session.participant_index is not None:
        scope.append(
            and_(
                LegalHoldRow.scope == "participant",
                LegalHoldRow.participant_index == session.participant_index,
            )
        )
    return list(
        conn.execute(
            select(LegalHoldRow.__table__)
            .where(LegalHoldRow.tenant == session.tenant)
            .where(LegalHoldRow.released_at.is_(None))
            .where(or_(*scope))
            .order_by(LegalHoldRow.created_at)
        ).all()
    )


def verify_session(
    conn: Connection,
    session: Any,
    *,
    checkpoint: tuple[int, bytes] | None = None,
    problem: str | None = None,
) -> chain_verifier.VerifyResult:
    """Recompute the session's chain and hold it to the count and head on the sessions row.

    The row's (event_count, head_hash) act as a checkpoint, which is what catches a deleted
    last record: the remaining chain would otherwise still link perfectly. A superuser can
    rewrite that row too, so ``checkpoint`` — ``(count, head)`` from the session's signed
    checkpoint outside the database — is held to as well (``chain_verifier.hold_to_commitments``),
    and an open or closed session without records never verifies.
    """
    verifier = chain_verifier.ChainVerifier.for_session(session, checkpoint=checkpoint)
    add = verifier.add
    for row in event_tuples(conn, session.id, expected_rows=int(session.event_count or 0)):
        if not add(*row):
            break
    return verifier.finish(status=session.status, problem=problem)


def sessions_for_analytics(
    conn: Connection,
    *,
    tenant: str | None,
    started_from: datetime | None,
    started_to: datetime | None,
    max_sessions: int,
) -> list[Any]:
    """Newest sessions first, bounded, that still have a data key to read them with."""
    conds = _where(SessionFilter(tenant=tenant, started_from=started_from, started_to=started_to))
    conds.append(SessionRow.status.in_(["open", "closed"]))
    return list(
        conn.execute(
            select(SessionRow.__table__)
            .where(and_(*conds))
            .order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
            .limit(max_sessions)
        ).all()
    )


def timing_events(conn: Connection, session_id: uuid.UUID) -> Iterator[Any]:
    return iter_events(conn, session_id, kinds=["turn_timing"])


def iter_all_sessions(conn: Connection, *, tenant: str | None = None) -> Iterator[Any]:
    stmt = select(SessionRow.__table__).order_by(SessionRow.started_at, SessionRow.id)
    if tenant is not None:
        stmt = stmt.where(SessionRow.tenant == tenant)
    yield from conn.execution_options(yield_per=500).execute(stmt)
