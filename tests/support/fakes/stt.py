"""A scripted batch STT: each recognize() returns the next scripted transcript.

Non-streaming, so LiveKit pairs it with a VAD (StreamAdapter) in an audio pipeline.
"""

from __future__ import annotations

from livekit.agents import APIConnectOptions, stt
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer


class ScriptedSTT(stt.STT):
    def __init__(
        self, transcripts: list[str], *, language: str = "en", speaker_id: str | None = None
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._transcripts = list(transcripts)
        self._language = language
        self._speaker_id = speaker_id

    @property
    def model(self) -> str:
        return "scripted-stt"

    @property
    def provider(self) -> str:
        return "fake"

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        text = self._transcripts.pop(0) if self._transcripts else ""
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[
                stt.SpeechData(
                    language=LanguageCode(self._language),
                    text=text,
                    confidence=0.9,
                    speaker_id=self._speaker_id,
                )
            ],
        )
