"""API principals (token hashes only) and the hash-chained access log.

The access log is the HIPAA "record every read" control: a row is committed before any content
leaves the API, and a read whose row cannot be written is refused (fail closed, like a Vault
audit device). Rows are chained like events so that editing or removing one is detectable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import struct
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from ..chain import GENESIS, at_microseconds
from ..errors import AuditagentError, DatabaseUnavailable, NotFound
from .models import AccessLogRow, PrincipalRow

__all__ = [
    "ACCESS_LOG_LOCK",
    "TOKEN_PREFIX",
    "AccessEntry",
    "AccessLogUnavailable",
    "AccessLogVerifyResult",
    "InvalidPrincipal",
    "LoggedAccess",
    "Principal",
    "Role",
    "access_hash",
    "append_access",
    "append_access_on",
    "append_refusal",
    "authenticate",
    "authenticate_on",
    "create_principal",
    "hash_token",
    "list_access_log",
    "list_principals",
    "revoke_principal",
    "verify_access_log",
]

Role = Literal["auditor", "admin"]
ROLES: tuple[Role, ...] = ("auditor", "admin")

TOKEN_PREFIX = "aa_"
# Tokens are 256 random bits, so a plain (labelled) SHA-256 is enough: there is nothing to
# brute-force that a slow password hash would protect.
_TOKEN_LABEL = b"auditagent/apikey/v1\0"
_MAX_TOKEN_LEN = 256

_ACCESS_LABEL = b"auditagent/access/v1\0"
# Arbitrary fixed key for pg_advisory_xact_lock: every access-log writer takes it, so concurrent
# API workers append to one chain instead of forking it.
ACCESS_LOG_LOCK = 0x6161_6363_6573_73  # "aaccess"
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")


class InvalidPrincipal(AuditagentError):
    """A principal that must not exist (auditor without tenant, unknown role)."""


class AccessLogUnavailable(AuditagentError):
    """The access-log row could not be written, so the read it would record is refused."""

    def __init__(self) -> None:
        super().__init__(
            "the access log cannot be written, so the read is refused",
            fix="check the database (access_log table) and retry",
        )


# --- principals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    id: uuid.UUID
    name: str
    role: Role
    tenant: str | None
    token_prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _principal(row: Any) -> Principal:
    role: Role = "admin" if row.role == "admin" else "auditor"
    return Principal(
        id=row.id,
        name=row.name,
        role=role,
        tenant=row.tenant,
        token_prefix=row.token_prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def hash_token(token: str) -> bytes:
    return hashlib.sha256(_TOKEN_LABEL + token.encode("utf-8", "surrogatepass")).digest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_principal(
    engine: Engine, *, role: str, tenant: str | None, name: str
) -> tuple[Principal, str]:
    """Store a new principal; returns it and its token, which exists nowhere else afterwards."""
    if role not in ROLES:
        raise InvalidPrincipal(f"unknown role {role!r}", fix="use --role auditor or --role admin")
    if role == "auditor" and not tenant:
        # An auditor spanning every tenant would defeat tenant isolation; only admins may.
        raise InvalidPrincipal(
            "an auditor key needs a tenant", fix="pass --tenant TENANT (or create an admin key)"
        )
    if not name.strip():
        raise InvalidPrincipal("a key needs a name", fix="pass --name NAME")
    token = _new_token()
    pid = uuid.uuid4()
    with engine.begin() as conn:
        row = conn.execute(
            insert(PrincipalRow)
            .values(
                id=pid,
                name=name,
                role=role,
                tenant=tenant or None,
                token_prefix=token[:10],
                token_hash=hash_token(token),
            )
            .returning(PrincipalRow)
        ).one()
    return _principal(row), token


def list_principals(engine: Engine, *, tenant: str | None = None) -> list[Principal]:
    stmt = select(PrincipalRow).order_by(PrincipalRow.created_at, PrincipalRow.id)
    if tenant is not None:
        stmt = stmt.where(PrincipalRow.tenant == tenant)
    with engine.connect() as conn:
        return [_principal(r) for r in conn.execute(stmt)]


def get_principal(engine: Engine, principal_id: uuid.UUID) -> Principal | None:
    with engine.connect() as conn:
        row = conn.execute(select(PrincipalRow).where(PrincipalRow.id == principal_id)).first()
    return _principal(row) if row else None


def revoke_principal(
    engine: Engine, principal_id: uuid.UUID, *, tenant: str | None = None
) -> Principal:
    """Revoke (idempotently); ``tenant`` restricts which principals may be revoked."""
    stmt = (
        update(PrincipalRow)
        .where(PrincipalRow.id == principal_id)
        .values(revoked_at=text("coalesce(revoked_at, now())"))
        .returning(PrincipalRow)
    )
    if tenant is not None:
        stmt = stmt.where(PrincipalRow.tenant == tenant)
    with engine.begin() as conn:
        row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"no API key {principal_id}", fix="see `auditagent apikey list`")
    return _principal(row)


def authenticate(engine: Engine, token: str) -> Principal | None:
    """The live principal holding ``token``; None for unknown, malformed or revoked tokens."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LEN:
        return None
    with engine.connect() as conn:
        return authenticate_on(conn, token)


