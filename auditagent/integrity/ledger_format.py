"""The hashed and signed formats of the two ledgers: deletion records with the retention change
log, and the access log.

Bytes here are a contract with every database already written: a change to any of them makes
existing rows fail verification. Each hash is a domain label, the previous hash, then fields
length-prefixed with :func:`auditagent.integrity.encoding.lp`.
"""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from . import crypto
from .encoding import at_microseconds, lp

__all__ = [
    "ACCESS_LABEL",
    "CHANGE_SIGNATURE_LABEL",
    "DELETION_SIGNATURE_LABEL",
    "AccessFields",
    "Signer",
    "access_hash",
    "canonical_json",
    "change_hash",
    "deletion_record_hash",
    "parse_ts",
    "signature_valid",
    "ts",
]

_DELETION_LABEL_V1 = b"auditagent/deletion/v1\0"
_DELETION_LABEL = b"auditagent/deletion/v2\0"
DELETION_SIGNATURE_LABEL = b"auditagent/deletion-signature/v1\0"
_CHANGE_LABEL = b"auditagent/retention-change/v1\0"
CHANGE_SIGNATURE_LABEL = b"auditagent/retention-change-signature/v1\0"
ACCESS_LABEL = b"auditagent/access/v1\0"
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The bytes hashed for a JSON field: sorted keys, no spaces, ASCII. Values are strings,
    integers, booleans, null and nested objects/lists only (no floats), so a JSONB round trip
    gives the same bytes back."""
    return json.dumps(
        dict(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode()


def ts(t: datetime) -> str:
    """A time as it is written into hashed JSON: UTC, microseconds, ``Z``."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Signer:
    """The checkpoint key (Ed25519, from the keyring) as retention uses it."""

    private: bytes
    public: bytes

    @classmethod
    def from_private(cls, private: bytes) -> Signer:
        return cls(private=private, public=crypto.signing_public_key(private))

    def sign(self, message: bytes) -> bytes:
        return crypto.sign(self.private, message)


def deletion_record_hash(
    *,
    prev_hash: bytes,
    seq: int,
    run_id: uuid.UUID | None,
    session_id: uuid.UUID,
    tenant: str,
    policy: str,
    reason: str,
    event_count: int,
    final_hash: bytes | None,
    deleted_at: datetime,
    basis: Mapping[str, Any] | None = None,
) -> bytes:
    """``SHA-256("auditagent/deletion/v2\\0" || prev_hash || len-prefixed(seq, run_id,
    session_id, tenant, policy, reason, event_count, final_hash, deleted_at_us,
    canonical-JSON basis))``. Records without a basis (written before migration 0017) use
    the v1 label and no basis field. An absent run id or final hash is an empty field."""
    if len(prev_hash) != 32:
        raise ValueError("prev_hash must be 32 bytes")
    h = hashlib.sha256(_DELETION_LABEL if basis is not None else _DELETION_LABEL_V1)
    h.update(prev_hash)
    h.update(lp(_U64.pack(seq)))
    h.update(lp(run_id.bytes if run_id is not None else b""))
    h.update(lp(session_id.bytes))
    h.update(lp(tenant.encode()))
    h.update(lp(policy.encode()))
    h.update(lp(reason.encode()))
    h.update(lp(_U64.pack(event_count)))
    h.update(lp(final_hash or b""))
    h.update(lp(_I64.pack(at_microseconds(deleted_at))))
    if basis is not None:
        h.update(lp(canonical_json(basis)))
    return h.digest()


def change_hash(
    *,
    prev_hash: bytes,
    seq: int,
    at: datetime,
    action: str,
    tenant: str,
    subject: uuid.UUID,
    actor: str,
    body: Mapping[str, Any],
) -> bytes:
    """``SHA-256("auditagent/retention-change/v1\\0" || prev_hash || len-prefixed(seq, at_us,
    action, tenant, subject, actor, canonical-JSON body))``."""
    if len(prev_hash) != 32:
        raise ValueError("prev_hash must be 32 bytes")
    h = hashlib.sha256(_CHANGE_LABEL)
    h.update(prev_hash)
    h.update(lp(_U64.pack(seq)))
    h.update(lp(_I64.pack(at_microseconds(at))))
    h.update(lp(action.encode()))
    h.update(lp(tenant.encode()))
    h.update(lp(subject.bytes))
    h.update(lp(actor.encode()))
    h.update(lp(canonical_json(body)))
    return h.digest()


def signature_valid(
    public_key: bytes, label: bytes, digest: bytes, signature: bytes | None
) -> bool:
    return signature is not None and crypto.verify_signature(public_key, label + digest, signature)


class AccessFields(Protocol):
    """What one access-log entry hashes (``store.access_log.AccessEntry``)."""

    @property
    def action(self) -> str: ...
    @property
    def principal_id(self) -> uuid.UUID | None: ...
    @property
    def principal_name(self) -> str | None: ...
    @property
    def role(self) -> str | None: ...
    @property
    def tenant(self) -> str | None: ...
    @property
    def session_id(self) -> uuid.UUID | None: ...
    @property
    def route(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def detail(self) -> Mapping[str, Any]: ...


def _opt(value: str | bytes | None) -> bytes:
    # A presence byte keeps None and "" apart in the hashed encoding.
    if value is None:
        return b"\x00"
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return b"\x01" + lp(data)


def access_hash(*, prev_hash: bytes, seq: int, at: datetime, entry: AccessFields) -> bytes:
    """``SHA-256("auditagent/access/v1\\0" || prev_hash || fields)``, fields length-prefixed."""
    h = hashlib.sha256(ACCESS_LABEL)
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
        canonical_json(entry.detail),
    ):
        h.update(_opt(value))
    return h.digest()
