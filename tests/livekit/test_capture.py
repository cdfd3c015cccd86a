"""SessionCapture against real AgentSessions driven by scripted fakes (no network, no DB)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, RunContext, function_tool
from livekit.agents.voice.events import AgentStateChangedEvent

from auditagent import records as r
from auditagent.livekit.capture import SessionCapture
from auditagent.livekit.hooks import RawEvent
from tests.support.fakes.llm import Reply, ScriptedLLM


class ToolAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a bank agent.")

    @function_tool
    async def get_balance(self, context: RunContext, account: str) -> str:
        """Look up an account balance."""
        return f"balance of {account} is 42"

    @function_tool
    async def close_account(self, context: RunContext, account: str) -> str:
        """Close an account."""
        raise RuntimeError(f"ledger locked for {account}")


def _translate_all(cap: SessionCapture, raw: list[RawEvent]) -> list[r.Record]:
    out: list[r.Record] = []
    for ev in raw:
        out.extend(cap.translate(ev))
    return out


def _kinds(recs: list[r.Record], kind: type[Any]) -> list[Any]:
    return [x for x in recs if isinstance(x, kind)]


async def _text_session(
    llm: ScriptedLLM, agent: Agent
) -> tuple[AgentSession[None], SessionCapture, list[RawEvent]]:
    session: AgentSession[None] = AgentSession(llm=llm, vad=None)
    raw: list[RawEvent] = []
    cap = SessionCapture(session, put=raw.append)
    assert cap.check_transcription(agent=agent) == []
    cap.install()
    await session.start(agent)
    return session, cap, raw


async def test_text_mode_tools_and_errors() -> None:
    llm = ScriptedLLM(
        [
            Reply(text="Hello, how can I help?"),
            Reply(tool_calls=[("get_balance", '{"account": "A-1"}')]),
            Reply(text="Your balance is 42."),
            Reply(tool_calls=[("close_account", '{"account": "B-2"}')]),
            Reply(text="Sorry, that failed."),
        ]
    )
    session, cap, raw = await _text_session(llm, ToolAgent())
    await session.run(user_input="hi")
    await session.run(user_input="what is my balance?")
    await session.run(user_input="close B-2")
    await session.aclose()
    recs = _translate_all(cap, raw)
    assert cap.closed
    for rec in recs:
        assert r.decode(r.encode(rec)) == rec

    users = [u.text for u in _kinds(recs, r.UserUtterance)]
    assert users == ["hi", "what is my balance?", "close B-2"]
    agents = _kinds(recs, r.AgentUtterance)
    assert [a.text for a in agents] == [
        "Hello, how can I help?",
        "Your balance is 42.",
        "Sorry, that failed.",
    ]
    assert all(a.heard_text_known and not a.interrupted for a in agents)

    calls = {c.name: c for c in _kinds(recs, r.ToolCall)}
    assert calls["get_balance"].arguments == '{"account": "A-1"}'
    assert calls["close_account"].arguments == '{"account": "B-2"}'
    results = {t.name: t for t in _kinds(recs, r.ToolResult)}
    ok = results["get_balance"]
    assert not ok.is_error and ok.model_told is not None and "42" in ok.model_told
    assert ok.duration_s is not None and ok.duration_s >= 0
    bad = results["close_account"]
    assert bad.is_error
    assert bad.exception is not None and "ledger locked for B-2" in bad.exception
    assert bad.model_told is not None and "ledger locked" not in bad.model_told
    # each call and result recorded once even though history reconcile also saw them
    assert len(_kinds(recs, r.ToolCall)) == 2 and len(_kinds(recs, r.ToolResult)) == 2
    assert any(t.llm_ttft is not None for t in _kinds(recs, r.TurnTiming))
    closed = recs[-1]
    assert isinstance(closed, r.Closed)
    assert closed.usage and any(u.values for u in closed.usage)


async def test_handlers_never_raise() -> None:
    def boom(_: RawEvent) -> None:
        raise RuntimeError("queue broken")

    session: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    cap = SessionCapture(session, put=boom)
    cap.install()
    ev = AgentStateChangedEvent(old_state="idle", new_state="listening")
    session.emit("agent_state_changed", ev)  # must not raise
    session.emit("conversation_item_added", object())  # type: ignore[arg-type]

    # translate of a weird event degrades to a notice instead of raising
    out = cap.translate(("conversation_item_added", object(), 0.0))
    assert len(out) == 1 and isinstance(out[0], r.Notice)
    out = cap.translate(("tool_execution_updated", 17, 1.0))
    assert isinstance(out[0], r.Notice)

    # Its cost on the loop is measured in bench/recorder_bench.py, not asserted here: timings
    # on these shared machines make a flaky test, not a guard.
    cap.uninstall()
    await asyncio.sleep(0)


# ---------------------------------------------------------------- realtime transcription policy

from auditagent.errors import TranscriptionDisabled  # noqa: E402
from tests.support.fakes.realtime import GeminiLikeRealtime, OpenAILikeRealtime  # noqa: E402


def _rt_session(model: Any, **kw: Any) -> AgentSession[None]:
    return AgentSession(llm=model, vad=None, **kw)


async def test_realtime_transcription_on_needs_nothing() -> None:
    s = _rt_session(OpenAILikeRealtime())
    cap = SessionCapture(s, put=lambda _: None)
    assert cap.check_transcription() == []
    opened = cap.opened(tenant="t", participant="p", labels={}, room="r", job_id="j")
    assert opened.architecture == "realtime"
    assert opened.realtime is not None and opened.realtime.provider == "openai-like"
    assert opened.transcription.user_transcription is True


async def test_realtime_transcription_off_enforce_turns_it_on() -> None:
    m = OpenAILikeRealtime(input_audio_transcription=None)
    cap = SessionCapture(_rt_session(m), put=lambda _: None, policy="enforce")
    out = cap.check_transcription()
    assert len(out) == 1 and isinstance(out[0], r.TranscriptionEnabled)
    assert out[0].transcription_model == "gpt-4o-mini-transcribe"
    assert m.capabilities.user_transcription and m.updates
    opened = cap.opened(tenant="t", participant=None, labels={}, room=None, job_id=None)
    assert opened.transcription.enabled_by_recorder


async def test_realtime_transcription_off_warn_and_off() -> None:
    m = OpenAILikeRealtime(input_audio_transcription=None)
    out = SessionCapture(_rt_session(m), put=lambda _: None, policy="warn").check_transcription()
    assert len(out) == 1 and isinstance(out[0], r.Notice) and out[0].code == "transcription_off"
    assert not m.updates and not m.capabilities.user_transcription
    assert (
        SessionCapture(_rt_session(m), put=lambda _: None, policy="off").check_transcription() == []
    )


async def test_gemini_like_refused_under_enforce() -> None:
    m = GeminiLikeRealtime(output_on=False)
    cap = SessionCapture(_rt_session(m), put=lambda _: None, policy="enforce")
    with pytest.raises(TranscriptionDisabled) as ei:
        cap.check_transcription()
    assert "output" in str(ei.value) and "\n" not in str(ei.value)
    out = SessionCapture(_rt_session(m), put=lambda _: None, policy="warn").check_transcription()
    assert isinstance(out[0], r.Notice)


async def test_realtime_with_session_stt_is_hybrid_and_accepted() -> None:
    from tests.support.fakes.stt import ScriptedSTT

    m = GeminiLikeRealtime(input_on=False)
    s = _rt_session(m, stt=ScriptedSTT([]))
    cap = SessionCapture(s, put=lambda _: None, policy="enforce")
    assert cap.check_transcription() == []
    assert (
        cap.opened(tenant="t", participant=None, labels={}, room=None, job_id=None).architecture
        == "hybrid"
    )


async def test_agent_level_realtime_checked_on_agent_change() -> None:
    """The agent arrives in start(); a later agent's model is checked when it appears."""
    m = OpenAILikeRealtime(input_audio_transcription=None)
    s: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    cap = SessionCapture(s, put=lambda _: None, policy="enforce")
    assert cap.check_transcription() == []
    s._agent = Agent(instructions="x", llm=m)  # what start()/a handoff does
    out = cap.translate(
        (
            "agent_state_changed",
            AgentStateChangedEvent(old_state="idle", new_state="listening"),
            1.0,
        )
    )
    assert len(out) == 1 and isinstance(out[0], r.TranscriptionEnabled)
    assert m.capabilities.user_transcription


