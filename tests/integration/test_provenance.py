"""What each record says about itself: live or reconciled, spoken or typed, which agents a
handoff joins; what a transcript entry carries; latency counted once per measurement."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from livekit.agents import Agent, AgentSession, AgentTask, RunContext, function_tool
from sqlalchemy import Engine

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.reading import decrypt, transcript
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from tests.support.api import auth, make_token
from tests.support.fakes.llm import Reply, ScriptedLLM
from tests.support.helpers import read_records


class ConsentTask(AgentTask[bool]):
    def __init__(self) -> None:
        super().__init__(instructions="Ask for consent.")

    async def on_enter(self) -> None:
        self.complete(True)


class FrontDesk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are the front desk.")

    @function_tool
    async def get_consent(self, context: RunContext) -> str:
        """Ask the caller for consent."""
        ok = await ConsentTask()
        return f"consent given: {ok}"


async def _until(pred: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_text_turns_say_typed_handoffs_name_both_agents_and_provenance_is_set(
    settings: Settings,
    keyring: LocalKeyring,
    tenant: str,
) -> None:
    llm = ScriptedLLM([Reply(tool_calls=[("get_consent", "{}")]), Reply(text="Thank you.")])
    recorder = await AuditRecorder(settings, key_provider=keyring).start()
    session: AgentSession[None] = AgentSession(llm=llm, vad=None)
    rec = recorder.attach(session, tenant=tenant)
    await session.start(FrontDesk())
    await session.run(user_input="I agree to be recorded")
    # the task finishes into the front desk again after run() returns (livekit-notes)
    await _until(lambda: type(session.current_agent) is FrontDesk, "the front desk again")
    await session.aclose()
    await recorder.aclose()

    got = read_records(settings.database_url or "", rec.session_id, keyring)
    (user,) = [x for x in got if isinstance(x, r.UserUtterance)]
    # session.run(user_input=...) is typed text, not speech-to-text
    assert (user.input_mode, user.source) == ("text", "text")
    handoffs = [(x.old_agent_name, x.new_agent_name) for x in got if isinstance(x, r.Handoff)]
    assert handoffs == [
        (None, "front_desk"),
        ("front_desk", "consent_task"),
        ("consent_task", "front_desk"),
    ], handoffs
    # every record kind says how it was obtained
    assert {x.provenance for x in got} == {"live", "reconciled"}
    assert {x.kind for x in got if x.provenance == "reconciled"} == {"agent_config_updated"}
    opened = [
        decrypt.OpenedRecord(seq=i, at=x.at, kind=x.kind, record=x) for i, x in enumerate(got)
    ]
    texts = [e.text for e in transcript.transcript_entries(opened) if e.kind == "handoff"]
    assert texts == [
        "(session start) -> front_desk",
        "front_desk -> consent_task",
        "consent_task -> front_desk",
    ]


def test_records_written_before_provenance_still_decode() -> None:
    old = b'{"at":"2026-01-01T00:00:00Z","kind":"user_utterance","text":"hi","source":"history"}'
    u = r.decode(old)
    assert isinstance(u, r.UserUtterance)
    assert (u.provenance, u.input_mode) == ("reconciled", None)
    closed = r.decode(b'{"at":"2026-01-01T00:00:00Z","kind":"closed","reason":"x"}')
    assert closed.provenance == "live"


def _record(
    settings: Settings,
    kr: LocalKeyring,
    tenant: str,
    build: Callable[[datetime], list[r.Record]],
) -> uuid.UUID:
    async def go() -> uuid.UUID:
        async with AuditRecorder(settings, key_provider=kr) as recorder:
            t0 = datetime.now(timezone.utc)
            rec = recorder.open_session(
                tenant=tenant,
                opened=r.Opened(at=t0, tenant=tenant, architecture="realtime"),
            )
            for x in build(t0):
                rec.add(x)
            await recorder.flush()
            return rec.session_id

    return asyncio.run(go())


def test_transcript_is_in_time_order_and_entries_carry_only_their_fields(
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    client: TestClient,
    tenant: str,
) -> None:
    def build(t0: datetime) -> list[r.Record]:
        def at(s: float) -> datetime:
            return t0 + timedelta(seconds=s)

        return [
            r.UserUtterance(at=at(1), text="hello", source="realtime", input_mode="speech"),
            # a realtime model's own figures arrive before the message of its turn
            r.TurnTiming(
                at=at(2),
                source="realtime_metrics",
                request_id="resp_1",
                llm_duration=0.9,
                not_reported={"realtime_ttft": "the provider reports no first-audio time"},
                tokens=r.TokenCounts(prompt=10, completion=5, total=15),
            ),
            r.AgentUtterance(at=at(3), text="hi there", item_id="a1"),
            r.TurnTiming(
                at=at(3),
                source="chat_message",
                role="assistant",
                item_id="a1",
                request_id="resp_1",
                e2e_latency=1.2,
            ),
            # found in history at close, but it happened at the start
            r.AgentConfigUpdated(at=at(0.5), instructions="be kind", provenance="reconciled"),
            r.Closed(at=at(4), reason="participant_disconnected"),
        ]

    sid = _record(settings, keyring, tenant, build)
    h = auth(make_token(engine, "auditor", tenant))
    entries = client.get(f"/v1/sessions/{sid}/transcript", headers=h).json()["entries"]
    assert [e["kind"] for e in entries] == [
        "opened",
        "agent_config_updated",
        "user",
        "agent",
        "closed",
    ]
    by = {e["kind"]: e for e in entries}
    assert by["agent_config_updated"]["provenance"] == "reconciled"
    assert set(by["user"]) == {
        "seq",
        "at",
        "kind",
        "provenance",
        "text",
        "input_mode",
        "interrupted",
        "started_at",
        "ended_at",
    }
    assert by["user"]["input_mode"] == "speech"
    assert set(by["closed"]) == {"seq", "at", "kind", "provenance", "text", "is_error"}
    # the model's figures, and why the missing one is missing: no nulls
    assert by["agent"]["timing"] == {
        "llm_duration": 0.9,
        "e2e_latency": 1.2,
        "tokens": {"prompt": 10, "completion": 5, "total": 15},
        "not_reported": {"realtime_ttft": "the provider reports no first-audio time"},
    }
    assert "generated_text" not in by["agent"] and "call_id" not in by["agent"]


def test_latency_counts_each_measurement_once(
    settings: Settings,
    keyring: LocalKeyring,
    engine: Engine,
    client: TestClient,
    tenant: str,
) -> None:
    """A pipeline turn's EOU and first-token figures arrive twice from LiveKit: in
    metrics_collected and in the turn's ChatMessage.metrics. Both are recorded; analytics
    counts the turn once."""

    def build(t0: datetime) -> list[r.Record]:
        return [
            r.TurnTiming(
                at=t0, source="eou_metrics", end_of_utterance_delay=0.4, transcription_delay=0.2
            ),
            r.TurnTiming(
                at=t0,
                source="chat_message",
                role="user",
                end_of_utterance_delay=0.41,
                transcription_delay=0.21,
            ),
            r.TurnTiming(at=t0, source="llm_metrics", llm_ttft=0.3, llm_duration=1.0),
            r.TurnTiming(at=t0, source="tts_metrics", tts_ttfb=0.15),
            r.TurnTiming(
                at=t0,
                source="chat_message",
                role="assistant",
                llm_ttft=0.31,
                tts_ttfb=0.16,
                e2e_latency=0.9,
            ),
            r.TurnTiming(at=t0, source="realtime_metrics", realtime_ttft=0.5),
        ]

    _record(settings, keyring, tenant, build)
    h = auth(make_token(engine, "auditor", tenant))
    res = client.get("/v1/analytics/latency", headers=h, params={"tenant": tenant})
    assert res.status_code == 200, res.text
    (group,) = res.json()["groups"]
    m = group["metrics"]
    counts = {k: v["count"] for k, v in m.items()}
    assert counts == {
        "transcription_delay": 1,
        "end_of_utterance_delay": 1,
        "llm_ttft": 1,
        "tts_ttfb": 1,
        "realtime_ttft": 1,
        "e2e_latency": 1,
    }
    assert m["end_of_utterance_delay"]["p50"] == pytest.approx(0.41)
    assert m["llm_ttft"]["p50"] == pytest.approx(0.31)
    # the two chat-message turns and the realtime figure; the metrics events added nothing new
    assert group["turns"] == 3
