"""Real LiveKit plugins against the local provider simulators (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import llm, stt, utils

from auditagent_demo import script
from auditagent_demo.server import (
    SimulatorServer,
    cartesia_tts,
    deepgram_stt,
    gemini_live,
    openai_llm,
    openai_realtime,
    whisper_stt,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    async with utils.http_context.open(), SimulatorServer(realtime_pace=8.0) as server:
        yield server


def frames(pcm: bytes, rate: int, chunk_s: float = 0.05) -> list[rtc.AudioFrame]:
    return [rtc.AudioFrame(c, rate, 1, len(c) // 2) for c in script.pcm_chunks(pcm, rate, chunk_s)]


@llm.function_tool
async def lookup_appointment(reference: str) -> dict[str, Any]:
    """Look up a patient's appointment by booking reference."""
    return default.find_tool_call("call_lookup_ab123").result  # type: ignore[union-attr]


default = script.default_scenario()


# --- Deepgram ----------------------------------------------------------------------------


async def test_deepgram_stream_interims_and_finals(sim: SimulatorServer) -> None:
    dg = deepgram_stt(sim)
    stream = dg.stream()
    for i in range(2):
        for f in frames(script.user_utterance(default.user_line(i), 16000), 16000):
            stream.push_frame(f)
    stream.end_input()
    events: list[stt.SpeechEvent] = []

    async def collect() -> None:
        async for ev in stream:
            events.append(ev)

    await asyncio.wait_for(collect(), 15)
    finals = [e.alternatives[0] for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert [f.text for f in finals] == default.user_lines[:2]
    assert finals[0].words and finals[0].words[0].start_time == pytest.approx(0.3, abs=0.05)
    assert finals[0].confidence > 0.9 and finals[0].language == "en-US"
    assert any(e.type == stt.SpeechEventType.INTERIM_TRANSCRIPT for e in events)
    kinds = [e.type for e in events if e.type != stt.SpeechEventType.RECOGNITION_USAGE]
    assert kinds.count(stt.SpeechEventType.START_OF_SPEECH) == 2
    assert kinds.count(stt.SpeechEventType.END_OF_SPEECH) == 2
    assert sim.deepgram.requests[0]["sample_rate"] == "16000"


# --- OpenAI chat + whisper ---------------------------------------------------------------


async def _run_chat(model: llm.LLM, ctx: llm.ChatContext) -> tuple[str, list[Any]]:
    text, calls = "", []
    async with model.chat(chat_ctx=ctx, tools=[lookup_appointment]) as stream:
        async for chunk in stream:
            if chunk.delta:
                text += chunk.delta.content or ""
                calls.extend(chunk.delta.tool_calls or [])
    return text, calls


async def test_openai_llm_reply_and_tool_call(sim: SimulatorServer) -> None:
    model = openai_llm(sim)
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="system", content="You are a clinic receptionist.")
    text, calls = await asyncio.wait_for(_run_chat(model, ctx), 10)
    assert text == default.agent_replies[0].text  # greeting

    ctx.add_message(role="user", content=default.user_line(0))
    text, _ = await asyncio.wait_for(_run_chat(model, ctx), 10)
    assert text == default.agent_replies[1].text
    ctx.add_message(role="assistant", content=text)

    ctx.add_message(role="user", content=default.user_line(1))
    text, calls = await asyncio.wait_for(_run_chat(model, ctx), 10)
    assert text == ""
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "lookup_appointment"
    assert json.loads(call.arguments) == {"reference": "AB123"}
    ctx.items.append(
        llm.FunctionCall(call_id=call.call_id, name=call.name, arguments=call.arguments)
    )
    ctx.items.append(
        llm.FunctionCallOutput(
            call_id=call.call_id, name=call.name, output=json.dumps({"ok": 1}), is_error=False
        )
    )
    text, calls = await asyncio.wait_for(_run_chat(model, ctx), 10)
    assert not calls
    assert text == default.agent_replies[2].text
    assert sim.openai.chat_requests[-1]["stream"] is True


async def test_whisper_transcribes_each_utterance(sim: SimulatorServer) -> None:
    whisper = whisper_stt(sim)
    for i in (2, 1, 3):  # out of order: identification is by duration, not call count
        pcm = script.user_utterance(default.user_line(i), 24000)
        ev = await asyncio.wait_for(whisper.recognize(frames(pcm, 24000)), 10)
        assert ev.alternatives[0].text == default.user_line(i)
        assert ev.alternatives[0].language == "en"


# --- Cartesia ----------------------------------------------------------------------------


async def _synth_seconds(stream: Any) -> float:
    total = 0.0
    async for audio in stream:
        total += audio.frame.duration
    return total