# ---------------------------------------------------------------- transcript merge, heard text

from livekit.agents import llm as lk_llm  # noqa: E402
from livekit.agents.voice.events import (  # noqa: E402
    ConversationItemAddedEvent,
    UserInputTranscribedEvent,
)
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer  # noqa: E402

from tests.support.fakes.io import ClockedAudioOutput, CollectingTextOutput  # noqa: E402


def _item(msg: Any, audio: Any = None, text: Any = None) -> RawEvent:
    return ("conversation_item_added", (ConversationItemAddedEvent(item=msg), audio, text), 2.0)


async def test_pipeline_final_and_user_message_are_one_utterance() -> None:
    s: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    cap = SessionCapture(s, put=lambda _: None)
    tr = UserInputTranscribedEvent(
        transcript="bonjour", is_final=True, language="fr", speaker_id="S1"
    )
    out = cap.translate(("user_input_transcribed", tr, 1.0))
    assert out == []
    msg = lk_llm.ChatMessage(role="user", content=["bonjour"], transcript_confidence=0.8)
    out = cap.translate(_item(msg))
    (u,) = _kinds(out, r.UserUtterance)
    assert (u.text, u.language, u.speaker_id, u.confidence) == ("bonjour", "fr", "S1", 0.8)
    assert _kinds(cap.reconcile(), r.UserUtterance) == []


