"""Reading a recording back: the decrypted Ogg stream, whole or as an HTTP byte range.

The stream is the chunks' pages concatenated in index order; every chunk's opened size is
stored in plaintext, so a range is served by opening only the chunks it touches.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from auditagent.integrity import crypto

from .sealing import open_chunk
from .store import AudioBlobStore, ChunkInfo

__all__ = ["ByteRange", "RangeNotSatisfiable", "parse_range", "read_stream"]

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeNotSatisfiable(ValueError):
    """The Range header asks for bytes the recording does not have."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int
    """Inclusive, as in Content-Range."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, total: int) -> ByteRange | None:
    """One ``bytes=`` range of a ``total``-byte stream; None for no (or an unusable) header,
    which RFC 9110 says to answer with the whole representation. Several ranges are served
    as the first one's span: players ask for one."""
    if not header:
        return None
    first = header.split(",", 1)[0]
    m = _RANGE.match(first)
    if m is None:
        return None
    a, b = m.group(1), m.group(2)
    if not a and not b:
        return None
    if not a:  # the last b bytes
        n = int(b)
        if n == 0 or total == 0:
            raise RangeNotSatisfiable(first)
        return ByteRange(max(0, total - n), total - 1)
    start = int(a)
    end = total - 1 if not b else min(int(b), total - 1)
    if start >= total or (b and int(b) < start):
        raise RangeNotSatisfiable(first)
    return ByteRange(start, end)


def read_stream(
    store: AudioBlobStore,
    sealer: crypto.Sealer,
    session_id: uuid.UUID,
    infos: Sequence[ChunkInfo],
    byte_range: ByteRange | None = None,
) -> Iterator[bytes]:
    """The recording's bytes (all, or ``byte_range``), opening only the chunks needed.

    Raises ``IntegrityError`` from the chunk that fails to open."""
    total = sum(i.size for i in infos)
    if total == 0:
        return
    rng = byte_range or ByteRange(0, total - 1)
    pos = 0
    first: int | None = None
    last: int | None = None
    for i in infos:
        if first is None and pos + i.size > rng.start:
            first = i.index
        if pos <= rng.end:
            last = i.index
        pos += i.size
    if first is None or last is None:
        return
    pos = sum(i.size for i in infos if i.index < first)
    for sealed in store.read(session_id, first=first, last=last):
        data = open_chunk(sealer, sealed)
        lo = max(0, rng.start - pos)
        hi = min(len(data), rng.end + 1 - pos)
        pos += len(data)
        if hi > lo:
            yield data[lo:hi]
