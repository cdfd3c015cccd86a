"""Associated data, the sealed envelope, and sealing + chaining in one step.

The associated data binds a ciphertext to its row (tenant, session, seq, kind, key id), so a
ciphertext copied to any other row fails to open even under the right data key.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from auditagent.integrity import chain, crypto, encoding
from auditagent.integrity.encoding import (
    DEK_LABEL,
    UUID_PREFIX,
    aad_head,
    read_lp,
    record_aad,
)
from auditagent.integrity.encoding import lp as _lp

__all__ = [
    "Envelope",
    "SessionOpener",
    "SessionSealer",
    "aad",
    "dek_context",
    "open_envelope",
    "seal_record",
]

_UUID_PREFIX = UUID_PREFIX


def aad(*, tenant: str, session_id: uuid.UUID, seq: int, kind: str, key_id: str) -> bytes:
    """Associated data for one record: length-prefixed fields under ``auditagent/event/v1``."""
    return record_aad(aad_head(tenant, session_id), seq, _lp(kind.encode()) + _lp(key_id.encode()))


def dek_context(*, tenant: str, session_id: uuid.UUID, key_id: str) -> bytes:
    """The ``context`` for wrapping a session's data key, so a wrapped key moved to another
    session, tenant or key id fails to unwrap."""
    return b"".join(
        (DEK_LABEL, _lp(tenant.encode()), _UUID_PREFIX, session_id.bytes, _lp(key_id.encode()))
    )


# to_bytes layout: magic, session uuid, seq u64, at_us i64, then length-prefixed tenant, kind,
# key_id, nonce, ciphertext, then prev_hash and hash (32 bytes each).
_MAGIC = b"AAE\x01"
_HEAD = struct.Struct(">4s16sQq")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which costs more
# than sealing does; nothing mutates an Envelope after it is built.
@dataclass(slots=True)
class Envelope:
    """One sealed, chained record. Holds no plaintext and no key."""

    session_id: uuid.UUID
    seq: int
    tenant: str
    kind: str
    at: datetime
    key_id: str
    nonce: bytes
    ciphertext: bytes
    prev_hash: bytes
    hash: bytes

    def to_bytes(self) -> bytes:
        """Compact binary form for the spool; ``at`` comes back as UTC (same instant)."""
        return b"".join(
            (
                _HEAD.pack(
                    _MAGIC, self.session_id.bytes, self.seq, encoding.at_microseconds(self.at)
                ),
                _lp(self.tenant.encode()),
                _lp(self.kind.encode()),
                _lp(self.key_id.encode()),
                _lp(self.nonce),
                _lp(self.ciphertext),
                self.prev_hash,
                self.hash,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        """Parse ``to_bytes`` output; ``ValueError`` on anything truncated or malformed."""
        view = memoryview(data)
        try:
            magic, sid, seq, at_us = _HEAD.unpack_from(view, 0)
            if magic != _MAGIC:
                raise ValueError("bad magic")
            pos = _HEAD.size
            fields, pos = read_lp(view, pos, 5)
            if len(view) - pos != 2 * chain.HASH_SIZE:
                raise ValueError("bad trailer length")
            prev_hash = bytes(view[pos : pos + chain.HASH_SIZE])
            digest = bytes(view[pos + chain.HASH_SIZE :])
            tenant, kind, key_id = (f.decode() for f in fields[:3])
            return cls(
                session_id=uuid.UUID(bytes=sid),
                seq=seq,
                tenant=tenant,
                kind=kind,
                at=_EPOCH + timedelta(microseconds=at_us),
                key_id=key_id,
                nonce=fields[3],
                ciphertext=fields[4],
                prev_hash=prev_hash,
                hash=digest,
            )
        except (struct.error, UnicodeDecodeError, OverflowError, ValueError) as exc:
            raise ValueError(f"malformed envelope: {exc}") from None


def seal_record(
    sealer: crypto.Sealer,
    *,
    tenant: str,
    session_id: uuid.UUID,
    seq: int,
    kind: str,
    key_id: str,
    at: datetime,
    plaintext: bytes,
    prev_hash: bytes,
) -> Envelope:
    """Seal ``plaintext`` under the session's data key and link it after ``prev_hash``."""
    return SessionSealer(sealer, tenant=tenant, session_id=session_id, key_id=key_id).seal(
        seq=seq, kind=kind, at=at, plaintext=plaintext, prev_hash=prev_hash
    )


def open_envelope(sealer: crypto.Sealer, env: Envelope) -> bytes:
    """Decrypt ``env``; ``IntegrityError`` if it was altered or moved from another row."""
    return sealer.open(
        env.nonce,
        env.ciphertext,
        aad(
            tenant=env.tenant,
            session_id=env.session_id,
            seq=env.seq,
            kind=env.kind,
            key_id=env.key_id,
        ),
    )


