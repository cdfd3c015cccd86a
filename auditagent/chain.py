"""Per-session hash chain over sealed records, and its verifier.

The chain covers only sealed bytes (nonce and ciphertext, never plaintext), so it can be verified
without any decryption key and still verifies after a session's data key has been shredded.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from auditagent.integrity.encoding import at_microseconds
from auditagent.integrity.encoding import lp as _lp

__all__ = ["GENESIS", "ChainRecord", "VerifyResult", "at_microseconds", "link", "verify"]

GENESIS = bytes(32)
HASH_SIZE = 32

_LABEL = b"auditagent/chain/v1\0"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)
_U32 = struct.Struct(">I")
# Fixed-width fields are still length-prefixed so every field is encoded the same way and
# the format stays unambiguous if a width ever changes under a new label.
_SEQ = struct.Struct(">IQ")  # len=8, seq as unsigned 64-bit
_AT = struct.Struct(">Iq")  # len=8, microseconds as signed 64-bit
_UUID_PREFIX = _U32.pack(16)


def link(
    *,
    prev_hash: bytes,
    session_id: uuid.UUID,
    seq: int,
    kind: str,
    key_id: str,
    tenant: str,
    at: datetime,
    nonce: bytes,
    ciphertext: bytes,
) -> bytes:
    """``SHA-256(label || prev_hash || len-prefixed(session_id, seq, kind, key_id, tenant,
    at_us, nonce, ciphertext))`` as in docs/architecture.md."""
    if len(prev_hash) != HASH_SIZE:
        raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
    h = hashlib.sha256(_LABEL)
    h.update(prev_hash)
    h.update(_UUID_PREFIX)
    h.update(session_id.bytes)
    h.update(_SEQ.pack(8, seq))
    h.update(_lp(kind.encode()))
    h.update(_lp(key_id.encode()))
    h.update(_lp(tenant.encode()))
    h.update(_AT.pack(8, at_microseconds(at)))
    h.update(_U32.pack(len(nonce)))
    h.update(nonce)
    h.update(_U32.pack(len(ciphertext)))
    h.update(ciphertext)
    return h.digest()


class ChainRecord(Protocol):
    """What ``verify`` reads from a row: an ``Envelope``, an ORM row or anything shaped alike."""

    @property
    def session_id(self) -> uuid.UUID: ...
    @property
    def seq(self) -> int: ...
    @property
    def tenant(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def key_id(self) -> str: ...
    @property
    def nonce(self) -> bytes: ...
    @property
    def ciphertext(self) -> bytes: ...
    @property
    def prev_hash(self) -> bytes: ...
    @property
    def hash(self) -> bytes: ...


@dataclass
class VerifyResult:
    """Outcome of ``verify``.

    ``events`` counts the records that verified before the first failure (all of them when
    ``ok``); ``head_hash`` is the hash of the last of those (``GENESIS`` when none did).
    """

    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str | None
    head_hash: bytes


def verify(
    rows: Iterable[ChainRecord],
    *,
    expected_count: int | None = None,
    expected_head: bytes | None = None,
) -> VerifyResult:
    """Check one session's chain, streaming ``rows`` in the order given (ascending ``seq``).

    ``expected_count`` / ``expected_head`` come from a checkpoint: at least that many records
    must exist, and the record at ``seq == expected_count - 1`` must have that hash. Records
    appended after the checkpoint are allowed, because a checkpoint can be taken of a live
    session. ``expected_head`` alone is compared with the final head.
    """
    prev = GENESIS
    count = 0
    head_at_expected: bytes | None = GENESIS if expected_count == 0 else None
    session: uuid.UUID | None = None
    tenant: str | None = None

    def bad(seq: int | None, reason: str) -> VerifyResult:
        return VerifyResult(
            ok=False, events=count, first_bad_seq=seq, reason=reason, head_hash=prev
        )

    for row in rows:
        seq = row.seq
        if seq != count:
            if seq > count:
                return bad(count, f"missing seq {count}")
            return bad(seq, f"seq {seq} out of order or duplicated (expected {count})")
        if session is None:
            session, tenant = row.session_id, row.tenant
        elif row.session_id != session or row.tenant != tenant:
            return bad(seq, "record belongs to another session")
        try:
            row_prev = bytes(row.prev_hash)
            row_hash = bytes(row.hash)
            if row_prev != prev:
                return bad(seq, "prev_hash mismatch")
            computed = link(
                prev_hash=row_prev,
                session_id=row.session_id,
                seq=seq,
                kind=row.kind,
                key_id=row.key_id,
                tenant=row.tenant,
                at=row.at,
                nonce=bytes(row.nonce),
                ciphertext=bytes(row.ciphertext),
            )
        except (ValueError, TypeError, AttributeError, struct.error) as exc:
            # A malformed row is a verification failure to report, not a crash mid-audit.
            return bad(seq, f"malformed record: {type(exc).__name__}")
        if computed != row_hash:
            return bad(seq, "hash mismatch (record altered)")
        prev = computed
        count += 1
        if expected_count is not None and count == expected_count:
            head_at_expected = computed

    if expected_count is not None:
        if count < expected_count:
            return bad(count, f"chain truncated: {count} events, expected {expected_count}")
        if expected_head is not None and head_at_expected != expected_head:
            return bad(None, "head hash mismatch at checkpoint")
    elif expected_head is not None and prev != expected_head:
        return bad(None, "head hash mismatch (chain truncated or rewritten)")
    return VerifyResult(ok=True, events=count, first_bad_seq=None, reason=None, head_hash=prev)


def link_fast(
    *,
    prev_hash: bytes,
    head: bytes,
    seq: int,
    kind_lp: bytes,
    key_lp: bytes,
    tenant: str,
    at: datetime,
    nonce: bytes,
    ciphertext: bytes,
) -> bytes:
    """:func:`link` with the session's fixed fields already encoded (``head`` is the
    length-prefixed session id, ``kind_lp``/``key_lp`` the length-prefixed kind and key id).

    One hash over one joined buffer instead of a dozen ``update`` calls; same digest.
    """
    if len(prev_hash) != HASH_SIZE:
        raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
    return hashlib.sha256(
        b"".join(
            (
                _LABEL,
                prev_hash,
                head,
                _SEQ.pack(8, seq),
                kind_lp,
                key_lp,
                _lp(tenant.encode()),
                _AT.pack(8, at_microseconds(at)),
                _U32.pack(len(nonce)),
                nonce,
                _U32.pack(len(ciphertext)),
                ciphertext,
            )
        )
    ).digest()


def hold_to_commitments(
    result: VerifyResult,
    *,
    status: str | None,
    checkpoint: tuple[int, bytes] | None = None,
    head_at_checkpoint: bytes | None = None,
    problem: str | None = None,
) -> VerifyResult:
    """Hold a session's verified chain to what is known about it from outside its rows.

    * A session still ``open`` or ``closed`` (not erased by retention) always has records:
      every recording starts with ``opened``, so an empty chain means its events were deleted.
    * ``checkpoint`` is ``(count, head)`` from the session's signed checkpoint (kept outside
      the database): the chain must have at least ``count`` records and ``head_at_checkpoint``
      (the hash of record ``count - 1``, collected while verifying) must equal ``head``.
    * ``problem`` is a reason to fail already found (e.g. a checkpoint that does not verify).

    The first failure of ``result`` itself is kept as it is.
    """
    if not result.ok:
        return result

    def bad(seq: int | None, reason: str) -> VerifyResult:
        return VerifyResult(
            ok=False,
            events=result.events,
            first_bad_seq=seq,
            reason=reason,
            head_hash=result.head_hash,
        )

    if problem is not None:
        return bad(None, problem)
    if result.events == 0 and status in ("open", "closed"):
        return bad(0, "no records: every session starts with an `opened` record (deleted?)")
    if checkpoint is not None:
        count, head = checkpoint
        if result.events < count:
            return bad(
                result.events,
                f"chain truncated: {result.events} events, its signed checkpoint has {count}",
            )
        if count > 0 and head_at_checkpoint != head:
            return bad(None, "head hash differs from its signed checkpoint (chain rewritten)")
    return result
