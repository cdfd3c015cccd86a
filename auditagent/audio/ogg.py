"""Ogg pages, read out of the byte stream the muxer writes, and cut into chunks.

A chunk is a run of whole pages, so the chunks of a recording, decrypted and concatenated in
order, are exactly the Ogg stream the encoder produced: one file a player can open. Where a
chunk sits on the call's timeline comes from the pages' granule positions (Opus counts them
in 48 kHz samples whatever the input rate, and starts them ``pre_skip`` samples early).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["GRANULE_RATE", "Chunker", "OggPage", "PageReader", "PlainChunk"]

GRANULE_RATE = 48_000
"""Ogg Opus granule positions count 48 kHz samples."""

_CAPTURE = b"OggS"
_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, type, granule, serial, seqno, crc, nseg
_NO_GRANULE = -1  # a page on which no packet ends


@dataclass(frozen=True, slots=True)
class OggPage:
    data: bytes
    granule: int
    """Granule position (48 kHz samples, pre-skip included); -1 when no packet ends here."""
    header: bool
    """One of the two header pages (OpusHead, OpusTags): no audio."""


class PageReader:
    """Splits the muxer's writes, which need not end on a page boundary, into pages."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pages_seen = 0
        self.pre_skip = 0

    def feed(self, data: bytes) -> list[OggPage]:
        self._buf += data
        out: list[OggPage] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            capture, _v, _t, granule, _s, _n, _c, nseg = _HEADER.unpack_from(buf, pos)
            if capture != _CAPTURE:
                raise ValueError("not an Ogg stream: page capture pattern missing")
            seg_end = pos + _HEADER.size + nseg
            if len(buf) < seg_end:
                break
            end = seg_end + sum(buf[pos + _HEADER.size : seg_end])
            if len(buf) < end:
                break
            page = bytes(buf[pos:end])
            header = self._pages_seen < 2
            if self._pages_seen == 0 and page[seg_end - pos : seg_end - pos + 8] == b"OpusHead":
                (self.pre_skip,) = struct.unpack_from("<H", page, seg_end - pos + 10)
            self._pages_seen += 1
            out.append(OggPage(page, granule, header))
            pos = end
        del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a page not fully written yet."""
        return len(self._buf)


@dataclass(frozen=True, slots=True)
class PlainChunk:
    """Consecutive pages of the stream, with where their audio sits on the timeline."""

    index: int
    offset: int
    """First sample on the timeline, in 48 kHz samples from the start of the recording."""
    duration: int
    """Samples of audio the chunk carries (48 kHz)."""
    data: bytes


class Chunker:
    """Gathers pages into chunks of at least ``target`` samples of audio (48 kHz).

    The header pages go with the first chunk, so every chunk but the first starts with audio
    and the first is playable on its own.
    """

    def __init__(self, *, target: int) -> None:
        if target <= 0:
            raise ValueError("a chunk must hold some audio")
        self._target = target
        self._pages: list[bytes] = []
        self._index = 0
        self._start = 0  # timeline sample where the open chunk starts
        self._end = 0  # timeline sample the open chunk reaches
        self.pre_skip = 0

    def add(self, pages: list[OggPage]) -> list[PlainChunk]:
        out: list[PlainChunk] = []
        for page in pages:
            self._pages.append(page.data)
            if page.header or page.granule == _NO_GRANULE:
                continue
            self._end = max(self._end, page.granule - self.pre_skip)
            if self._end - self._start >= self._target:
                out.append(self._cut())
        return out

    def finish(self, pages: list[OggPage]) -> list[PlainChunk]:
        """The stream's last ``pages`` (end-of-stream page included): chunks as ``add`` would
        cut them, the last of which holds the end of the stream."""
        out = self.add(pages[:-1]) if pages else []
        for page in pages[-1:]:
            self._pages.append(page.data)
            if not page.header and page.granule != _NO_GRANULE:
                self._end = max(self._end, page.granule - self.pre_skip)
        if self._pages:
            out.append(self._cut())
        return out

    def _cut(self) -> PlainChunk:
        chunk = PlainChunk(
            index=self._index,
            offset=self._start,
            duration=max(0, self._end - self._start),
            data=b"".join(self._pages),
        )
        self._pages = []
        self._index += 1
        self._start = self._end
        return chunk

    @property
    def next_index(self) -> int:
        return self._index
