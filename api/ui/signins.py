"""Server-side sign-ins of the review UI and one-time sign-in tokens (table ``ui_signins``).

The browser holds a random secret; the database holds only its labelled SHA-256, so a copy of
the table signs nobody in. A sign-in ends on sign-out, when its principal is revoked, after
``idle`` without a request, and ``absolute`` after it began, whichever comes first; expiry is
judged by the database clock, the one that stamped the row.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from auditagent.store.principals import Principal

__all__ = [
    "ONE_TIME_PREFIX",
    "SignIn",
    "SignInPolicy",
    "create_one_time_token",
    "end_signin",
    "redeem_one_time_token",
    "resolve_signin",
    "set_reason",
    "start_signin",
]

ONE_TIME_PREFIX = "aao_"
_SIGNIN_LABEL = b"auditagent/ui/signin/v1\0"
_MAX_SECRET_LEN = 256


@dataclass(frozen=True)
class SignInPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    one_time: timedelta = timedelta(minutes=15)
    """How long a one-time sign-in token (``auditagent demo``) stays redeemable."""


@dataclass(frozen=True)
class SignIn:
    id: uuid.UUID
    principal: Principal
    secret: str
    reason: str | None


def _hash(secret: str) -> bytes:
    return hashlib.sha256(_SIGNIN_LABEL + secret.encode("utf-8", "surrogatepass")).digest()


def _principal(row: Any) -> Principal:
    return Principal(
        id=row.principal_id,
        name=row.name,
        role="admin" if row.role == "admin" else "auditor",
        tenant=row.tenant,
        token_prefix=row.token_prefix,
        created_at=row.p_created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def start_signin(conn: Connection, principal_id: uuid.UUID, *, reason: str | None) -> str:
    """A new sign-in for ``principal_id``; returns the secret for the cookie."""
    secret = secrets.token_urlsafe(32)
    with conn.begin():
        conn.execute(
            text(
                "INSERT INTO ui_signins (id, kind, secret_hash, principal_id, reason)"
                " VALUES (:id, 'signin', :h, :p, :r)"
            ),
            {"id": uuid.uuid4(), "h": _hash(secret), "p": principal_id, "r": reason},
        )
    return secret


_RESOLVE = text(
    """
    UPDATE ui_signins s SET last_seen_at = now()
    FROM principals p
    WHERE s.secret_hash = :h AND s.kind = 'signin' AND s.ended_at IS NULL
      AND s.last_seen_at > now() - :idle AND s.created_at > now() - :absolute
      AND p.id = s.principal_id AND p.revoked_at IS NULL
    RETURNING s.id, s.reason, s.principal_id, p.name, p.role, p.tenant, p.token_prefix,
              p.created_at AS p_created_at, p.revoked_at, p.last_used_at
    """
)


def resolve_signin(conn: Connection, secret: str, policy: SignInPolicy) -> SignIn | None:
    """The live sign-in holding ``secret`` (its idle clock restarted), or None."""
    if not secret or len(secret) > _MAX_SECRET_LEN:
        return None
    with conn.begin():
        row = conn.execute(
            _RESOLVE, {"h": _hash(secret), "idle": policy.idle, "absolute": policy.absolute}
        ).first()
    if row is None:
        return None
    return SignIn(id=row.id, principal=_principal(row), secret=secret, reason=row.reason)


def end_signin(conn: Connection, signin_id: uuid.UUID) -> None:
    with conn.begin():
        conn.execute(
            text("UPDATE ui_signins SET ended_at = now() WHERE id = :id AND ended_at IS NULL"),
            {"id": signin_id},
        )


def set_reason(conn: Connection, signin_id: uuid.UUID, reason: str | None) -> None:
    with conn.begin():
        conn.execute(
            text("UPDATE ui_signins SET reason = :r WHERE id = :id"),
            {"id": signin_id, "r": reason},
        )


def create_one_time_token(engine: Engine, principal_id: uuid.UUID) -> str:
    """A token that signs ``principal_id`` in once, within ``SignInPolicy.one_time``."""
    token = ONE_TIME_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ui_signins (id, kind, secret_hash, principal_id)"
                " VALUES (:id, 'once', :h, :p)"
            ),
            {"id": uuid.uuid4(), "h": _hash(token), "p": principal_id},
        )
    return token


_REDEEM = text(
    """
    UPDATE ui_signins s SET ended_at = now()
    FROM principals p
    WHERE s.secret_hash = :h AND s.kind = 'once' AND s.ended_at IS NULL
      AND s.created_at > now() - :ttl AND p.id = s.principal_id AND p.revoked_at IS NULL
    RETURNING s.id, s.reason, s.principal_id, p.name, p.role, p.tenant, p.token_prefix,
              p.created_at AS p_created_at, p.revoked_at, p.last_used_at
    """
)


def redeem_one_time_token(conn: Connection, token: str, policy: SignInPolicy) -> Principal | None:
    """The principal of an unused, unexpired one-time token, which is used up by this call
    (a concurrent second redemption finds it ended)."""
    if not token.startswith(ONE_TIME_PREFIX) or len(token) > _MAX_SECRET_LEN:
        return None
    with conn.begin():
        row = conn.execute(_REDEEM, {"h": _hash(token), "ttl": policy.one_time}).first()
    return _principal(row) if row is not None else None