async def test_realtime_transcripts_session_stt_and_own() -> None:
    s = _rt_session(GeminiLikeRealtime(input_on=False), stt=None)
    s._agent = Agent(instructions="x")
    cap = SessionCapture(s, put=lambda _: None, policy="off")
    # session STT on realtime: no ChatMessage will follow, the final is the record
    tr = UserInputTranscribedEvent(transcript="hello", is_final=True, language="en")
    (u,) = cap.translate(("user_input_transcribed", tr, 1.0))
    assert isinstance(u, r.UserUtterance) and u.text == "hello" and u.source == "stt"
    # the model's own transcript carries the item id of the ChatMessage that follows
    own = UserInputTranscribedEvent(transcript="hi there", is_final=True, item_id="it1")
    assert cap.translate(("user_input_transcribed", own, 1.5)) == []
    msg = lk_llm.ChatMessage(id="it1", role="user", content=["hi there"])
    (u2,) = _kinds(cap.translate(_item(msg)), r.UserUtterance)
    assert u2.text == "hi there" and u2.source == "realtime"
    interim = UserInputTranscribedEvent(transcript="hel", is_final=False)
    assert cap.translate(("user_input_transcribed", interim, 0.5)) == []
    cap2 = SessionCapture(s, put=lambda _: None, policy="off", record_interims=True)
    (i,) = cap2.translate(("user_input_transcribed", interim, 0.5))
    assert isinstance(i, r.UserUtterance) and not i.final


async def test_heard_text_known_depends_on_synchronizer() -> None:
    s: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    cap = SessionCapture(s, put=lambda _: None)
    audio = ClockedAudioOutput()
    text = CollectingTextOutput()
    cut = lk_llm.ChatMessage(role="assistant", content=["Your balance is"], interrupted=True)
    (a,) = _kinds(cap.translate(_item(cut, audio, text)), r.AgentUtterance)
    assert a.interrupted and not a.heard_text_known

    sync = TranscriptSynchronizer(next_in_chain_audio=audio, next_in_chain_text=text)
    cut2 = lk_llm.ChatMessage(role="assistant", content=["Your"], interrupted=True)
    (b,) = _kinds(cap.translate(_item(cut2, sync.audio_output, sync.text_output)), r.AgentUtterance)
    assert b.interrupted and b.heard_text_known and b.generated_text is None
    await sync.aclose()

    full = lk_llm.ChatMessage(role="assistant", content=["All of it."])
    (c,) = _kinds(cap.translate(_item(full, audio, text)), r.AgentUtterance)
    assert c.heard_text_known and not c.interrupted
    # text-only (no audio output): what was delivered is what was read
    cut3 = lk_llm.ChatMessage(role="assistant", content=["typed"], interrupted=True)
    (d,) = _kinds(cap.translate(_item(cut3)), r.AgentUtterance)
    assert d.heard_text_known
