"""What one write carries (sessions opened, sealed events, session updates), and its two
encodings: the binary COPY stream for the database and frames for the spool.

Both are encoded on the voice loop's thread in slices of ``SLICE_ITEMS`` rows, between which
the loop runs: a batch of hundreds of records must not hold it in one stretch.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..audio.sealing import SealedChunk
from ..integrity.envelope import Envelope
from ..store.search_rows import IndexRows
from .ingest import COPY_HEADER, COPY_TRAILER, SessionOpen, SessionUpdate, encode_copy_rows
from .spool import (
    TAG_AUDIO,
    TAG_ENVELOPE,
    TAG_INDEX,
    TAG_SESSION,
    TAG_UPDATE,
    encode_frames,
)

SLICE_ITEMS = 64
"""Rows encoded (COPY stream, spool frames) between two yields to the loop: ~0.2 ms."""


@dataclass
class Batch:
    opens: list[SessionOpen] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    updates: list[SessionUpdate] = field(default_factory=list)
    started: dict[uuid.UUID, datetime] = field(default_factory=dict)
    """Each session's start (the events' partition key), where known: always in a live
    batch; in a replayed one only for sessions whose opening row it carries."""
    index: list[IndexRows] = field(default_factory=list)
    """Search index rows of the records sealed in this batch (auditagent.search.writer)."""
    audio: list[SealedChunk] = field(default_factory=list)
    """Sealed chunks of call audio whose ``audio_chunk`` records are in ``envelopes``."""
    oldest: float | None = None
    """``time.time()`` when its oldest record was handed to the recorder."""

    def __bool__(self) -> bool:
        return bool(self.opens or self.envelopes or self.updates or self.audio)

    def frames(self) -> list[tuple[bytes, bytes]]:
        out = [(TAG_SESSION, o.to_bytes()) for o in self.opens]
        out += [(TAG_ENVELOPE, e.to_bytes()) for e in self.envelopes]
        out += [(TAG_UPDATE, u.to_bytes()) for u in self.updates]
        out += [(TAG_INDEX, x.to_bytes()) for x in self.index]
        out += [(TAG_AUDIO, a.to_bytes()) for a in self.audio]
        return out

    def add_frame(self, tag: bytes, payload: bytes) -> None:
        """One spool frame back into the batch (a replay)."""
        if tag == TAG_ENVELOPE:
            self.envelopes.append(Envelope.from_bytes(payload))
        elif tag == TAG_SESSION:
            opened = SessionOpen.from_bytes(payload)
            self.opens.append(opened)
            self.started[opened.session_id] = opened.started_at
        elif tag == TAG_UPDATE:
            self.updates.append(SessionUpdate.from_bytes(payload))
        elif tag == TAG_INDEX:
            self.index.append(IndexRows.from_bytes(payload))
        elif tag == TAG_AUDIO:
            self.audio.append(SealedChunk.from_bytes(payload))


async def copy_stream(envelopes: list[Envelope], started: Mapping[uuid.UUID, datetime]) -> bytes:
    """The envelopes' binary COPY stream, encoded in slices between which the loop runs."""
    parts = [COPY_HEADER]
    for i in range(0, len(envelopes), SLICE_ITEMS):
        await asyncio.sleep(0)
        parts.append(encode_copy_rows(envelopes[i : i + SLICE_ITEMS], started))
    parts.append(COPY_TRAILER)
    return b"".join(parts)


async def spool_stream(batch: Batch) -> bytes:
    """The batch as spool frames, encoded in slices between which the loop runs."""
    parts: list[bytes] = []
    items: list[Any] = [*batch.opens, *batch.envelopes, *batch.updates, *batch.index, *batch.audio]
    tags = [TAG_SESSION] * len(batch.opens) + [TAG_ENVELOPE] * len(batch.envelopes)
    tags += [TAG_UPDATE] * len(batch.updates) + [TAG_INDEX] * len(batch.index)
    tags += [TAG_AUDIO] * len(batch.audio)
    for i in range(0, len(items), SLICE_ITEMS):
        await asyncio.sleep(0)
        frames = [
            (t, x.to_bytes())
            for t, x in zip(tags[i : i + SLICE_ITEMS], items[i : i + SLICE_ITEMS], strict=True)
        ]
        parts.append(encode_frames(frames))
    return b"".join(parts)
