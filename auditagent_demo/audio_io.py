"""Real-time audio I/O for driving an AgentSession with the scenario's voice, without a room.

``ScenarioMic`` is a microphone: it yields PCM16 mono frames paced against the wall clock,
digital silence unless asked to ``say(text)`` a user line (the scenario's synthetic voice,
``script.user_speech``). The caller decides *when* to speak from session events ("the
agent is speaking, barge in now"), never from a fixed timeline, so a slow machine does not
change the conversation.

``ClockedAudioOutput`` plays captured audio against the wall clock: ``flush`` lets the
buffered duration run out, ``clear_buffer`` stops it and reports how far playout got. That
playback position is what LiveKit (and a TranscriptSynchronizer above it) uses to decide
what the user heard, so it must be a real clock, not "everything was played".

``EnergyVAD`` calls a frame speech when its RMS passes a threshold. The scenario's audio is
synthetic (a voiced signal for speech, zeros for silence), so energy tells them apart
exactly, and no VAD model (LiveKit's default is a remote inference model) is needed.

``speed`` > 1 runs both clocks faster than real time. LiveKit's endpointing and
interruption delays are wall-clock durations, so speed-ups shorten the pauses the user
leaves; 1.0 is what the plugins are known to tolerate.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import numpy as np
from livekit import rtc
from livekit.agents import vad
from livekit.agents.voice import io

from . import script

__all__ = ["ClockedAudioOutput", "CollectingTextOutput", "EnergyVAD", "ScenarioMic"]


class ScenarioMic(io.AudioInput):
    """A microphone that speaks scenario lines on request and is silent otherwise."""

    def __init__(self, *, sample_rate: int = 24000, frame_ms: int = 20, speed: float = 1.0) -> None:
        super().__init__(label="scenario-mic")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.sample_rate = sample_rate
        self._spf = sample_rate * frame_ms // 1000
        self._frame_s = frame_ms / 1000 / speed
        self._silence = bytes(self._spf * 2)
        self._pending: deque[tuple[bytes, asyncio.Future[None]]] = deque()
        self._current: bytearray = bytearray()
        self._current_fut: asyncio.Future[None] | None = None
        self._t0: float | None = None
        self._n = 0
        self._closed = False
        self.lines_spoken: list[str] = []

    @property
    def speaking(self) -> bool:
        return bool(self._current) or bool(self._pending)

    def say(self, text: str) -> asyncio.Future[None]:
        """Queue one user line; the future resolves once its last voiced frame was yielded."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((script.user_speech(text, self.sample_rate), fut))
        self.lines_spoken.append(text)
        return fut

    def close(self) -> None:
        self._closed = True
        for _, fut in self._pending:
            if not fut.done():
                fut.cancel()
        self._pending.clear()
        if self._current_fut is not None and not self._current_fut.done():
            self._current_fut.cancel()

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
        if self._closed:
            raise StopAsyncIteration
        self._n += 1
        nbytes = self._spf * 2
        if not self._current and self._pending:
            pcm, self._current_fut = self._pending.popleft()
            self._current = bytearray(pcm)
        if self._current:
            data = bytes(self._current[:nbytes])
            del self._current[:nbytes]
            if len(data) < nbytes:
                data += self._silence[: nbytes - len(data)]
            if not self._current and self._current_fut is not None:
                if not self._current_fut.done():
                    self._current_fut.set_result(None)
                self._current_fut = None
        else:
            data = self._silence
        return rtc.AudioFrame(
            data=data, sample_rate=self.sample_rate, num_channels=1, samples_per_channel=self._spf
        )


