"""Sealing audio chunks under the session's data key, and the digest the chain commits to.

The associated data binds a chunk to its session, tenant, key id, index and place on the
timeline, so a chunk moved to another session, swapped with its neighbour or shifted in time
fails to open even under the right key. The digest covers only sealed bytes (nonce and
ciphertext), so the audio record that carries it into the hash chain can be checked against the
stored chunk without decrypting the audio.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass

from auditagent.integrity import crypto
from auditagent.integrity.encoding import (
    AUDIO_CHUNK_LABEL,
    AUDIO_LABEL,
    SEQ,
    UUID_PREFIX,
    lp,
    read_lp,
)

from .ogg import PlainChunk

__all__ = ["SealedChunk", "chunk_aad", "chunk_digest", "open_chunk", "seal_chunk"]

_MAGIC = b"AAC\x01"
_HEAD = struct.Struct(">4s16sQQQI")  # magic, session, index, offset, duration, size


def chunk_aad(
    *,
    tenant: str,
    session_id: uuid.UUID,
    key_id: str,
    index: int,
    offset: int,
    duration: int,
) -> bytes:
    """Associated data of one chunk under ``auditagent/audio/v1``."""
    return b"".join(
        (
            AUDIO_LABEL,
            lp(tenant.encode()),
            UUID_PREFIX,
            session_id.bytes,
            lp(key_id.encode()),
            SEQ.pack(8, index),
            SEQ.pack(8, offset),
            SEQ.pack(8, duration),
        )
    )


def chunk_digest(nonce: bytes, ciphertext: bytes) -> bytes:
    """SHA-256 over the sealed chunk: what its audio record commits the chain to."""
    return hashlib.sha256(AUDIO_CHUNK_LABEL + lp(nonce) + lp(ciphertext)).digest()


@dataclass(slots=True)
class SealedChunk:
    """One sealed chunk as stored. Holds no audio and no key."""

    session_id: uuid.UUID
    tenant: str
    key_id: str
    index: int
    offset: int
    """First sample (48 kHz) on the recording's timeline."""
    duration: int
    """Samples (48 kHz) of audio it carries."""
    size: int
    """Bytes of the Ogg pages once opened: lets a Range request skip chunks unopened."""
    nonce: bytes
    ciphertext: bytes

    @property
    def digest(self) -> bytes:
        return chunk_digest(self.nonce, self.ciphertext)

    def aad(self) -> bytes:
        return chunk_aad(
            tenant=self.tenant,
            session_id=self.session_id,
            key_id=self.key_id,
            index=self.index,
            offset=self.offset,
            duration=self.duration,
        )

    def to_bytes(self) -> bytes:
        """Compact binary form for the spool."""
        return b"".join(
            (
                _HEAD.pack(
                    _MAGIC,
                    self.session_id.bytes,
                    self.index,
                    self.offset,
                    self.duration,
                    self.size,
                ),
                lp(self.tenant.encode()),
                lp(self.key_id.encode()),
                lp(self.nonce),
                lp(self.ciphertext),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedChunk:
        """Parse ``to_bytes`` output; ``ValueError`` on anything truncated or malformed."""
        view = memoryview(data)
        try:
            magic, sid, index, offset, duration, size = _HEAD.unpack_from(view, 0)
            if magic != _MAGIC:
                raise ValueError("bad magic")
            pos = _HEAD.size
            fields, pos = read_lp(view, pos, 4)
            if pos != len(view):
                raise ValueError("trailing bytes")
            return cls(
                session_id=uuid.UUID(bytes=sid),
                tenant=fields[0].decode(),
                key_id=fields[1].decode(),
                index=index,
                offset=offset,
                duration=duration,
                size=size,
                nonce=fields[2],
                ciphertext=fields[3],
            )
        except (struct.error, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"malformed audio chunk: {exc}") from None


def seal_chunk(
    sealer: crypto.Sealer,
    chunk: PlainChunk,
    *,
    tenant: str,
    session_id: uuid.UUID,
    key_id: str,
) -> SealedChunk:
    aad = chunk_aad(
        tenant=tenant,
        session_id=session_id,
        key_id=key_id,
        index=chunk.index,
        offset=chunk.offset,
        duration=chunk.duration,
    )
    nonce, ciphertext = sealer.seal(chunk.data, aad)
    return SealedChunk(
        session_id=session_id,
        tenant=tenant,
        key_id=key_id,
        index=chunk.index,
        offset=chunk.offset,
        duration=chunk.duration,
        size=len(chunk.data),
        nonce=nonce,
        ciphertext=ciphertext,
    )


def open_chunk(sealer: crypto.Sealer, chunk: SealedChunk) -> bytes:
    """The chunk's Ogg pages; ``IntegrityError`` if it was altered, moved or shifted."""
    return sealer.open(chunk.nonce, chunk.ciphertext, chunk.aad())
