"""The recording notice: said first, sealed with its hash and playout times, said again when
the caller spoke over it. A real audio pipeline (scripted STT/TTS/VAD, LiveKit's own session)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from livekit.agents import Agent, AgentSession
from sqlalchemy import Engine

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.reading.decrypt import OpenedRecord
from auditagent.reading.transcript import transcript_entries
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from tests.support.api import auth, make_token
from tests.support.fakes.io import ClockedAudioOutput, CollectingTextOutput, ScriptedAudioInput
from tests.support.fakes.llm import Reply, ScriptedLLM
from tests.support.fakes.stt import ScriptedSTT
from tests.support.fakes.tts import ScriptedTTS
from tests.support.fakes.vad import EnergyVAD
from tests.support.helpers import by_kind, read_records

NOTICE = "This call is recorded for quality and compliance purposes, thank you for holding."


async def _until(pred: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _session() -> tuple[AgentSession[None], ScriptedAudioInput]:
    session: AgentSession[None] = AgentSession(
        stt=ScriptedSTT(["hello is anyone there"]),
        vad=EnergyVAD(),
        llm=ScriptedLLM([Reply(text="Yes, I am here.")]),
        tts=ScriptedTTS(seconds_per_word=0.05),
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": 0.15, "max_delay": 1.0},
            "preemptive_generation": {"enabled": False},
        },
        user_away_timeout=None,
        aec_warmup_duration=None,
    )
    mic = ScriptedAudioInput()
    session.input.audio = mic
    session.output.audio = ClockedAudioOutput()
    session.output.transcription = CollectingTextOutput()
    return session, mic


async def _record(settings: Settings, *, talk_over: bool, tenant: str = "clinic") -> Any:
    session, mic = _session()
    async with AuditRecorder(settings) as recorder:
        rec = recorder.attach(session, tenant=tenant, notice=NOTICE)
        await session.start(Agent(instructions="You are a receptionist."))
        try:
            if talk_over:
                await _until(lambda: session.agent_state == "speaking", "the notice to play")
                await mic.speak(0.3)
            assert rec.notice_task is not None
            await asyncio.wait_for(asyncio.shield(rec.notice_task), 20)
        finally:
            mic.close()
            await session.aclose()
        await recorder.flush()
    return rec


async def test_the_notice_is_said_first_and_sealed_with_its_hash_and_times(
    settings: Settings, keyring: LocalKeyring
) -> None:
    rec = await _record(settings, talk_over=False)
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    (notice,) = by_kind(got, "recording_notice")
    assert isinstance(notice, r.RecordingNotice)
    assert notice.text_sha256 == hashlib.sha256(NOTICE.encode()).hexdigest()
    assert notice.completed and notice.attempt == 1 and not notice.spoken_over
    assert notice.started_at is not None and notice.ended_at is not None
    assert notice.ended_at > notice.started_at
    agents = [a.text for a in by_kind(got, "agent_utterance")]  # type: ignore[attr-defined]
    assert agents[0] == NOTICE
    opened = [OpenedRecord(seq=i, at=x.at, kind=x.kind, record=x) for i, x in enumerate(got)]
    entries = [e for e in transcript_entries(opened) if e.name == "recording_notice"]
    assert [e.text for e in entries] == ["recording notice said in full"]


async def test_a_notice_the_caller_spoke_over_is_said_again(
    settings: Settings, keyring: LocalKeyring
) -> None:
    rec = await _record(settings, talk_over=True)
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    notices = [n for n in by_kind(got, "recording_notice") if isinstance(n, r.RecordingNotice)]
    assert [(n.attempt, n.spoken_over, n.completed) for n in notices] == [
        (1, True, False),
        (2, False, True),
    ]
    agents = [a.text for a in by_kind(got, "agent_utterance")]  # type: ignore[attr-defined]
    assert agents.count(NOTICE) == 2


async def test_the_session_list_filters_sessions_without_a_completed_notice(
    settings: Settings,
    keyring: LocalKeyring,
    client: TestClient,
    engine: Engine,
    tenant: str,
) -> None:
    heard = await _record(settings, talk_over=False, tenant=tenant)
    async with AuditRecorder(settings) as recorder:
        plain = recorder.open_session(tenant=tenant)  # no notice asked for
        plain.close()
        await recorder.flush()
    token = make_token(engine, "auditor", tenant)

    def ids(query: str) -> dict[str, str | None]:
        resp = client.get(f"/v1/sessions?tenant={tenant}{query}", headers=auth(token))
        assert resp.status_code == 200, resp.text
        return {item["id"]: item["notice"] for item in resp.json()["items"]}

    assert ids("&notice=completed") == {str(heard.session_id): "completed"}
    assert ids("&notice=missing") == {str(plain.session_id): None}
    resp = client.get(f"/v1/sessions?tenant={tenant}&notice=maybe", headers=auth(token))
    assert resp.status_code == 422