class ClockedAudioOutput(io.AudioOutput):
    """An audio sink with a playout clock; reports the playback position on interruption."""

    def __init__(self, *, sample_rate: int = 24000, speed: float = 1.0) -> None:
        super().__init__(
            label="clocked-audio",
            capabilities=io.AudioOutputCapabilities(pause=False),
            sample_rate=sample_rate,
        )
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = speed
        self._pushed = 0.0  # seconds of audio in the current segment
        self._started_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.segments_played = 0
        self.seconds_played = 0.0

    def _elapsed(self) -> float:
        assert self._started_at is not None
        return (time.monotonic() - self._started_at) * self._speed

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
        remaining = max(0.0, self._pushed - self._elapsed()) / self._speed
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.ensure_future(self._finish_after(remaining))

    async def _finish_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._task = None
        self._finish(interrupted=False)

    def clear_buffer(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._started_at is not None:
            self._finish(interrupted=True)

    def _finish(self, *, interrupted: bool) -> None:
        if self._started_at is None:
            return
        played = min(self._pushed, self._elapsed())
        self._started_at, self._pushed = None, 0.0
        self.segments_played += 1
        self.seconds_played += played
        self.on_playback_finished(playback_position=played, interrupted=interrupted)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class CollectingTextOutput(io.TextOutput):
    """The end of the transcription chain: keeps what a room's transcript would show."""

    def __init__(self) -> None:
        super().__init__(label="collecting-text", next_in_chain=None)
        self.segments: list[str] = [""]

    async def capture_text(self, text: str) -> None:
        self.segments[-1] += text

    def flush(self) -> None:
        if self.segments[-1]:
            self.segments.append("")


class EnergyVAD(vad.VAD):
    """Speech is any frame whose RMS passes ``threshold`` (int16 units)."""

    def __init__(
        self,
        *,
        threshold: float = script.ENERGY_THRESHOLD,
        min_speech: float = 0.05,
        min_silence: float = 0.25,
        padding: float = 0.1,
    ) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=0.02))
        self.threshold = threshold
        self.min_speech = min_speech
        self.min_silence = min_silence
        self.padding = padding

    @property
    def model(self) -> str:
        return "energy-vad"

    @property
    def provider(self) -> str:
        return "auditagent"

    def stream(self) -> vad.VADStream:
        return _EnergyStream(self)


def _rms(frame: rtc.AudioFrame) -> float:
    data = np.frombuffer(frame.data, dtype=np.int16)
    if data.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(data.astype(np.float64) ** 2)))


class _EnergyStream(vad.VADStream):
    def __init__(self, owner: EnergyVAD) -> None:
        self._owner = owner
        super().__init__(owner)

    def _event(
        self,
        kind: vad.VADEventType,
        *,
        samples: int,
        speech: float,
        silence: float,
        frames: list[rtc.AudioFrame],
        speaking: bool,
        **extra: float,
    ) -> None:
        self._event_ch.send_nowait(
            vad.VADEvent(
                type=kind,
                samples_index=samples,
                timestamp=time.time(),
                speech_duration=speech,
                silence_duration=silence,
                frames=frames,
                speaking=speaking,
                **extra,
            )
        )

    async def _main_task(self) -> None:
        o = self._owner
        speaking = False
        speech = silence = 0.0  # accumulated, seconds of audio
        samples = 0
        buffered: list[rtc.AudioFrame] = []  # the utterance, with a little lead-in
        lead_in: deque[rtc.AudioFrame] = deque()
        lead_s = 0.0
        async for item in self._input_ch:
            if not isinstance(item, rtc.AudioFrame):
                # flush sentinel: a hard boundary, forget the current segment
                speaking, speech, silence = False, 0.0, 0.0
                buffered, lead_in, lead_s = [], deque(), 0.0
                continue
            t0 = time.perf_counter()
            voiced = _rms(item) >= o.threshold
            samples += item.samples_per_channel
            if voiced:
                speech += item.duration
                silence = 0.0
            else:
                silence += item.duration
                if not speaking:
                    speech = 0.0
            if speaking or voiced:
                buffered.append(item)
            else:
                lead_in.append(item)
                lead_s += item.duration
                while lead_in and lead_s > o.padding:
                    lead_s -= lead_in.popleft().duration
            if not speaking and voiced and speech >= o.min_speech:
                speaking = True
                buffered = [*lead_in, *buffered]
                lead_in, lead_s = deque(), 0.0
                self._event(
                    vad.VADEventType.START_OF_SPEECH,
                    samples=samples,
                    speech=speech,
                    silence=0.0,
                    frames=[item],
                    speaking=True,
                )
            self._event(
                vad.VADEventType.INFERENCE_DONE,
                samples=samples,
                speech=speech if speaking else 0.0,
                silence=silence,
                frames=[item],
                speaking=speaking,
                probability=1.0 if voiced else 0.0,
                inference_duration=time.perf_counter() - t0,
                raw_accumulated_speech=speech if voiced else 0.0,
                raw_accumulated_silence=silence,
            )
            if speaking and silence >= o.min_silence:
                self._event(
                    vad.VADEventType.END_OF_SPEECH,
                    samples=samples,
                    speech=speech,
                    silence=silence,
                    frames=buffered,
                    speaking=False,
                )
                speaking, speech, buffered = False, 0.0, []
