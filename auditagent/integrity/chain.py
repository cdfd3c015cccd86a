"""Per-session hash chain over sealed records: the link format. The verifier is
:mod:`auditagent.integrity.chain_verifier`.

The chain covers only sealed bytes (nonce and ciphertext, never plaintext), so it can be verified
without any decryption key and still verifies after a session's data key has been shredded.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Protocol

from auditagent.integrity.encoding import (
    AT,
    CHAIN_LABEL,
    SEQ,
    U32,
    at_microseconds,
    lp,
    uuid_field,
)

__all__ = [
    "GENESIS",
    "HASH_SIZE",
    "ChainRecord",
    "link",
    "link_fast",
]

GENESIS = bytes(32)
HASH_SIZE = 32

_sha256 = hashlib.sha256
_pack_seq = SEQ.pack
_pack_at = AT.pack
_pack_u32 = U32.pack


def link_fast(
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
    """The chain hash with the session's fixed fields already encoded (``head`` is the
    length-prefixed session id, ``kind_lp``/``key_lp`` the length-prefixed kind and key id):
    ``SHA-256(label || prev_hash || len-prefixed(session_id, seq, kind, key_id, tenant,
    at_us, nonce, ciphertext))`` as in docs/architecture.md. The one implementation; the
    verifier calls it positionally once per record."""
    if len(prev_hash) != HASH_SIZE:
        raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
    return _sha256(
        b"".join(
            (
                CHAIN_LABEL,
                prev_hash,
                head,
                _pack_seq(8, seq),
                kind_lp,
                key_lp,
                lp(tenant.encode()),
                _pack_at(8, at_microseconds(at)),
                _pack_u32(len(nonce)),
                nonce,
                _pack_u32(len(ciphertext)),
                ciphertext,
            )
        )
    ).digest()


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
    """One record's chain hash from its fields (:func:`link_fast` encodes them)."""
    return link_fast(
        prev_hash=prev_hash,
        head=uuid_field(session_id),
        seq=seq,
        kind_lp=lp(kind.encode()),
        key_lp=lp(key_id.encode()),
        tenant=tenant,
        at=at,
        nonce=nonce,
        ciphertext=ciphertext,
    )


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
