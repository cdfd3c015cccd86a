"""Realtime-model sessions, driven for real by an AgentSession, recorded into the database.

The realtime "server" is ``tests.support.fakes.realtime.ScriptedRealtimeSession``: it
transcribes the user only while its model's input transcription is on, exactly the property
the recorder's transcription policy is about.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, RunContext, function_tool
from livekit.agents import llm as lk_llm
from livekit.agents.language import LanguageCode
from livekit.agents.voice.events import ConversationItemAddedEvent, UserInputTranscribedEvent

from auditagent import records as r
from auditagent.errors import TranscriptionDisabled
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from tests.support.fakes.io import ScriptedAudioInput
from tests.support.fakes.llm import Reply, ScriptedLLM
from tests.support.fakes.realtime import GeminiLikeRealtime, OpenAILikeRealtime
from tests.support.fakes.stt import ScriptedSTT
from tests.support.fakes.vad import EnergyVAD
from tests.support.helpers import assert_no_plaintext, read_records

CANARY = "Canary-Otter-8812"


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _assistant_counter(session: AgentSession[Any]) -> list[str]:
    said: list[str] = []

    def on_item(ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, lk_llm.ChatMessage) and ev.item.role == "assistant":
            said.append(ev.item.text_content or "")

    session.on("conversation_item_added", on_item)
    return said


async def _spoken_turns(
    settings: Settings, tenant: str, model: OpenAILikeRealtime, lines: list[str]
) -> tuple[uuid.UUID, list[Any]]:
    """Attach, start, let the user say each line to the realtime model, close."""
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=model, vad=None)
        said = _assistant_counter(session)
        rec = recorder.attach(session, tenant=tenant)
        await session.start(Agent(instructions="You are a clinic receptionist."))
        (rt,) = model.sessions
        for i, line in enumerate(lines):
            rt.user_turn(line)
            await _until(lambda i=i: len(said) > i, 5, f"reply {i}")  # type: ignore[misc]
        await session.run(user_input="typed follow-up")
        await session.aclose()
        await recorder.flush()
    return rec.session_id, said


def _users(got: list[Any]) -> list[r.UserUtterance]:
    return [u for u in got if isinstance(u, r.UserUtterance)]


async def test_transcription_on_records_user_and_agent_text(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    model = OpenAILikeRealtime(replies=[f"Welcome {CANARY}.", "Noted.", "Anything else?"])
    sid, said = await _spoken_turns(
        settings, tenant, model, [f"my name is {CANARY}", "I need an appointment"]
    )
    got = read_records(settings.database_url or "", sid, keyring)
    opened = got[0]
    assert isinstance(opened, r.Opened) and opened.architecture == "realtime"
    assert opened.realtime == r.ModelInfo(model="fake-realtime", provider="openai-like")
    assert opened.transcription.user_transcription is True
    users = _users(got)
    assert [u.text for u in users] == [
        f"my name is {CANARY}",
        "I need an appointment",
        "typed follow-up",
    ]
    # spoken turns come from the model's own transcript, one record each (no duplicate final)
    assert [u.source for u in users[:2]] == ["realtime", "realtime"]
    agents = [a.text for a in got if isinstance(a, r.AgentUtterance)]
    assert agents == [f"Welcome {CANARY}.", "Noted.", "Anything else?"] == said
    assert isinstance(got[-1], r.Closed)
    assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, CANARY)


async def test_transcription_off_enforce_turns_it_on_and_user_text_is_recorded(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    assert settings.transcription_policy == "enforce"
    model = OpenAILikeRealtime(input_audio_transcription=None, replies=["Sure.", "Done."])
    sid, _ = await _spoken_turns(settings, tenant, model, [f"book me in, {CANARY}"])
    assert model.updates and model.capabilities.user_transcription
    got = read_records(settings.database_url or "", sid, keyring)
    (enabled,) = [x for x in got if isinstance(x, r.TranscriptionEnabled)]
    assert enabled.transcription_model == "gpt-4o-mini-transcribe"
    assert enabled.model.provider == "openai-like"
    opened = got[0]
    assert isinstance(opened, r.Opened) and opened.transcription.enabled_by_recorder
    assert [u.text for u in _users(got)] == [f"book me in, {CANARY}", "typed follow-up"]


async def test_transcription_off_warn_leaves_spoken_turn_unrecorded(
    database_url: str, data_dir: Any, tenant: str
) -> None:
    """Control for the test above: without the recorder's switch the spoken turn is lost."""
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        flush_interval=0.05,
        transcription_policy="warn",
    )
    kr = LocalKeyring.init(settings.resolved_keyring_path)
    model = OpenAILikeRealtime(input_audio_transcription=None, replies=["Sure.", "Done."])
    sid, said = await _spoken_turns(settings, tenant, model, ["this is never transcribed"])
    assert not model.updates and said == ["Sure.", "Done."]
    got = read_records(database_url, sid, kr)
    assert [u.text for u in _users(got)] == ["typed follow-up"]
    notices = [n for n in got if isinstance(n, r.Notice) and n.code == "transcription_off"]
    assert len(notices) == 1