class SessionSealer:
    """``seal_record`` for one session, with the per-session parts encoded once.

    The writer seals every record of a session with the same tenant, session id and key id;
    precomputing their encodings halves the cost per record. Produces byte-for-byte the same
    associated data and chain hash as :func:`aad` and :func:`chain.link` (tested).
    """

    __slots__ = (
        "_aad_head",
        "_hash_head",
        "_key_tail",
        "_sealer",
        "key_id",
        "session_id",
        "tenant",
    )

    def __init__(
        self, sealer: crypto.Sealer, *, tenant: str, session_id: uuid.UUID, key_id: str
    ) -> None:
        self._sealer = sealer
        self.tenant = tenant
        self.session_id = session_id
        self.key_id = key_id
        self._aad_head = aad_head(tenant, session_id)
        self._key_tail = _lp(key_id.encode())
        self._hash_head = _UUID_PREFIX + session_id.bytes

    def seal(
        self, *, seq: int, kind: str, at: datetime, plaintext: bytes, prev_hash: bytes
    ) -> Envelope:
        kind_lp = _lp(kind.encode())
        nonce, ciphertext = self._sealer.seal(
            plaintext, record_aad(self._aad_head, seq, kind_lp + self._key_tail)
        )
        digest = chain.link_fast(
            prev_hash=prev_hash,
            head=self._hash_head,
            seq=seq,
            kind_lp=kind_lp,
            key_lp=self._key_tail,
            tenant=self.tenant,
            at=at,
            nonce=nonce,
            ciphertext=ciphertext,
        )
        return Envelope(
            self.session_id,
            seq,
            self.tenant,
            kind,
            at,
            self.key_id,
            nonce,
            ciphertext,
            prev_hash,
            digest,
        )


class SessionOpener:
    """:func:`open_envelope` for one session, with the per-session parts of the associated data
    encoded once (the read-side counterpart of :class:`SessionSealer`).

    Produces byte-for-byte the same associated data as :func:`aad` (tested). A row whose tenant
    or key id differs from the session's gets the associated data of its own fields, exactly as
    :func:`open_envelope` would build it, so it fails to open rather than being opened as
    another row's.
    """

    __slots__ = ("_aad_head", "_kinds", "_open", "key_id", "session_id", "tenant")

    def __init__(
        self, sealer: crypto.Sealer, *, tenant: str, session_id: uuid.UUID, key_id: str
    ) -> None:
        self._open = sealer.open
        self.tenant = tenant
        self.session_id = session_id
        self.key_id = key_id
        self._aad_head = aad_head(tenant, session_id)
        # kind -> len-prefixed kind + len-prefixed key id: a session uses a dozen kinds at most
        self._kinds: dict[str, bytes] = {}

    def aad(
        self, *, seq: int, kind: str, tenant: str | None = None, key_id: str | None = None
    ) -> bytes:
        """Associated data of the record ``seq`` (of this session unless ``tenant``/``key_id``
        say otherwise); equal to :func:`aad` with the same fields."""
        if (tenant is not None and tenant != self.tenant) or (
            key_id is not None and key_id != self.key_id
        ):
            return aad(
                tenant=self.tenant if tenant is None else tenant,
                session_id=self.session_id,
                seq=seq,
                kind=kind,
                key_id=self.key_id if key_id is None else key_id,
            )
        return record_aad(self._aad_head, seq, self._kinds.get(kind) or self._tail(kind))

    def _tail(self, kind: str) -> bytes:
        if len(self._kinds) >= 64:  # only a hostile table has this many kinds
            self._kinds.clear()
        tail = self._kinds[kind] = _lp(kind.encode()) + _lp(self.key_id.encode())
        return tail

    def open_row(
        self, seq: int, tenant: str, kind: str, key_id: str, nonce: bytes, ciphertext: bytes
    ) -> bytes:
        """:meth:`open` with positional fields, for the read path's per-record loop."""
        if tenant == self.tenant and key_id == self.key_id:
            aad_ = record_aad(self._aad_head, seq, self._kinds.get(kind) or self._tail(kind))
        else:
            aad_ = self.aad(seq=seq, kind=kind, tenant=tenant, key_id=key_id)
        return self._open(nonce, ciphertext, aad_)

    def open(
        self,
        *,
        seq: int,
        kind: str,
        nonce: bytes,
        ciphertext: bytes,
        tenant: str | None = None,
        key_id: str | None = None,
    ) -> bytes:
        """Decrypt one record; ``IntegrityError`` if it was altered or moved from another row."""
        return self._open(
            nonce, ciphertext, self.aad(seq=seq, kind=kind, tenant=tenant, key_id=key_id)
        )
