"""An energy VAD: speech is any frame whose RMS passes a threshold.

The test audio is synthetic (a tone for speech, zeros for silence), so energy alone tells
speech from silence exactly, and the VAD reacts to what the audio input really plays, in real
time — which is what LiveKit's turn detection and barge-in logic expect from a VAD.
"""

from __future__ import annotations

import time

import numpy as np
from livekit import rtc
from livekit.agents import vad


class EnergyVAD(vad.VAD):
    def __init__(
        self,
        *,
        threshold: float = 500.0,
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
        return "fake"

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

    async def _main_task(self) -> None:
        o = self._owner
        speaking = False
        speech = silence = 0.0  # accumulated, seconds
        samples = 0
        buffered: list[rtc.AudioFrame] = []  # the utterance, with a little lead-in
        lead_in: list[rtc.AudioFrame] = []
        async for item in self._input_ch:
            if not isinstance(item, rtc.AudioFrame):
                # flush sentinel: a hard boundary, forget the current segment
                speaking, speech, silence = False, 0.0, 0.0
                buffered, lead_in = [], []
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
                while sum(f.duration for f in lead_in) > o.padding:
                    lead_in.pop(0)
            if not speaking and voiced and speech >= o.min_speech:
                speaking = True
                buffered = lead_in + buffered
                lead_in = []
                self._event_ch.send_nowait(
                    vad.VADEvent(
                        type=vad.VADEventType.START_OF_SPEECH,
                        samples_index=samples,
                        timestamp=time.time(),
                        speech_duration=speech,
                        silence_duration=0.0,
                        frames=[item],
                        speaking=True,
                    )
                )
            self._event_ch.send_nowait(
                vad.VADEvent(
                    type=vad.VADEventType.INFERENCE_DONE,
                    samples_index=samples,
                    timestamp=time.time(),
                    speech_duration=speech if speaking else 0.0,
                    silence_duration=silence,
                    frames=[item],
                    probability=1.0 if voiced else 0.0,
                    inference_duration=time.perf_counter() - t0,
                    speaking=speaking,
                    raw_accumulated_speech=speech if voiced else 0.0,
                    raw_accumulated_silence=silence,
                )
            )
            if speaking and silence >= o.min_silence:
                self._event_ch.send_nowait(
                    vad.VADEvent(
                        type=vad.VADEventType.END_OF_SPEECH,
                        samples_index=samples,
                        timestamp=time.time(),
                        speech_duration=speech,
                        silence_duration=silence,
                        frames=buffered,
                        speaking=False,
                    )
                )
                speaking, speech, buffered = False, 0.0, []
