"""Fake realtime models for the transcription checks.

``OpenAILikeRealtime`` mirrors the OpenAI plugin's public surface that matters to a recorder:
``_opts.input_audio_transcription`` (None = off) and ``update_options(input_audio_transcription=)``
which flips ``capabilities.user_transcription``. ``GeminiLikeRealtime`` has input/output
transcription fixed at construction and an ``update_options`` that cannot change them.

Both open a real ``llm.RealtimeSession`` (``ScriptedRealtimeSession``) that an AgentSession
drives: text turns arrive through ``update_chat_ctx`` + ``generate_reply``; a spoken turn is
simulated with ``user_turn(transcript)``, which emits what a server with its own turn detection
emits (speech started/stopped, the transcript only while the model's input transcription is
on — read live, as the real server would after a ``session.update`` — then a server-initiated
generation). Replies are text-only, played from the model's ``replies`` script.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from livekit import rtc
from livekit.agents import llm
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import aio, shortuuid


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
    def __init__(
        self, *, input_audio_transcription: Any = "default", replies: list[str] | None = None
    ) -> None:
        super().__init__(
            capabilities=_caps(user_transcription=input_audio_transcription is not None)
        )
        self._opts = _OpenAIOpts(input_audio_transcription=input_audio_transcription)
        self.updates: list[dict[str, Any]] = []
        self.replies = list(replies or [])
        self.sessions: list[ScriptedRealtimeSession] = []

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

    def session(self, *, turn_detection_disabled: bool = False) -> ScriptedRealtimeSession:
        s = ScriptedRealtimeSession(self, self.replies)
        self.sessions.append(s)
        return s

    async def aclose(self) -> None:
        pass


@dataclass
class _GeminiOpts:
    input_audio_transcription: Any
    output_audio_transcription: Any


class GeminiLikeRealtime(llm.RealtimeModel):
    def __init__(
        self, *, input_on: bool = True, output_on: bool = True, replies: list[str] | None = None
    ) -> None:
        super().__init__(capabilities=_caps(user_transcription=input_on))
        self._opts = _GeminiOpts(
            input_audio_transcription={} if input_on else None,
            output_audio_transcription={} if output_on else None,
        )
        self.replies = list(replies or [])
        self.sessions: list[ScriptedRealtimeSession] = []

    @property
    def model(self) -> str:
        return "fake-live"

    @property
    def provider(self) -> str:
        return "gemini-like"

    def update_options(self, *, voice: str | None = None, temperature: float | None = None) -> None:
        pass

    def session(self, *, turn_detection_disabled: bool = False) -> ScriptedRealtimeSession:
        s = ScriptedRealtimeSession(self, self.replies)
        self.sessions.append(s)
        return s

    async def aclose(self) -> None:
        pass


class ScriptedRealtimeSession(llm.RealtimeSession[Any]):
    """A realtime session whose "server" plays scripted text replies."""

    def __init__(self, model: llm.RealtimeModel, replies: list[str]) -> None:
        super().__init__(model)
        self._replies = replies  # shared with the model: one script per conversation
        self._chat_ctx = llm.ChatContext.empty()
        self._tools = llm.ToolContext.empty()
        self.instructions: str | None = None
        self.audio_frames = 0
        self.truncations: list[tuple[str, int]] = []
        self.closed = False

    @property
    def chat_ctx(self) -> llm.ChatContext:
        return self._chat_ctx.copy()

    @property
    def tools(self) -> llm.ToolContext:
        return self._tools.copy()

    async def update_instructions(self, instructions: str) -> None:
        self.instructions = instructions

    async def update_chat_ctx(self, chat_ctx: llm.ChatContext) -> None:
        self._chat_ctx = chat_ctx.copy()

    async def update_tools(self, tools: list[llm.Tool]) -> None:
        self._tools = llm.ToolContext(tools)

    def update_options(self, *, tool_choice: NotGivenOr[llm.ToolChoice | None] = NOT_GIVEN) -> None:
        pass

    def push_audio(self, frame: rtc.AudioFrame) -> None:
        self.audio_frames += 1

    def push_video(self, frame: rtc.VideoFrame) -> None:
        pass

    def generate_reply(
        self,
        *,
        instructions: NotGivenOr[str] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        tools: NotGivenOr[list[llm.Tool]] = NOT_GIVEN,
    ) -> asyncio.Future[llm.GenerationCreatedEvent]:
        fut: asyncio.Future[llm.GenerationCreatedEvent] = asyncio.Future()
        fut.set_result(self._generation(user_initiated=True))
        return fut

    def commit_audio(self) -> None:
        pass

    def clear_audio(self) -> None:
        pass

    def interrupt(self) -> None:
        pass

    def truncate(
        self,
        *,
        message_id: str,
        modalities: list[Literal["text", "audio"]],
        audio_end_ms: int,
        audio_transcript: NotGivenOr[str] = NOT_GIVEN,
    ) -> None:
        self.truncations.append((message_id, audio_end_ms))

    async def aclose(self) -> None:
        self.closed = True

    # --- what the "server" does

    def user_turn(self, transcript: str) -> None:
        """The user said ``transcript``; the server detects the turn and answers it."""
        transcribing = self.realtime_model.capabilities.user_transcription
        self.emit("input_speech_started", llm.InputSpeechStartedEvent())
        self.emit(
            "input_speech_stopped",
            llm.InputSpeechStoppedEvent(user_transcription_enabled=transcribing),
        )
        if transcribing:
            self.emit(
                "input_audio_transcription_completed",
                llm.InputTranscriptionCompleted(
                    item_id=shortuuid("item_"), transcript=transcript, is_final=True
                ),
            )
        self.emit("generation_created", self._generation(user_initiated=False))

    def _generation(self, *, user_initiated: bool) -> llm.GenerationCreatedEvent:
        text = self._replies.pop(0) if self._replies else "ok"
        text_ch: aio.Chan[str] = aio.Chan()
        audio_ch: aio.Chan[rtc.AudioFrame] = aio.Chan()
        for i, word in enumerate(text.split(" ")):
            text_ch.send_nowait(word if i == 0 else " " + word)
        text_ch.close()
        audio_ch.close()
        modalities: asyncio.Future[list[Literal["text", "audio"]]] = asyncio.Future()
        modalities.set_result(["text"])
        msg_ch: aio.Chan[llm.MessageGeneration] = aio.Chan()
        msg_ch.send_nowait(
            llm.MessageGeneration(
                message_id=shortuuid("item_"),
                text_stream=text_ch,
                audio_stream=audio_ch,
                modalities=modalities,
            )
        )
        msg_ch.close()
        fn_ch: aio.Chan[llm.FunctionCall] = aio.Chan()
        fn_ch.close()
        return llm.GenerationCreatedEvent(
            message_stream=msg_ch,
            function_stream=fn_ch,
            user_initiated=user_initiated,
            response_id=shortuuid("resp_"),
        )
