"""The hash-chained access log.

It is the HIPAA "record every read" control: a row is committed before any content leaves the
API, and a read whose row cannot be written is refused (fail closed, like a Vault audit device).
Rows are chained like events so that editing or removing one is detectable; the hashed format is
:func:`auditagent.integrity.ledgers.access_hash`, checked by the one ledger verifier there.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ..errors import AuditagentError, DatabaseUnavailable
from ..integrity.chain import GENESIS
from ..integrity.ledgers import access_hash, verify_access_rows
from . import batches
from .locks import xact_lock
from .models import AccessLogRow, SessionRow

# Arbitrary fixed key for pg_advisory_xact_lock: every access-log writer takes it, so concurrent
# API workers append to one chain instead of forking it.
ACCESS_LOG_LOCK = 0x6161_6363_6573_73  # "aaccess"


class AccessLogUnavailable(AuditagentError):
    """The access-log row could not be written, so the read it would record is refused."""

    def __init__(self) -> None:
        super().__init__(
            "the access log cannot be written, so the read is refused",
            fix="check the database (access_log table) and retry",
        )


@dataclass(frozen=True)
class AccessEntry:
    """What one read was: who, which action on which session/tenant, through which route, why."""

    action: str
    principal_id: uuid.UUID | None = None
    principal_name: str | None = None
    role: str | None = None
    tenant: str | None = None
    session_id: uuid.UUID | None = None
    route: str | None = None
    reason: str | None = None
    correlation_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedAccess:
    seq: int
    at: datetime
    entry: AccessEntry
    prev_hash: bytes
    hash: bytes


def _append(conn: Connection, entry: AccessEntry) -> LoggedAccess:
    xact_lock(conn, ACCESS_LOG_LOCK)
    head = conn.execute(
        select(AccessLogRow.seq, AccessLogRow.hash).order_by(AccessLogRow.seq.desc()).limit(1)
    ).first()
    seq, prev = (head.seq + 1, bytes(head.hash)) if head else (0, GENESIS)
    # Microsecond precision is what Postgres stores, so the hash recomputes from the row.
    at = datetime.now(timezone.utc)
    digest = access_hash(prev_hash=prev, seq=seq, at=at, entry=entry)
    conn.execute(
        insert(AccessLogRow).values(
            seq=seq,
            at=at,
            principal_id=entry.principal_id,
            principal_name=entry.principal_name,
            role=entry.role,
            tenant=entry.tenant,
            action=entry.action,
            session_id=entry.session_id,
            route=entry.route,
            reason=entry.reason,
            correlation_id=entry.correlation_id,
            detail=dict(entry.detail),
            prev_hash=prev,
            hash=digest,
        )
    )
    return LoggedAccess(seq=seq, at=at, entry=entry, prev_hash=prev, hash=digest)


def append_access(engine: Engine, entry: AccessEntry) -> LoggedAccess:
    """Commit one access-log row, or raise ``AccessLogUnavailable`` (the caller must refuse)."""
    from ..metrics import metrics

    try:
        with engine.begin() as conn:
            logged = _append(conn, entry)
    except SQLAlchemyError as exc:
        raise AccessLogUnavailable() from exc
    metrics().access_log_writes.inc()
    return logged


def append_access_on(conn: Connection, entry: AccessEntry) -> LoggedAccess:
    """:func:`append_access` on a connection the caller holds: the row is committed in a
    transaction of its own before this returns. Whatever the connection had begun implicitly
    (reads only, by contract) is rolled back first, so nothing else rides on that commit."""
    return append_session_access_on(conn, None, lambda _: entry).logged


@dataclass(frozen=True)
class SessionAccess:
    session: Any | None
    """The sessions row (as ``reader.get_session`` returns it), None when there is none."""
    logged: LoggedAccess
    after: list[list[Any]] | None = None
    """The rows of each statement of ``read_after``, read once the access-log row was
    committed; None when it asked for nothing."""


ReadAfter = Callable[[Any], tuple[str, dict[str, Any], Collection[int]] | None]
"""Given the sessions row: statements to run right after the access-log COMMIT, in the same
round trip (their SQL, parameters, and which of them give named rows), or None."""


def append_session_access_on(
    conn: Connection,
    session_id: uuid.UUID | None,
    entry_for: Callable[[Any | None], AccessEntry],
    *,
    read_after: ReadAfter | None = None,
) -> SessionAccess:
    """Read the sessions row of ``session_id`` (None: none to read) and commit the access-log
    row ``entry_for(session row or None)`` returns, in two round trips: the row, the lock and
    the chain's head in one, the insert and its COMMIT in the other. ``entry_for`` may raise
    (a session the caller may not see): the transaction is then rolled back, nothing is
    written, and its exception propagates.

    The commit carries the access-log row and nothing else (anything the connection had
    begun is rolled back first); the advisory lock is taken before the head is read, each in
    its own statement, so the head read is the one the lock's previous holder committed.
    ``read_after``'s statements follow the COMMIT in the second round trip: Postgres runs a
    query's statements in order and stops at the first that fails, so nothing is read unless
    the row was committed. A failure of those reads is reported as the access log's (503);
    the row may then be committed, which records an attempt, never hides a read."""
    from ..metrics import metrics

    session: Any | None = None
    try:
        with batches.on_driver(conn) as db:
            results = db.run(
                (_SESSION_SQL if session_id is not None else "") + _LOCK_AND_HEAD_SQL,
                {"session_id": session_id} if session_id is not None else None,
                named=session_id is not None,
            )
            if session_id is not None:
                found = results[0]
                session = found[0] if found else None
            entry = entry_for(session)
            head = results[-1]
            seq, prev = (head[0][0] + 1, bytes(head[0][1])) if head else (0, GENESIS)
            # Microsecond precision is what Postgres stores, so the hash recomputes from the row.
            at = datetime.now(timezone.utc)
            digest = access_hash(prev_hash=prev, seq=seq, at=at, entry=entry)
            params = _insert_params(entry, seq=seq, at=at, prev=prev, digest=digest)
            then = read_after(session) if read_after is not None else None
            if then is None:
                db.run(_INSERT_SQL, params)
                after = None
            else:
                sql, more, named = then
                # INSERT, COMMIT, then read_after's statements
                after = db.run(
                    f"{_INSERT_SQL}; {sql}", {**params, **more}, named={2 + i for i in named}
                )[2:]
    except SQLAlchemyError as exc:
        raise AccessLogUnavailable() from exc
    metrics().access_log_writes.inc()
    logged = LoggedAccess(seq=seq, at=at, entry=entry, prev_hash=prev, hash=digest)
    return SessionAccess(session, logged, after)


_T = AccessLogRow.__tablename__
# The columns in the model's order, as ``reader.get_session`` returns them.
_SESSION_SQL = (
    f"SELECT {', '.join(c.name for c in SessionRow.__table__.columns)}"
    f" FROM {SessionRow.__tablename__} WHERE id = %(session_id)s; "
)
_LOCK_AND_HEAD_SQL = (
    f"BEGIN; SELECT pg_advisory_xact_lock({ACCESS_LOG_LOCK}); "
    f"SELECT seq, hash FROM {_T} ORDER BY seq DESC LIMIT 1"
)
_INSERT_COLUMNS = (
    "seq",
    "at",
    "principal_id",
    "principal_name",
    "role",
    "tenant",
    "action",
    "session_id",
    "route",
    "reason",
    "correlation_id",
    "detail",
    "prev_hash",
    "hash",
)
_INSERT_SQL = (
    f"INSERT INTO {_T} ({', '.join(_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in _INSERT_COLUMNS)}); COMMIT"
)


def _insert_params(
    entry: AccessEntry, *, seq: int, at: datetime, prev: bytes, digest: bytes
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": at,
        "principal_id": entry.principal_id,
        "principal_name": entry.principal_name,
        "role": entry.role,
        "tenant": entry.tenant,
        "action": entry.action,
        "session_id": entry.session_id,
        "route": entry.route,
        "reason": entry.reason,
        "correlation_id": entry.correlation_id,
        "detail": Jsonb(dict(entry.detail)),
        "prev_hash": prev,
        "hash": digest,
    }


def append_refusal(engine: Engine, entry: AccessEntry, *, caller_tenant: str | None) -> int:
    """Access-log a refused attempt; returns how many rows were committed.

    The data owner (``entry.tenant``) must see that an attempt on its data was refused, but
    not who made it when the caller belongs to another tenant (or to none): an auditor of
    tenant A would otherwise read another customer's key names. So, in one transaction,

    * the caller's row — identity, reason, target — goes under no tenant, which only
      tenantless admins can list, with ``detail.target_tenant``;
    * the owner's row goes under ``entry.tenant`` with no principal, role or reason, and
      ``detail.ref`` = the seq of the caller's row, for an admin to follow up.

    A refusal within the caller's own tenant is one row with the identity. Both rows keep the
    request's correlation id (the caller's ``X-Request-ID``).
    """
    from ..metrics import metrics

    try:
        with engine.begin() as conn:
            if entry.tenant is not None and entry.tenant == caller_tenant:
                _append(conn, entry)
                written = 1
            else:
                who = _append(
                    conn,
                    replace(
                        entry, tenant=None, detail={**entry.detail, "target_tenant": entry.tenant}
                    ),
                )
                written = 1
                if entry.tenant is not None:
                    _append(
                        conn,
                        AccessEntry(
                            action=entry.action,
                            tenant=entry.tenant,
                            session_id=entry.session_id,
                            route=entry.route,
                            correlation_id=entry.correlation_id,
                            detail={**entry.detail, "ref": who.seq},
                        ),
                    )
                    written = 2
    except SQLAlchemyError as exc:
        raise AccessLogUnavailable() from exc
    metrics().access_log_writes.inc(written)
    return written


def _entry(row: Any) -> AccessEntry:
    return AccessEntry(
        action=row.action,
        principal_id=row.principal_id,
        principal_name=row.principal_name,
        role=row.role,
        tenant=row.tenant,
        session_id=row.session_id,
        route=row.route,
        reason=row.reason,
        correlation_id=row.correlation_id,
        detail=dict(row.detail or {}),
    )


def list_access_log(
    engine: Engine,
    *,
    tenant: str | None = None,
    session_id: uuid.UUID | None = None,
    principal_id: uuid.UUID | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[LoggedAccess]:
    """Newest first; page with ``before_seq`` = the last seq of the previous page."""
    stmt = select(AccessLogRow).order_by(AccessLogRow.seq.desc()).limit(limit)
    if tenant is not None:
        stmt = stmt.where(AccessLogRow.tenant == tenant)
    if session_id is not None:
        stmt = stmt.where(AccessLogRow.session_id == session_id)
    if principal_id is not None:
        stmt = stmt.where(AccessLogRow.principal_id == principal_id)
    if before_seq is not None:
        stmt = stmt.where(AccessLogRow.seq < before_seq)
    try:
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable("cannot read the access log", fix="check the database") from exc
    return [
        LoggedAccess(
            seq=r.seq,
            at=r.at,
            entry=_entry(r),
            prev_hash=bytes(r.prev_hash),
            hash=bytes(r.hash),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class AccessLogVerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None
    reason: str | None
    head_hash: bytes


def verify_access_log(engine: Engine, *, batch: int = 1000) -> AccessLogVerifyResult:
    """Recompute the whole access-log chain from genesis."""
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=batch).execute(
            select(AccessLogRow).order_by(AccessLogRow.seq)
        )
        res = verify_access_rows(rows, _entry)
    return AccessLogVerifyResult(res.ok, res.count, res.first_bad_seq, res.reason, res.head)