async def test_cartesia_bytes_duration_follows_text(sim: SimulatorServer) -> None:
    tts = cartesia_tts(sim)
    short = await asyncio.wait_for(_synth_seconds(tts.synthesize("Hello there.")), 10)
    long = await asyncio.wait_for(_synth_seconds(tts.synthesize(default.agent_replies[3].text)), 10)
    assert short == pytest.approx(script.speech_seconds("Hello there.", per_char=0.06), abs=0.05)
    assert long > 5 * short


async def test_cartesia_websocket_stream(sim: SimulatorServer) -> None:
    tts = cartesia_tts(sim)
    stream = tts.stream()
    reply = default.agent_replies[2].text
    stream.push_text(reply)
    stream.end_input()
    seconds = await asyncio.wait_for(_synth_seconds(stream), 10)
    sent = "".join(sim.cartesia.transcripts)
    assert sent.split() == reply.split()
    # one synthetic voice second per AGENT_SECONDS_PER_CHAR of each sentence
    assert seconds > len(reply) * script.AGENT_SECONDS_PER_CHAR * 0.8
    await tts.aclose()


# --- OpenAI Realtime ---------------------------------------------------------------------


class _Collector:
    def __init__(self, session: llm.RealtimeSession) -> None:
        self.transcripts: list[llm.InputTranscriptionCompleted] = []
        self.generations: list[llm.GenerationCreatedEvent] = []
        self.speech_started = 0
        self.new_generation = asyncio.Event()
        session.on("input_audio_transcription_completed", self.transcripts.append)
        session.on("generation_created", self._gen)
        session.on("input_speech_started", self._started)

    def _gen(self, ev: llm.GenerationCreatedEvent) -> None:
        self.generations.append(ev)
        self.new_generation.set()

    def _started(self, _: Any) -> None:
        self.speech_started += 1

    async def next_generation(self) -> llm.GenerationCreatedEvent:
        await asyncio.wait_for(self.new_generation.wait(), 10)
        self.new_generation.clear()
        return self.generations[-1]


async def _drain(gen: llm.GenerationCreatedEvent) -> tuple[str, float, list[llm.FunctionCall]]:
    """Text and audio seconds of every message, and the function calls, of one generation."""
    text, seconds, calls = "", 0.0, []

    async def message(msg: llm.MessageGeneration) -> None:
        nonlocal text, seconds

        async def audio() -> None:
            nonlocal seconds
            async for f in msg.audio_stream:
                seconds += f.duration

        t = asyncio.create_task(audio())
        async for delta in msg.text_stream:
            text += str(delta)
        await t

    async def functions() -> None:
        async for call in gen.function_stream:
            calls.append(call)

    ft = asyncio.create_task(functions())
    async for msg in gen.message_stream:
        await message(msg)
    await ft
    return text, seconds, calls