def authenticate_on(conn: Connection, token: str) -> Principal | None:
    """:func:`authenticate` on a connection the caller holds (not inside a transaction); the
    check and the throttled ``last_used_at`` update are committed before it returns."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LEN:
        return None
    digest = hash_token(token)
    with conn.begin():
        row = conn.execute(select(PrincipalRow).where(PrincipalRow.token_hash == digest)).first()
        if row is None:
            return None
        principal = _principal(row)
        # Constant-time compare as belt and braces; the lookup itself was by exact hash.
        if not hmac.compare_digest(row.token_hash, digest) or principal.revoked_at is not None:
            return None
        # Throttled so that a busy client does not turn every read into a row update.
        conn.execute(
            update(PrincipalRow)
            .where(PrincipalRow.id == principal.id)
            .where(
                (PrincipalRow.last_used_at.is_(None))
                | (PrincipalRow.last_used_at < text("now() - interval '60 seconds'"))
            )
            .values(last_used_at=text("now()"))
        )
    return principal


# --- access log ------------------------------------------------------------------------------


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


def _opt(value: str | bytes | None) -> bytes:
    # A presence byte keeps None and "" apart in the hashed encoding.
    if value is None:
        return b"\x00"
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return b"\x01" + _U32.pack(len(data)) + data


def _canonical_detail(detail: Mapping[str, Any]) -> bytes:
    return json.dumps(
        dict(detail), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode()


def access_hash(*, prev_hash: bytes, seq: int, at: datetime, entry: AccessEntry) -> bytes:
    """``SHA-256("auditagent/access/v1\\0" || prev_hash || fields)``, fields length-prefixed."""
    h = hashlib.sha256(_ACCESS_LABEL)
    h.update(prev_hash)
    h.update(_I64.pack(seq))
    h.update(_I64.pack(at_microseconds(at)))
    for value in (
        entry.principal_id.bytes if entry.principal_id else None,
        entry.principal_name,
        entry.role,
        entry.tenant,
        entry.action,
        entry.session_id.bytes if entry.session_id else None,
        entry.route,
        entry.reason,
        entry.correlation_id,
        _canonical_detail(entry.detail),
    ):
        h.update(_opt(value))
    return h.digest()


def _append(conn: Connection, entry: AccessEntry) -> LoggedAccess:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ACCESS_LOG_LOCK})
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
    from ..metrics import metrics

    try:
        if conn.in_transaction():
            conn.rollback()
        with conn.begin():
            logged = _append(conn, entry)
    except SQLAlchemyError as exc:
        raise AccessLogUnavailable() from exc
    metrics().access_log_writes.inc()
    return logged


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


def _iter_rows(engine: Engine, batch: int = 1000) -> Iterator[Any]:
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(
            select(AccessLogRow).order_by(AccessLogRow.seq)
        )
        yield from result


def verify_access_log(engine: Engine) -> AccessLogVerifyResult:
    """Recompute the whole access-log chain from genesis."""
    prev = GENESIS
    count = 0
    for row in _iter_rows(engine):
        if row.seq != count:
            reason = f"missing seq {count}" if row.seq > count else f"seq {row.seq} out of order"
            return AccessLogVerifyResult(False, count, min(row.seq, count), reason, prev)
        if bytes(row.prev_hash) != prev:
            return AccessLogVerifyResult(False, count, row.seq, "prev_hash mismatch", prev)
        computed = access_hash(prev_hash=prev, seq=row.seq, at=row.at, entry=_entry(row))
        if computed != bytes(row.hash):
            return AccessLogVerifyResult(
                False, count, row.seq, "hash mismatch (entry altered)", prev
            )
        prev = computed
        count += 1
    return AccessLogVerifyResult(True, count, None, None, prev)
