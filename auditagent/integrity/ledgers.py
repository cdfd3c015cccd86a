"""The append-only ledgers outside a session's own chain: the access log, the deletion-record
chain and the retention change log. Their hash formats, and one verifier shape for all three.

Each entry is ``SHA-256(label || prev_hash || fields)`` linked from ``GENESIS``; deletion
records and retention changes also carry an Ed25519 signature by the checkpoint key over
``signature label || hash``. The formats are those of docs/architecture.md, byte for byte.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from auditagent.integrity import crypto
from auditagent.integrity.chain import GENESIS
from auditagent.integrity.encoding import (
    ACCESS_LABEL,
    CHANGE_LABEL,
    DELETION_LABEL,
    DELETION_LABEL_V1,
    at_microseconds,
    canonical_json,
    lp,
)

__all__ = [
    "ACCESS_MESSAGES",
    "CHANGE_MESSAGES",
    "DELETION_MESSAGES",
    "AccessFields",
    "LedgerMessages",
    "LedgerResult",
    "LedgerVerifier",
    "Signer",
    "access_hash",
    "change_hash",
    "deletion_record_hash",
    "signature_valid",
    "verify_access_rows",
]

_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


@dataclass(frozen=True)
class Signer:
    """The checkpoint key (Ed25519, from the keyring) as retention uses it to sign deletion
    records and change-log entries."""

    private: bytes
    public: bytes

    @classmethod
    def from_private(cls, private: bytes) -> Signer:
        return cls(private=private, public=crypto.signing_public_key(private))

    def sign(self, message: bytes) -> bytes:
        return crypto.sign(self.private, message)


def signature_valid(
    public_key: bytes, label: bytes, digest: bytes, signature: bytes | None
) -> bool:
    """An entry's Ed25519 signature over ``label || digest`` by ``public_key``."""
    return signature is not None and crypto.verify_signature(public_key, label + digest, signature)


# --- hash formats ---------------------------------------------------------------------------


class AccessFields(Protocol):
    """What the access-log hash covers of an entry (``store.access_log.AccessEntry``)."""

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
    """``SHA-256("auditagent/access/v1\\0" || prev_hash || i64 seq || i64 at_us || fields)``,
    each field a presence byte then, when present, length-prefixed."""
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
    h = hashlib.sha256(DELETION_LABEL if basis is not None else DELETION_LABEL_V1)
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
    h = hashlib.sha256(CHANGE_LABEL)
    h.update(prev_hash)
    h.update(lp(_U64.pack(seq)))
    h.update(lp(_I64.pack(at_microseconds(at))))
    h.update(lp(action.encode()))
    h.update(lp(tenant.encode()))
    h.update(lp(subject.bytes))
    h.update(lp(actor.encode()))
    h.update(lp(canonical_json(body)))
    return h.digest()


# --- one verifier for the three ledgers ----------------------------------------------------


@dataclass(frozen=True)
class LedgerMessages:
    """How one ledger words its findings (existing reports and tests rely on the wording)."""

    out_of_sequence: Callable[[int, int], tuple[int, str]]
    """(expected seq, seq found) -> (first bad seq, reason)."""
    prev_mismatch: Callable[[int], str]
    altered: Callable[[int], str]
    unsigned: Callable[[int], str]


def _access_seq(expected: int, got: int) -> tuple[int, str]:
    if got > expected:
        return expected, f"missing seq {expected}"
    return got, f"seq {got} out of order"


