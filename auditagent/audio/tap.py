"""Taps on an AgentSession's audio input and output: pass everything through, hand a copy of
the frames to the audio worker.

On the voice loop each tap does O(1) work per frame — a tuple on a thread-safe queue — and
never raises into LiveKit: a failing put is counted, not propagated. The output tap places the
agent's audio where it *played*, from the sink's own playback reports (progress runs, or the
segment's start and playback position when the sink reports nothing finer), so audio cut off
by an interruption is not in the recording, exactly as the caller never heard it. Modelled on
LiveKit's own RecorderIO (livekit/agents/voice/recorder_io), with our sink instead of a file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from livekit import rtc
from livekit.agents.voice import io

__all__ = ["TapAudioInput", "TapAudioOutput"]

Put = Callable[[tuple[object, ...]], None]


class TapAudioInput(io.AudioInput):
    """The caller's audio as the pipeline receives it (after any noise cancellation)."""

    def __init__(self, source: io.AudioInput, *, put: Put, active: Callable[[], bool]) -> None:
        super().__init__(label="auditagent-audio", source=source)
        self._put = put
        self._active = active
        self.settled_at = 0.0
        self.failures = 0

    async def __anext__(self) -> rtc.AudioFrame:
        assert self.source is not None
        frame = await self.source.__anext__()
        if self._active():
            now = time.time()
            # frames carry no capture time: arrival is the clock, as in LiveKit's RecorderIO
            try:
                self._put(("in", now - frame.duration, frame))
                self.settled_at = now
            except Exception:
                self.failures += 1
        return frame


class TapAudioOutput(io.AudioOutput):
    """The agent's audio, placed where the sink reports it played."""

    def __init__(
        self, next_in_chain: io.AudioOutput, *, put: Put, active: Callable[[], bool]
    ) -> None:
        super().__init__(
            label="auditagent-audio",
            next_in_chain=next_in_chain,
            capabilities=io.AudioOutputCapabilities(pause=True),
        )
        self._put = put
        self._active = active
        self._frames: list[rtc.AudioFrame] = []
        self._segment_since: float | None = None
        self._started_at: float | None = None
        self._reported = False
        self.failures = 0

    @property
    def sample_rate(self) -> int | None:
        if self._sample_rate is not None:
            return self._sample_rate
        return self.next_in_chain.sample_rate if self.next_in_chain else None

    @property
    def pending_since(self) -> float | None:
        """Wall time from which the agent channel is unsettled (a segment in flight)."""
        return self._segment_since

    def _send(self, item: tuple[object, ...]) -> None:
        try:
            self._put(item)
        except Exception:
            self.failures += 1

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        if self.next_in_chain:
            await self.next_in_chain.capture_frame(frame)
        await super().capture_frame(frame)
        if self._active():
            if not self._frames:
                self._segment_since = time.time()
            self._frames.append(frame)

    def flush(self) -> None:
        super().flush()
        if self.next_in_chain:
            self.next_in_chain.flush()

    def clear_buffer(self) -> None:
        if self.next_in_chain:
            self.next_in_chain.clear_buffer()

    def on_playback_started(self, *, created_at: float) -> None:
        super().on_playback_started(created_at=created_at)
        if self._started_at is None:
            self._started_at = created_at

    def on_playback_progressed(self, *, started_at: float, offset: float, duration: float) -> None:
        super().on_playback_progressed(started_at=started_at, offset=offset, duration=duration)
        if self._frames and duration > 0:
            self._reported = True
            # the list itself, not a copy: it only ever grows within a segment, and a new
            # segment starts a new list
            self._send(("out", started_at, offset, duration, self._frames))

    def on_playback_finished(
        self,
        *,
        playback_position: float,
        interrupted: bool,
        synchronized_transcript: str | None = None,
    ) -> None:
        super().on_playback_finished(
            playback_position=playback_position,
            interrupted=interrupted,
            synchronized_transcript=synchronized_transcript,
        )
        if not self._reported and self._frames and playback_position > 0:
            started = (
                self._started_at
                if self._started_at is not None
                else time.time() - playback_position
            )
            self._send(("out", started, 0.0, playback_position, self._frames))
        self._frames = []
        self._segment_since = None
        self._started_at = None
        self._reported = False
