"""A real voice pipeline — audio in, audio out, barge-in — recorded into the real database.

Scripted STT/VAD/TTS/LLM stand in for the providers; everything between them is LiveKit's own
AgentSession: VAD turn detection, endpointing, the tool loop, TTS playout against a real-time
clock, and interruption by the user's voice. Run twice: with a TranscriptSynchronizer in the
output chain (LiveKit then stores the truncated, heard text) and without one (LiveKit stores the
whole generated text, so the recorder must say the heard text is unknown).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from livekit.agents import Agent, AgentSession, RunContext, function_tool
from livekit.agents import llm as lk_llm
from livekit.agents.voice.events import ConversationItemAddedEvent
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from tests.support.fakes.io import ClockedAudioOutput, CollectingTextOutput, ScriptedAudioInput
from tests.support.fakes.llm import Reply, ScriptedLLM
from tests.support.fakes.stt import ScriptedSTT
from tests.support.fakes.tts import ScriptedTTS
from tests.support.fakes.vad import EnergyVAD
from tests.support.helpers import assert_no_plaintext, read_records

CANARY = "Canary-Heron-5521"

USER_LINES = [
    f"hi, this is {CANARY}, what is the balance of A-1?",
    "tell me about your savings products",
    "stop, that is enough",
]
BALANCE_REPLY = f"Your balance is 42 dollars, {CANARY}."
LONG_REPLY = (
    "We offer three savings products. The first is an easy access account with a variable rate "
    "and no notice period. The second is a fixed term bond that locks your money away for one "
    "year at a higher rate. The third is an individual savings account with a yearly allowance "
    "and tax free interest for every customer who opens one before the end of the year."
)
LAST_REPLY = "Okay, stopping."


class BankAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a bank agent.")

    @function_tool
    async def get_balance(self, context: RunContext, account: str) -> str:
        """Look up an account balance."""
        return f"balance of {account} is 42"


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _call(settings: Settings, tenant: str, *, synchronized: bool) -> uuid.UUID:
    llm = ScriptedLLM(
        [
            Reply(tool_calls=[("get_balance", '{"account": "A-1"}')]),
            Reply(text=BALANCE_REPLY),
            Reply(text=LONG_REPLY),
            Reply(text=LAST_REPLY),
        ]
    )
    session: AgentSession[None] = AgentSession(
        stt=ScriptedSTT(list(USER_LINES)),
        vad=EnergyVAD(),
        llm=llm,
        tts=ScriptedTTS(seconds_per_word=0.1),
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": 0.15, "max_delay": 1.0},
            "interruption": {
                "mode": "vad",
                "min_duration": 0.25,
                "resume_false_interruption": False,
                "false_interruption_timeout": None,
            },
            # a discarded preemptive reply would consume a scripted LLM reply
            "preemptive_generation": {"enabled": False},
        },
        user_away_timeout=None,
        aec_warmup_duration=None,
    )
    mic = ScriptedAudioInput()
    speaker = ClockedAudioOutput()
    transcript = CollectingTextOutput()
    sync: TranscriptSynchronizer | None = None
    session.input.audio = mic
    if synchronized:
        sync = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=transcript)
        session.output.audio = sync.audio_output
        session.output.transcription = sync.text_output
    else:
        session.output.audio = speaker
        session.output.transcription = transcript

    said: list[lk_llm.ChatMessage] = []

    def on_item(ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, lk_llm.ChatMessage) and ev.item.role == "assistant":
            said.append(ev.item)

    session.on("conversation_item_added", on_item)

    async with AuditRecorder(settings) as recorder:
        rec = recorder.attach(session, tenant=tenant, participant="+15550001111")
        await session.start(BankAgent())
        try:
            # turn 1: a question answered through a tool
            await mic.speak(0.4)
            await _until(lambda: len(said) >= 1, 8, "the balance reply")
            # turn 2: a long reply the user talks over
            await mic.speak(0.4)
            await _until(lambda: session.agent_state == "speaking", 8, "the long reply")
            # the user listens for a while before talking over it: pacing, not a wait
            await asyncio.sleep(0.8)
            await mic.speak(0.5)
            await _until(lambda: len(said) >= 3, 8, "the reply after the barge-in")
            await _until(lambda: session.agent_state == "listening", 8, "the agent to finish")
        finally:
            mic.close()
            await session.aclose()
            if sync is not None:
                await sync.aclose()
        await recorder.flush()
    assert [m.interrupted for m in said] == [False, True, False]
    return rec.session_id


def _check_common(got: list[Any], settings: Settings) -> r.AgentUtterance:
    opened = got[0]
    assert isinstance(opened, r.Opened)
    assert opened.architecture == "pipeline"
    assert opened.stt == r.ModelInfo(model="scripted-stt", provider="fake")
    assert opened.llm == r.ModelInfo(model="scripted-llm", provider="fake")
    assert opened.tts == r.ModelInfo(model="scripted-tts", provider="fake")
    assert opened.realtime is None
    assert isinstance(got[-1], r.Closed)

    users = [u.text for u in got if isinstance(u, r.UserUtterance)]
    assert users == USER_LINES
    assert all(u.final and u.source == "stt" for u in got if isinstance(u, r.UserUtterance))
    assert all(u.language == "en" for u in got if isinstance(u, r.UserUtterance))

    agents = [a for a in got if isinstance(a, r.AgentUtterance)]
    assert [a.interrupted for a in agents] == [False, True, False]
    assert agents[0].text == BALANCE_REPLY and agents[0].heard_text_known
    assert agents[2].text == LAST_REPLY and agents[2].heard_text_known

    (call,) = [c for c in got if isinstance(c, r.ToolCall)]
    assert call.name == "get_balance" and call.arguments == '{"account": "A-1"}'
    (result,) = [t for t in got if isinstance(t, r.ToolResult)]
    assert result.call_id == call.call_id and not result.is_error
    assert result.model_told is not None and "42" in result.model_told

    timings = [t for t in got if isinstance(t, r.TurnTiming)]
    for field in ("transcription_delay", "end_of_utterance_delay", "llm_ttft", "tts_ttfb"):
        assert any(getattr(t, field) is not None for t in timings), field
    user_timing = [t for t in timings if t.source == "chat_message" and t.role == "user"]
    assert user_timing and user_timing[0].end_of_utterance_delay is not None

    assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, CANARY)
    return agents[1]


async def test_barge_in_with_synchronizer_stores_heard_prefix(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    t0 = time.monotonic()
    sid = await _call(settings, tenant, synchronized=True)
    got = read_records(settings.database_url or "", sid, keyring)
    cut = _check_common(got, settings)
    assert cut.heard_text_known
    assert cut.text and cut.text != LONG_REPLY
    assert LONG_REPLY.startswith(cut.text.rstrip()), cut.text
    # the recorder's pass-through tap kept what the LLM generated before the cut
    assert cut.generated_text == LONG_REPLY
    assert time.monotonic() - t0 < 60


async def test_barge_in_without_synchronizer_heard_text_unknown(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    t0 = time.monotonic()
    sid = await _call(settings, tenant, synchronized=False)
    got = read_records(settings.database_url or "", sid, keyring)
    cut = _check_common(got, settings)
    assert cut.heard_text_known is False
    assert cut.text == LONG_REPLY
    assert time.monotonic() - t0 < 20