async def test_gemini_like_transcription_off_refused_at_attach(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=GeminiLikeRealtime(input_on=False), vad=None)
        with pytest.raises(TranscriptionDisabled) as err:
            recorder.attach(session, tenant=tenant)
    msg = str(err.value)
    assert "\n" not in msg and "input audio transcription off" in msg


async def test_session_stt_on_realtime_persists_user_finals(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """LiveKit stores no user ChatMessage for a session STT on a realtime model."""
    model = GeminiLikeRealtime(input_on=False, replies=["Hello."])
    stt = ScriptedSTT([f"this is {CANARY} speaking"], speaker_id="S1")
    finals: list[str] = []

    def on_tr(ev: UserInputTranscribedEvent) -> None:
        if ev.is_final:
            finals.append(ev.transcript)

    mic = ScriptedAudioInput()
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(
            llm=model, stt=stt, vad=EnergyVAD(), user_away_timeout=None, aec_warmup_duration=None
        )
        session.input.audio = mic
        session.on("user_input_transcribed", on_tr)
        rec = recorder.attach(session, tenant=tenant)
        await session.start(Agent(instructions="You are a clinic receptionist."))
        try:
            await mic.speak(0.4)
            await _until(lambda: bool(finals), 5, "the STT final")
        finally:
            mic.close()
            await session.aclose()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    opened = got[0]
    assert isinstance(opened, r.Opened) and opened.architecture == "hybrid"
    assert opened.stt == r.ModelInfo(model="scripted-stt", provider="fake")
    # one record, even when LiveKit also commits the words as a user message at close
    (u,) = _users(got)
    assert u.text == f"this is {CANARY} speaking"
    assert u.source == "stt" and u.final and u.speaker_id == "S1" and u.language == "en"
    assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, CANARY)


async def test_stt_final_then_same_user_message_is_one_utterance() -> None:
    """Deterministic form of the close-time commit seen above, at the translate level."""
    from livekit.agents.voice.events import ConversationItemAddedEvent

    from auditagent.livekit.capture import SessionCapture

    session: AgentSession[None] = AgentSession(
        llm=GeminiLikeRealtime(input_on=False), stt=ScriptedSTT([]), vad=None
    )
    session._agent = Agent(instructions="x")  # what start() does
    cap = SessionCapture(session, put=lambda _: None)
    out: list[Any] = []
    for words in ("first part", "second part"):
        ev = UserInputTranscribedEvent(transcript=words, is_final=True, language=LanguageCode("en"))
        out += cap.translate(("user_input_transcribed", ev, 1.0))
    msg = lk_llm.ChatMessage(role="user", content=["first part second part"])
    out += cap.translate(("conversation_item_added", ConversationItemAddedEvent(item=msg), 2.0))
    other = lk_llm.ChatMessage(role="user", content=["typed later"])
    out += cap.translate(("conversation_item_added", ConversationItemAddedEvent(item=other), 3.0))
    assert [u.text for u in _users(out)] == ["first part", "second part", "typed later"]
    assert _users(cap.reconcile()) == []


class _Specialist(Agent):
    def __init__(self, model: Any) -> None:
        super().__init__(instructions="You are the billing specialist.", llm=model)


class _Frontdesk(Agent):
    def __init__(self, specialist: Agent) -> None:
        super().__init__(instructions="You route callers.")
        self._specialist = specialist

    @function_tool
    async def transfer_to_billing(self, context: RunContext) -> Agent:
        """Hand the caller to the billing specialist."""
        return self._specialist


async def test_handoff_to_an_agent_with_its_own_realtime_model_is_checked_too(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """session.llm is a text LLM; the agent handed off to brings a realtime model with input
    transcription off. The recorder checks the new agent's llm after the handoff, turns
    transcription on, and the specialist's spoken turn is recorded."""
    rt_model = OpenAILikeRealtime(input_audio_transcription=None, replies=["Billing here.", "Ok."])
    llm = ScriptedLLM(
        [Reply(tool_calls=[("transfer_to_billing", "{}")]), Reply(text="Moving you.")]
    )
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=llm, vad=None)
        said = _assistant_counter(session)
        rec = recorder.attach(session, tenant=tenant)
        await session.start(_Frontdesk(_Specialist(rt_model)))
        await session.run(user_input="I have a billing question")
        await _until(lambda: bool(rt_model.sessions), 5, "the specialist's realtime session")
        # the writer checks the new agent as it translates the handoff; give it a beat
        await recorder.flush()
        await _until(lambda: bool(rt_model.updates), 5, "transcription switched on")
        before = len(said)
        rt_model.sessions[-1].user_turn(f"my invoice {CANARY} is wrong")
        await _until(lambda: len(said) > before, 5, "the specialist's reply")
        await session.aclose()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    handoffs = [(x.old_agent_id, x.new_agent_id) for x in got if isinstance(x, r.Handoff)]
    assert ("_frontdesk", "_specialist") in handoffs, handoffs
    (enabled,) = [x for x in got if isinstance(x, r.TranscriptionEnabled)]
    assert enabled.model.provider == "openai-like"
    assert f"my invoice {CANARY} is wrong" in [u.text for u in _users(got)]
    assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, CANARY)
