"""The audio worker: one thread per recorded session, off the voice loop.

The taps on the loop only put captured frames on a thread-safe queue. The worker places them on
the two-channel timeline, encodes what has settled (Opus in Ogg), cuts whole pages into chunks,
seals each under the session's data key and hands it, with the audio record that commits the
chain to it, to ``on_chunk`` — which the recorder uses to get both onto its loop.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from livekit import rtc

import auditagent.records as records
from auditagent.integrity import crypto

from .encoder import OpusOggEncoder
from .ogg import GRANULE_RATE, Chunker, PlainChunk
from .sealing import SealedChunk, seal_chunk
from .timeline import Timeline

__all__ = ["AudioWorker", "ChunkReady"]

log = logging.getLogger("auditagent.audio")

DEFAULT_SAMPLE_RATE = 24_000
CHUNK_SECONDS = 5.0
"""Audio per sealed chunk; a crash loses at most this plus the settle lag of the call's end."""
RESAMPLER_LAG = 0.1


@dataclass(frozen=True, slots=True)
class ChunkReady:
    sealed: SealedChunk
    record: records.AudioChunk


# Queue items: plain tuples, the cheapest thing to build on the loop.
#   ("in", started_at, frame)                    caller audio as the pipeline received it
#   ("out", started_at, offset, duration, frames) a stretch of the agent's segment that played
#   ("end", channel) | ("pause", t) | ("resume", t) | ("flush", until) | ("close", until)
Item = tuple[object, ...]


class AudioWorker:
    def __init__(
        self,
        *,
        sealer: crypto.Sealer,
        tenant: str,
        session_id: uuid.UUID,
        key_id: str,
        t0: float,
        on_chunk: Callable[[ChunkReady], None],
        on_failed: Callable[[str], None],
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        chunk_seconds: float = CHUNK_SECONDS,
    ) -> None:
        self._sealer = sealer
        self._tenant = tenant
        self._session_id = session_id
        self._key_id = key_id
        self.t0 = t0
        self._started_at = datetime.fromtimestamp(t0, timezone.utc)
        self._on_chunk = on_chunk
        self._on_failed = on_failed
        self._rate = sample_rate
        self._chunk_samples = round(chunk_seconds * GRANULE_RATE)
        self._q: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self.put = self._q.put_nowait
        """Thread-safe, O(1), never blocks: what the taps call on the voice loop."""
        self._thread: threading.Thread | None = None
        self.failed = False
        self.done = threading.Event()
        self.chunks = 0
        self.samples_encoded = 0
        self._timeline: Timeline | None = None
        self._late_told = 0
        """Late samples already counted in a sealed chunk record."""

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"auditagent-audio-{self._session_id.hex[:8]}", daemon=True
        )
        self._thread.start()

    # -- worker thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:
            # Type only: nothing of the call may reach a log.
            self.failed = True
            log.error("audio worker failed: %s", type(exc).__name__)
            self._on_failed(type(exc).__name__)
        finally:
            self.done.set()

    def _loop(self) -> None:
        timeline = self._timeline = Timeline(sample_rate=self._rate, t0=self.t0)
        encoder = OpusOggEncoder(sample_rate=self._rate)
        chunker = Chunker(target=self._chunk_samples)
        get = self._q.get
        while True:
            item = get()
            op = item[0]
            if op == "in":
                timeline.push(0, item[1], item[2])  # type: ignore[arg-type]
            elif op == "out":
                _, started_at, offset, duration, frames = item
                played = _slice(frames, offset, duration)  # type: ignore[arg-type]
                if played is not None:
                    timeline.push(1, started_at, played)  # type: ignore[arg-type]
                    timeline.end_run(1)
            elif op == "end":
                timeline.end_run(item[1])  # type: ignore[arg-type]
            elif op == "pause":
                timeline.pause(item[1])  # type: ignore[arg-type]
            elif op == "resume":
                timeline.resume(item[1])  # type: ignore[arg-type]
            elif op == "flush":
                end = timeline.settled_through(item[1], lag=RESAMPLER_LAG)  # type: ignore[arg-type]
                self._emit(chunker, encoder, timeline.take(end))
            elif op == "close":
                timeline.end_run(0)
                timeline.end_run(1)
                self._emit(chunker, encoder, timeline.take(timeline.sample_at(item[1])))  # type: ignore[arg-type]
                chunker.pre_skip = encoder.pre_skip
                last = chunker.finish(encoder.close())
                for i, c in enumerate(last):
                    self._seal(c, final=i == len(last) - 1)
                if timeline.dropped:  # each chunk's record says its share (late_samples)
                    log.warning(
                        "%d audio samples arrived after their place was written", timeline.dropped
                    )
                return

    def _emit(self, chunker: Chunker, encoder: OpusOggEncoder, block: np.ndarray) -> None:
        if block.shape[1] == 0:
            return
        self.samples_encoded += block.shape[1]
        pages = encoder.encode(block)
        chunker.pre_skip = encoder.pre_skip
        for c in chunker.add(pages):
            self._seal(c, final=False)

    def _seal(self, chunk: PlainChunk, *, final: bool) -> None:
        sealed = seal_chunk(
            self._sealer,
            chunk,
            tenant=self._tenant,
            session_id=self._session_id,
            key_id=self._key_id,
        )
        dropped = self._timeline.dropped if self._timeline else 0
        late, self._late_told = dropped - self._late_told, dropped
        record = records.AudioChunk(
            at=datetime.fromtimestamp(self.t0 + chunk.offset / GRANULE_RATE, timezone.utc),
            index=chunk.index,
            offset=chunk.offset,
            duration=chunk.duration,
            started_at=self._started_at,
            size=sealed.size,
            sha256=sealed.digest.hex(),
            final=final,
            late_samples=late * GRANULE_RATE // self._rate,
        )
        self.chunks += 1
        self._on_chunk(ChunkReady(sealed, record))


def _slice(frames: list[rtc.AudioFrame], offset: float, duration: float) -> rtc.AudioFrame | None:
    """The part of a segment's captured frames that played: ``duration`` from ``offset``."""
    if not frames or duration <= 0:
        return None
    rate, channels = frames[0].sample_rate, frames[0].num_channels
    pcm = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])
    lo = round(offset * rate) * channels
    hi = min(round((offset + duration) * rate) * channels, len(pcm))
    if hi <= lo:
        return None
    part = pcm[lo:hi]
    return rtc.AudioFrame(
        data=part.tobytes(),
        sample_rate=rate,
        num_channels=channels,
        samples_per_channel=len(part) // channels,
    )