ACCESS_MESSAGES = LedgerMessages(
    out_of_sequence=_access_seq,
    prev_mismatch=lambda seq: "prev_hash mismatch",
    altered=lambda seq: "hash mismatch (entry altered)",
    unsigned=lambda seq: "not signed",
)
DELETION_MESSAGES = LedgerMessages(
    out_of_sequence=lambda expected, got: (expected, f"deletion record {expected} missing"),
    prev_mismatch=lambda seq: "deletion record prev_hash mismatch",
    altered=lambda seq: "deletion record altered (hash mismatch)",
    unsigned=lambda seq: (
        "deletion record not signed by the checkpoint key (forged, or written outside auditagent)"
    ),
)
CHANGE_MESSAGES = LedgerMessages(
    out_of_sequence=lambda expected, got: (expected, f"change log entry {expected} missing"),
    prev_mismatch=lambda seq: f"change log entry {seq}: prev_hash mismatch",
    altered=lambda seq: f"change log entry {seq}: altered (hash mismatch)",
    unsigned=lambda seq: (
        f"change log entry {seq}: not signed by the checkpoint key (forged, or written "
        "outside auditagent)"
    ),
)


@dataclass
class LedgerResult:
    ok: bool
    count: int
    head: bytes
    first_bad_seq: int | None
    reason: str | None
    hashes: dict[int, bytes] = field(default_factory=dict)
    """The verified hashes of the seqs asked for with ``keep``."""


class LedgerVerifier:
    """Streaming check of one ledger from ``GENESIS``: seq, link, recomputed hash and, where
    the ledger is signed, the signature; stops at the first bad entry. ``keep`` names seqs
    whose hash to collect (checkpoints commit to them)."""

    __slots__ = ("_failure", "count", "hashes", "head", "keep", "messages")

    def __init__(self, messages: LedgerMessages, *, keep: set[int] | None = None) -> None:
        self.messages = messages
        self.keep = keep
        self.count = 0
        self.head = GENESIS
        self.hashes: dict[int, bytes] = {}
        self._failure: tuple[int | None, str] | None = None

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def fail(self, seq: int | None, reason: str) -> bool:
        """Record a ledger-specific finding about the entry ``seq``; returns False."""
        if self._failure is None:
            self._failure = (seq, reason)
        return False

    def add(
        self,
        *,
        seq: int,
        prev_hash: bytes,
        stored_hash: bytes,
        recompute: Callable[[], bytes],
        signed: Callable[[bytes], bool] | None = None,
        check: Callable[[bytes], str | None] | None = None,
    ) -> bool:
        """Check the next entry. ``recompute`` gives its hash from its fields; ``check``
        (optional) returns a ledger-specific reason to refuse the verified hash; ``signed``
        (optional) says whether its signature over the hash verifies. False once failed."""
        if self._failure is not None:
            return False
        m = self.messages
        if seq != self.count:
            return self.fail(*m.out_of_sequence(self.count, seq))
        if prev_hash != self.head:
            return self.fail(seq, m.prev_mismatch(seq))
        digest = recompute()
        if digest != stored_hash:
            return self.fail(seq, m.altered(seq))
        if check is not None:
            problem = check(digest)
            if problem is not None:
                return self.fail(seq, problem)
        if signed is not None and not signed(digest):
            return self.fail(seq, m.unsigned(seq))
        self.head = digest
        if self.keep is not None and seq in self.keep:
            self.hashes[seq] = digest
        self.count += 1
        return True

    def result(self) -> LedgerResult:
        if self._failure is not None:
            seq, reason = self._failure
            return LedgerResult(False, self.count, self.head, seq, reason, self.hashes)
        return LedgerResult(True, self.count, self.head, None, None, self.hashes)


def verify_access_rows(
    rows: Iterable[Any], entry_of: Callable[[Any], AccessFields]
) -> LedgerResult:
    """The access-log chain over ``rows`` (``access_log`` rows in seq order); ``entry_of``
    turns a row into the entry its hash covers (``store.access_log._entry``)."""
    verifier = LedgerVerifier(ACCESS_MESSAGES)
    for row in rows:

        def recompute(row: Any = row, prev: bytes = verifier.head) -> bytes:
            return access_hash(prev_hash=prev, seq=row.seq, at=row.at, entry=entry_of(row))

        ok = verifier.add(
            seq=row.seq,
            prev_hash=bytes(row.prev_hash),
            stored_hash=bytes(row.hash),
            recompute=recompute,
        )
        if not ok:
            break
    return verifier.result()
