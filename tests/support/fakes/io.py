"""Audio input and audio/text sinks that keep real time.

``ScriptedAudioInput`` is a microphone: it yields 20 ms PCM frames at wall-clock pace, silence
unless a test asks it to ``speak(seconds)`` (a tone, which
``tests.support.fakes.vad.EnergyVAD`` hears as speech). Tests drive it from events ("the agent
is speaking, now barge in") rather than a fixed timeline, so they do not depend on how fast the
machine is.

``ClockedAudioOutput`` plays captured audio against wall time: ``flush`` starts the clock
for the buffered duration; ``clear_buffer`` stops it and reports how far playout got, which is
what LiveKit (and a TranscriptSynchronizer above it) uses to decide what the user heard.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import numpy as np
from livekit import rtc
from livekit.agents.voice import io

from auditagent_demo import audio_io

# The sinks are the simulators' own (the demo uses them too); only the microphone differs.
ClockedAudioOutput = audio_io.ClockedAudioOutput
CollectingTextOutput = audio_io.CollectingTextOutput


class ScriptedAudioInput(io.AudioInput):
    def __init__(
        self, *, sample_rate: int = 16000, frame_ms: int = 20, amplitude: int = 8000
    ) -> None:
        super().__init__(label="scripted-mic")
        self.sample_rate = sample_rate
        self._spf = sample_rate * frame_ms // 1000
        self._frame_s = frame_ms / 1000
        t = np.arange(self._spf) / sample_rate
        self._tone = (np.sin(2 * np.pi * 300.0 * t) * amplitude).astype(np.int16).tobytes()
        self._silence = bytes(self._spf * 2)
        self._pending: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._left = 0  # frames left in the segment being spoken
        self._current: asyncio.Future[None] | None = None
        self._t0: float | None = None
        self._n = 0
        self._closed = False

    def speak(self, seconds: float) -> asyncio.Future[None]:
        """Queue a speech segment; the future resolves once its last frame was yielded."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((max(1, round(seconds / self._frame_s)), fut))
        return fut

    def close(self) -> None:
        self._closed = True

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        # pace against the start, not the previous frame, so sleep jitter does not add up
        delay = self._t0 + self._n * self._frame_s - now
        if delay > 0:
            await asyncio.sleep(delay)
        self._n += 1
        if self._left == 0 and self._pending:
            self._left, self._current = self._pending.popleft()
        if self._left > 0:
            self._left -= 1
            data = self._tone
            if self._left == 0 and self._current is not None:
                if not self._current.done():
                    self._current.set_result(None)
                self._current = None
        else:
            data = self._silence
        return rtc.AudioFrame(
            data=data, sample_rate=self.sample_rate, num_channels=1, samples_per_channel=self._spf
        )
