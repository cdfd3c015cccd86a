"""The one byte encoding every integrity format is built from, and every format's label.

Every variable-length field that goes into an AAD, a hash or a signed message is length-prefixed
with a big-endian u32, so no two different field lists can encode to the same bytes. Timestamps
enter formats as integer microseconds since the Unix epoch (UTC), never as floats. Each format
starts with its own label (``auditagent/<format>/v<n>\\0``), so bytes made for one format never
verify as another.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "ACCESS_LABEL",
    "AT",
    "AUDIO_CHUNK_LABEL",
    "AUDIO_LABEL",
    "CERTIFICATE_LABEL",
    "CHAIN_LABEL",
    "CHANGE_LABEL",
    "CHANGE_SIGNATURE_LABEL",
    "DEK_LABEL",
    "DELETION_LABEL",
    "DELETION_LABEL_V1",
    "DELETION_SIGNATURE_LABEL",
    "EVENT_LABEL",
    "MANIFEST_LABEL",
    "SEQ",
    "U32",
    "UUID_PREFIX",
    "aad_head",
    "at_microseconds",
    "canonical_json",
    "lp",
    "parse_ts",
    "read_lp",
    "record_aad",
    "ts",
    "uuid_field",
]

# --- labels: one per format ---
EVENT_LABEL = b"auditagent/event/v1\0"
"""AES-GCM associated data of a sealed record."""
DEK_LABEL = b"auditagent/dek-context/v1\0"
"""Context a session's data key is wrapped under."""
CHAIN_LABEL = b"auditagent/chain/v1\0"
"""A session's record hash chain."""
ACCESS_LABEL = b"auditagent/access/v1\0"
"""The access-log hash chain."""
DELETION_LABEL_V1 = b"auditagent/deletion/v1\0"
"""Deletion records without a basis (written before migration 0017)."""
DELETION_LABEL = b"auditagent/deletion/v2\0"
DELETION_SIGNATURE_LABEL = b"auditagent/deletion-signature/v1\0"
CHANGE_LABEL = b"auditagent/retention-change/v1\0"
CHANGE_SIGNATURE_LABEL = b"auditagent/retention-change-signature/v1\0"
MANIFEST_LABEL = b"auditagent/checkpoint-manifest/v1\0"
CERTIFICATE_LABEL = b"auditagent/deletion-certificate/v1\0"
AUDIO_LABEL = b"auditagent/audio/v1\0"
"""AES-GCM associated data of a sealed chunk of call audio."""
AUDIO_CHUNK_LABEL = b"auditagent/audio-chunk/v1\0"
"""The digest of a sealed audio chunk that its ``audio_chunk`` record commits the chain to."""

U32 = struct.Struct(">I")
UUID_PREFIX = U32.pack(16)
# Fixed-width fields are still length-prefixed so every field is encoded the same way and a
# format stays unambiguous if a width ever changes under a new label.
SEQ = struct.Struct(">IQ")
"""len=8, then a sequence number as unsigned 64-bit: pack with ``SEQ.pack(8, seq)``."""
AT = struct.Struct(">Iq")
"""len=8, then microseconds as signed 64-bit: pack with ``AT.pack(8, at_us)``."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)


def lp(data: bytes) -> bytes:
    """``data`` behind its length as a big-endian u32."""
    return U32.pack(len(data)) + data


def read_lp(view: memoryview, pos: int, count: int) -> tuple[list[bytes], int]:
    """``count`` fields written by ``lp`` from ``pos``, and the position after them;
    ``ValueError`` when a length runs past the buffer."""
    fields: list[bytes] = []
    for _ in range(count):
        (n,) = U32.unpack_from(view, pos)
        pos += 4
        if pos + n > len(view):
            raise ValueError("field overruns buffer")
        fields.append(bytes(view[pos : pos + n]))
        pos += n
    return fields, pos


def uuid_field(value: uuid.UUID) -> bytes:
    """A UUID as a length-prefixed field (its 16 bytes)."""
    return UUID_PREFIX + value.bytes


def at_microseconds(at: datetime) -> int:
    """Integer microseconds since the Unix epoch, UTC.

    Naive datetimes are refused: guessing their zone would make a format depend on the
    verifier's local time.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("chain timestamps must be timezone-aware")
    # Integer timedelta division is exact; ``timestamp()`` goes through a float.
    return (at - _EPOCH) // _ONE_US


# --- a record's associated data -------------------------------------------------------------
# ``EVENT_LABEL || lp(tenant) || lp(session id) || lp(u64 seq) || lp(kind) || lp(key id)``, in
# two parts so that whoever seals or opens many records of one session encodes its fixed part
# once. Every AAD anywhere is ``record_aad(aad_head(...), ...)``.


def aad_head(tenant: str, session_id: uuid.UUID) -> bytes:
    """The per-session part of a record's associated data."""
    return EVENT_LABEL + lp(tenant.encode()) + UUID_PREFIX + session_id.bytes


def record_aad(head: bytes, seq: int, kind_key: bytes) -> bytes:
    """A record's associated data from ``aad_head`` and ``lp(kind) + lp(key_id)``."""
    return b"".join((head, SEQ.pack(8, seq), kind_key))


# --- JSON and time inside hashed or signed formats ---


def canonical_json(value: Any) -> bytes:
    """The bytes hashed or signed for a JSON value: sorted keys, no spaces, ASCII, no NaN.
    Values are strings, integers, booleans, null and nested objects/lists only (no floats), so
    a JSONB round trip gives the same bytes back."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def ts(t: datetime) -> str:
    """A time as it is written into hashed JSON and checkpoint notes: UTC, microseconds, ``Z``."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
