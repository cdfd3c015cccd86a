"""Compatibility re-exports: principals live in :mod:`auditagent.store.principals`, the access
log in :mod:`auditagent.store.access_log`, its hash in :mod:`auditagent.integrity.ledger_format`."""

from __future__ import annotations

from ..integrity.ledger_format import access_hash
from .access_log import (
    ACCESS_LOG_LOCK,
    AccessEntry,
    AccessLogUnavailable,
    AccessLogVerifyResult,
    LoggedAccess,
    append_access,
    append_access_on,
    append_refusal,
    list_access_log,
    verify_access_log,
)
from .principals import (
    ROLES,
    TOKEN_PREFIX,
    InvalidPrincipal,
    Principal,
    Role,
    authenticate,
    authenticate_on,
    create_principal,
    get_principal,
    hash_token,
    list_principals,
    revoke_principal,
)

__all__ = [
    "ACCESS_LOG_LOCK",
    "ROLES",
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
    "get_principal",
    "hash_token",
    "list_access_log",
    "list_principals",
    "revoke_principal",
    "verify_access_log",
]
