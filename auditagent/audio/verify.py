"""Holding stored chunks to the audio records in the chain.

The chain proves the audio records (index, placement, size and digest of every chunk) were not
cut, reordered or rewritten; this proves the stored chunks are exactly the ones those records
committed to: a chunk deleted, swapped with another, edited, shifted in time or added shows as
a failure naming the first bad chunk. The audio records are read from the decrypted trail, so
this check needs the session's data key; the chain under it does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import auditagent.records as records

from .store import ChunkInfo

__all__ = ["AudioCheck", "check_audio"]


@dataclass(frozen=True)
class AudioCheck:
    ok: bool
    chunks: int
    """Chunks that matched their record before the first failure (all when ok)."""
    duration: int
    """48 kHz samples of audio those chunks carry."""
    first_bad_index: int | None = None
    reason: str | None = None
    complete: bool = False
    """The last record says the stream ended (the session closed its recording)."""

    @property
    def seconds(self) -> float:
        return self.duration / 48_000


class _Stored:
    """A stored chunk's placement and digest."""

    __slots__ = ("digest", "info")

    def __init__(self, info: ChunkInfo, digest: bytes) -> None:
        self.info = info
        self.digest = digest


def check_audio(
    recs: Iterable[records.AudioChunk], stored: Iterable[tuple[ChunkInfo, bytes]]
) -> AudioCheck:
    """Match audio records (chain order) against stored chunks ``(placement, digest)``."""
    by_index: dict[int, _Stored] = {}
    for info, digest in stored:
        by_index[info.index] = _Stored(info, digest)
    n = 0
    duration = 0
    expected_offset = 0
    complete = False

    def bad(index: int | None, reason: str) -> AudioCheck:
        return AudioCheck(False, n, duration, index, reason, complete)

    for rec in recs:
        if rec.index != n:
            return bad(n, f"audio record for chunk {n} missing (found chunk {rec.index})")
        if complete:
            return bad(rec.index, "audio after the chunk that ended the stream")
        if rec.offset != expected_offset:
            return bad(rec.index, f"chunk {rec.index} does not start where chunk {n - 1} ends")
        got = by_index.pop(rec.index, None)
        if got is None:
            return bad(rec.index, f"chunk {rec.index} is missing from the audio store")
        info = got.info
        if (info.offset, info.duration, info.size) != (rec.offset, rec.duration, rec.size):
            return bad(rec.index, f"chunk {rec.index} was moved or resized")
        if got.digest.hex() != rec.sha256:
            return bad(rec.index, f"chunk {rec.index} differs from its record (altered)")
        n += 1
        duration += rec.duration
        expected_offset = rec.offset + rec.duration
        complete = rec.final
    if by_index:
        first = min(by_index)
        return bad(first, f"chunk {first} is stored but no record commits to it")
    return AudioCheck(True, n, duration, None, None, complete)
