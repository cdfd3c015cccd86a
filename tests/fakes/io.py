"""Audio/text sinks with a real-time playout clock.

``ClockedAudioOutput`` plays captured audio against wall time: ``flush`` starts the clock
for the buffered duration; ``clear_buffer`` stops it and reports how far playout got, which is
what LiveKit (and a TranscriptSynchronizer above it) uses to decide what the user heard.
"""

from __future__ import annotations

import asyncio
import time

from livekit import rtc
from livekit.agents.voice import io


class ClockedAudioOutput(io.AudioOutput):
    def __init__(self, *, sample_rate: int = 24000) -> None:
        super().__init__(
            label="clocked-audio",
            capabilities=io.AudioOutputCapabilities(pause=False),
            sample_rate=sample_rate,
        )
        self._pushed = 0.0
        self._started_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._started_at is None:
            self._started_at = time.monotonic()
            self.on_playback_started(created_at=time.time())
        self._pushed += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._started_at is None:
            return
        remaining = max(0.0, self._pushed - (time.monotonic() - self._started_at))
        self._task = asyncio.ensure_future(self._finish_after(remaining))

    async def _finish_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._finish(interrupted=False)

    def clear_buffer(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._started_at is not None:
            self._finish(interrupted=True)

    def _finish(self, *, interrupted: bool) -> None:
        if self._started_at is None:
            return
        played = min(self._pushed, time.monotonic() - self._started_at)
        self._started_at, self._pushed, self._task = None, 0.0, None
        self.on_playback_finished(playback_position=played, interrupted=interrupted)


class CollectingTextOutput(io.TextOutput):
    def __init__(self) -> None:
        super().__init__(label="collecting-text", next_in_chain=None)
        self.segments: list[str] = [""]

    async def capture_text(self, text: str) -> None:
        self.segments[-1] += text

    def flush(self) -> None:
        self.segments.append("")
