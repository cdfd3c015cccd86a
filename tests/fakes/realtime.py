"""Fake realtime models for the transcription checks.

``OpenAILikeRealtime`` mirrors the OpenAI plugin's public surface that matters to a recorder:
``_opts.input_audio_transcription`` (None = off) and ``update_options(input_audio_transcription=)``
which flips ``capabilities.user_transcription``. ``GeminiLikeRealtime`` has input/output
transcription fixed at construction and an ``update_options`` that cannot change them.
Neither opens a session: these tests exercise what happens before and around ``start``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livekit.agents import llm


def _caps(*, user_transcription: bool) -> llm.RealtimeCapabilities:
    return llm.RealtimeCapabilities(
        message_truncation=True,
        turn_detection=True,
        user_transcription=user_transcription,
        auto_tool_reply_generation=False,
        audio_output=True,
        manual_function_calls=True,
    )


@dataclass
class _OpenAIOpts:
    input_audio_transcription: Any


class OpenAILikeRealtime(llm.RealtimeModel):
    def __init__(self, *, input_audio_transcription: Any = "default") -> None:
        super().__init__(
            capabilities=_caps(user_transcription=input_audio_transcription is not None)
        )
        self._opts = _OpenAIOpts(input_audio_transcription=input_audio_transcription)
        self.updates: list[dict[str, Any]] = []

    @property
    def model(self) -> str:
        return "fake-realtime"

    @property
    def provider(self) -> str:
        return "openai-like"

    def update_options(
        self, *, voice: str | None = None, input_audio_transcription: Any = None
    ) -> None:
        self.updates.append({"input_audio_transcription": input_audio_transcription})
        self._opts.input_audio_transcription = input_audio_transcription
        self._capabilities.user_transcription = input_audio_transcription is not None

    def session(self, *, turn_detection_disabled: bool = False) -> llm.RealtimeSession:
        raise NotImplementedError("transcription-check fake; no session")

    async def aclose(self) -> None:
        pass


@dataclass
class _GeminiOpts:
    input_audio_transcription: Any
    output_audio_transcription: Any


class GeminiLikeRealtime(llm.RealtimeModel):
    def __init__(self, *, input_on: bool = True, output_on: bool = True) -> None:
        super().__init__(capabilities=_caps(user_transcription=input_on))
        self._opts = _GeminiOpts(
            input_audio_transcription={} if input_on else None,
            output_audio_transcription={} if output_on else None,
        )

    @property
    def model(self) -> str:
        return "fake-live"

    @property
    def provider(self) -> str:
        return "gemini-like"

    def update_options(self, *, voice: str | None = None, temperature: float | None = None) -> None:
        pass

    def session(self, *, turn_detection_disabled: bool = False) -> llm.RealtimeSession:
        raise NotImplementedError("transcription-check fake; no session")

    async def aclose(self) -> None:
        pass
