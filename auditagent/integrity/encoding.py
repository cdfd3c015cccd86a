"""The one byte encoding every integrity format is built from.

Every variable-length field that goes into an AAD, a hash or a signed message is length-prefixed
with a big-endian u32, so no two different field lists can encode to the same bytes. Timestamps
enter formats as integer microseconds since the Unix epoch (UTC), never as floats.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

__all__ = ["U32", "UUID_PREFIX", "at_microseconds", "lp"]

U32 = struct.Struct(">I")
UUID_PREFIX = U32.pack(16)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)


def lp(data: bytes) -> bytes:
    """``data`` behind its length as a big-endian u32."""
    return U32.pack(len(data)) + data


def at_microseconds(at: datetime) -> int:
    """Integer microseconds since the Unix epoch, UTC.

    Naive datetimes are refused: guessing their zone would make a format depend on the
    verifier's local time.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("chain timestamps must be timezone-aware")
    # Integer timedelta division is exact; ``timestamp()`` goes through a float.
    return (at - _EPOCH) // _ONE_US