async def _until(pred: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _push(session: llm.RealtimeSession, pcm: bytes, rate: int) -> None:
    for f in frames(pcm, rate, 0.02):
        session.push_audio(f)


@pytest.mark.parametrize("transcription", [True, False])
async def test_openai_realtime_turns(sim: SimulatorServer, transcription: bool) -> None:
    model = openai_realtime(sim, input_transcription=transcription)
    session = model.session()
    await session.update_tools([lookup_appointment])
    col = _Collector(session)
    try:
        _push(session, script.user_utterance(default.user_line(0), 24000), 24000)
        text, seconds, _ = await asyncio.wait_for(_drain(await col.next_generation()), 15)
        assert text == default.agent_replies[1].text
        assert seconds == pytest.approx(
            script.speech_seconds(text, per_char=script.AGENT_SECONDS_PER_CHAR), abs=0.1
        )
        finals = [t for t in col.transcripts if t.is_final]
        if transcription:
            assert [t.transcript for t in finals] == [default.user_line(0)]
        else:
            assert finals == []

        # the tool turn: function call, then the reply that uses its output
        _push(session, script.user_utterance(default.user_line(1), 24000), 24000)
        _, _, calls = await asyncio.wait_for(_drain(await col.next_generation()), 15)
        assert [(c.name, json.loads(c.arguments)) for c in calls] == [
            ("lookup_appointment", {"reference": "AB123"})
        ]
        ctx = session.chat_ctx.copy()
        ctx.items.append(
            llm.FunctionCallOutput(
                call_id=calls[0].call_id, name=calls[0].name, output='{"ok":1}', is_error=False
            )
        )
        await session.update_chat_ctx(ctx)
        session.generate_reply()
        text, _, _ = await asyncio.wait_for(_drain(await col.next_generation()), 15)
        assert text == default.agent_replies[2].text
    finally:
        await session.aclose()
        await model.aclose()


async def test_openai_realtime_barge_in_and_truncate(sim: SimulatorServer) -> None:
    model = openai_realtime(sim)
    session = model.session()
    col = _Collector(session)
    try:
        for i in range(3):  # the third line gets the long reply
            _push(session, script.user_utterance(default.user_line(i), 24000), 24000)
            gen = await col.next_generation()
            if i < 2:
                await asyncio.wait_for(_drain(gen), 15)
        long_reply = gen
        first = await asyncio.wait_for(long_reply.message_stream.__anext__(), 5)
        await asyncio.wait_for(first.audio_stream.__anext__(), 5)
        before, cancelled = col.speech_started, len(sim.openai_realtime.cancellations)
        _push(session, script.user_utterance(default.user_line(3), 24000), 24000)
        await _until(
            lambda: (
                col.speech_started > before and len(sim.openai_realtime.cancellations) > cancelled
            ),
            "the barge-in to start speech and cancel the reply",
        )
        assert col.speech_started == before + 1
        assert sim.openai_realtime.cancellations[-1][1] == "turn_detected"
        session.truncate(
            message_id=first.message_id, modalities=["audio", "text"], audio_end_ms=1200
        )
        gen = await col.next_generation()
        text, _, _ = await asyncio.wait_for(_drain(gen), 15)
        assert text == default.agent_replies[4].text
        assert sim.openai_realtime.truncations == [(first.message_id, 1200)]
    finally:
        await session.aclose()
        await model.aclose()


# --- Gemini Live (TLS) -------------------------------------------------------------------


@pytest.mark.parametrize("transcription", [True, False])
async def test_gemini_live_turns_over_tls(sim: SimulatorServer, transcription: bool) -> None:
    model = gemini_live(sim, input_transcription=transcription, output_transcription=transcription)
    session = model.session()
    await session.update_tools([lookup_appointment])
    col = _Collector(session)
    try:
        _push(session, script.user_utterance(default.user_line(0), 16000), 16000)
        text, seconds, _ = await asyncio.wait_for(_drain(await col.next_generation()), 15)
        assert seconds == pytest.approx(
            script.speech_seconds(default.agent_replies[1].text, per_char=0.06), abs=0.15
        )
        if transcription:
            assert text == default.agent_replies[1].text
            await _until(
                lambda: any(t.is_final for t in col.transcripts), "the input transcription"
            )
            assert [t.transcript for t in col.transcripts if t.is_final] == [default.user_line(0)]
        else:
            assert text == ""
            assert col.transcripts == []

        _push(session, script.user_utterance(default.user_line(1), 16000), 16000)
        _, _, calls = await asyncio.wait_for(_drain(await col.next_generation()), 15)
        assert [(c.name, json.loads(c.arguments)) for c in calls] == [
            ("lookup_appointment", {"reference": "AB123"})
        ]
        ctx = session.chat_ctx.copy()
        ctx.items.append(
            llm.FunctionCallOutput(
                call_id=calls[0].call_id, name=calls[0].name, output='{"ok":1}', is_error=False
            )
        )
        await session.update_chat_ctx(ctx)
        text, _, _ = await asyncio.wait_for(_drain(await col.next_generation()), 15)
        if transcription:
            assert text == default.agent_replies[2].text
        assert (
            sim.gemini.tool_responses and sim.gemini.tool_responses[0]["id"] == "call_lookup_ab123"
        )
        setup = sim.gemini.setups[-1]
        assert ("inputAudioTranscription" in setup) is transcription
        assert sim.gemini.unknown_messages == []
    finally:
        await session.aclose()
        await model.aclose()


async def test_gemini_live_barge_in(sim: SimulatorServer) -> None:
    model = gemini_live(sim)
    session = model.session()
    col = _Collector(session)
    try:
        for i in range(3):  # the third line gets the long reply
            _push(session, script.user_utterance(default.user_line(i), 16000), 16000)
            gen = await col.next_generation()
            if i < 2:
                await asyncio.wait_for(_drain(gen), 15)
        first = await asyncio.wait_for(gen.message_stream.__anext__(), 5)
        await asyncio.wait_for(first.audio_stream.__anext__(), 5)
        before = col.speech_started
        _push(session, script.user_utterance(default.user_line(3), 16000), 16000)
        gen = await col.next_generation()
        assert sim.gemini.interruptions == 1
        assert col.speech_started > before
        text, _, _ = await asyncio.wait_for(_drain(gen), 15)
        assert text == default.agent_replies[4].text
    finally:
        await session.aclose()
        await model.aclose()
