"""A scripted TTS: any text becomes a tone whose length follows the word count.

Non-streaming (LiveKit wraps it in a StreamAdapter, one synthesis per sentence). The audio
length is what the playout clock of ``tests.support.fakes.io.ClockedAudioOutput`` plays against, so
``seconds_per_word`` sets how long the agent "talks" and therefore when a barge-in lands.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from livekit.agents import APIConnectOptions, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.agents.utils import shortuuid


class ScriptedTTS(tts.TTS[Any]):
    def __init__(
        self,
        *,
        sample_rate: int = 24000,
        seconds_per_word: float = 0.12,
        ttfb: float = 0.02,
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=sample_rate,
            num_channels=1,
        )
        self.seconds_per_word = seconds_per_word
        self.ttfb = ttfb
        self.texts: list[str] = []

    @property
    def model(self) -> str:
        return "scripted-tts"

    @property
    def provider(self) -> str:
        return "fake"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        self.texts.append(text)
        return _Chunked(tts=self, input_text=text, conn_options=conn_options)


class _Chunked(tts.ChunkedStream):
    def __init__(self, *, tts: ScriptedTTS, input_text: str, conn_options: APIConnectOptions):
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._owner = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        o = self._owner
        rate = o.sample_rate
        output_emitter.initialize(
            request_id=shortuuid("tts_"),
            sample_rate=rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        if o.ttfb:
            await asyncio.sleep(o.ttfb)
        words = max(1, len(self.input_text.split()))
        total = int(rate * o.seconds_per_word * words)
        t = np.arange(total) / rate
        # a quiet tone rather than zeros, so the output is audible if someone records it
        pcm = (np.sin(2 * np.pi * 220.0 * t) * 2000).astype(np.int16).tobytes()
        chunk = rate // 10 * 2  # 100 ms of 16-bit mono
        for i in range(0, len(pcm), chunk):
            output_emitter.push(pcm[i : i + chunk])
        output_emitter.flush()
