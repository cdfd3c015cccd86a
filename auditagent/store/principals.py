"""API principals: who may call the review API, stored as token hashes only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import Connection, Engine, func, insert, select, update

from ..errors import AuditagentError, NotFound
from . import batches
from .models import PrincipalRow

Role = Literal["auditor", "admin"]
ROLES: tuple[Role, ...] = ("auditor", "admin")

TOKEN_PREFIX = "aa_"
# Tokens are 256 random bits, so a plain (labelled) SHA-256 is enough: there is nothing to
# brute-force that a slow password hash would protect.
_TOKEN_LABEL = b"auditagent/apikey/v1\0"
_MAX_TOKEN_LEN = 256


class InvalidPrincipal(AuditagentError):
    """A principal that must not exist (auditor without tenant, unknown role)."""


# ``last_used_at`` is refreshed at most this often, so authentication rarely writes.
_LAST_USED_GRANULARITY = timedelta(seconds=60)


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
        .values(revoked_at=func.coalesce(PrincipalRow.revoked_at, func.now()))
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
    check and the throttled ``last_used_at`` update are committed before it returns.

    One statement, one round trip: the lookup and the update ride in one autocommitted
    statement (a data-modifying CTE runs to completion whether or not its rows are read)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LEN:
        return None
    digest = hash_token(token)
    with batches.on_driver(conn) as db:
        found = db.rows(_AUTHENTICATE_SQL, {"digest": digest, "every": _LAST_USED_GRANULARITY})
    if not found:
        return None
    row = _PrincipalTuple(*found[0])
    principal = _principal(row)
    # Constant-time compare as belt and braces; the lookup itself was by exact hash.
    if not hmac.compare_digest(bytes(row.token_hash), digest) or principal.revoked_at is not None:
        return None
    return principal


class _PrincipalTuple(NamedTuple):
    id: uuid.UUID
    name: str
    role: str
    tenant: str | None
    token_prefix: str
    token_hash: bytes
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


_P = PrincipalRow.__tablename__
# Throttled so that a busy client does not turn every read into a row update; the row's own
# columns are tested (not the CTE's copy), so a concurrent request that updated it first wins.
_AUTHENTICATE_SQL = f"""
WITH found AS (
    SELECT {", ".join(_PrincipalTuple._fields)} FROM {_P} WHERE token_hash = %(digest)s
), touched AS (
    UPDATE {_P} SET last_used_at = now()
    FROM found
    WHERE {_P}.id = found.id AND {_P}.revoked_at IS NULL
      AND ({_P}.last_used_at IS NULL OR {_P}.last_used_at < now() - %(every)s)
    RETURNING {_P}.id
)
SELECT * FROM found
"""
