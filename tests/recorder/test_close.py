"""The end of a call: one `closed` record per session, its last, with LiveKit's close reason,
after everything the events delivered; history reconciliation only adds what no event did."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from livekit.agents import Agent, AgentSession, RunContext, function_tool
from livekit.agents import llm as lk_llm
from livekit.agents.voice.events import ConversationItemAddedEvent

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.livekit import SessionCapture
from auditagent.livekit import translate as translate_mod
from auditagent.reading import decrypt, transcript
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.fakes.llm import Reply, ScriptedLLM
from tests.support.helpers import by_kind, read_records


class BankAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a bank agent.")

    @function_tool
    async def close_account(self, context: RunContext, account: str) -> str:
        """Close an account."""
        raise RuntimeError(f"ledger locked for {account} quetzalmarmot")


def _script() -> ScriptedLLM:
    return ScriptedLLM(
        [
            Reply(text="Hello, how can I help?"),
            Reply(tool_calls=[("close_account", '{"account": "B-2"}')]),
            Reply(text="Sorry, that failed."),
        ]
    )


def _row(settings: Settings, session_id: uuid.UUID) -> tuple[Any, ...]:
    with psycopg.connect(db.libpq_url(settings.database_url or "")) as conn:
        row = conn.execute(
            "SELECT status, close_reason, event_count FROM sessions WHERE id = %s", (session_id,)
        ).fetchone()
    assert row is not None
    return tuple(row)


def _one_closed_last(got: list[r.Record]) -> r.Closed:
    closed = by_kind(got, "closed")
    assert len(closed) == 1, [x.kind for x in got]
    assert got[-1] is closed[0], [x.kind for x in got]
    assert isinstance(closed[0], r.Closed)
    return closed[0]


def _entries(got: list[r.Record]) -> list[transcript.TranscriptEntry]:
    opened = [
        decrypt.OpenedRecord(seq=i, at=x.at, kind=x.kind, record=x) for i, x in enumerate(got)
    ]
    return transcript.transcript_entries(opened)


async def test_readme_close_pattern_keeps_one_closed_record_last_with_livekit_reason(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """`await session.aclose()` then at once `await recorder.aclose()`, as the README shows."""
    recorder = await AuditRecorder(settings, key_provider=keyring).start()
    session: AgentSession[None] = AgentSession(llm=_script(), vad=None)
    rec = recorder.attach(session, tenant=tenant)
    await session.start(BankAgent())
    await session.run(user_input="hi")
    await session.run(user_input="close B-2")
    await session.aclose()
    await recorder.aclose()

    got = read_records(settings.database_url or "", rec.session_id, keyring)
    closed = _one_closed_last(got)
    assert closed.reason == "user_initiated"
    assert _row(settings, rec.session_id)[:2] == ("closed", "user_initiated")
    (result,) = by_kind(got, "tool_result")
    assert isinstance(result, r.ToolResult) and result.is_error
    # the raw exception text, not only the generic text the model was told
    assert "quetzalmarmot" in (result.exception or "")
    assert result.provenance == "live"
    # every turn delivered by an event is recorded once, live; history adds only the rest
    users = by_kind(got, "user_utterance")
    agents = by_kind(got, "agent_utterance")
    assert [u.text for u in users] == ["hi", "close B-2"]  # type: ignore[attr-defined]
    assert [a.text for a in agents] == ["Hello, how can I help?", "Sorry, that failed."]  # type: ignore[attr-defined]
    assert all(x.provenance == "live" for x in [*users, *agents])
    reconciled = {x.kind for x in got if x.provenance == "reconciled"}
    assert reconciled <= {"agent_config_updated"}, reconciled
    entries = _entries(got)
    assert [(e.at, e.seq) for e in entries] == sorted((e.at, e.seq) for e in entries)
    assert entries[-1].kind == "closed"
    kinds = [e.kind for e in entries]
    # reconciled at close, but it happened at the start: listed where it happened
    assert kinds.index("agent_config_updated") < kinds.index("user")


async def test_job_shutdown_records_livekit_reason_not_recorder_closed(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """LiveKit runs the job's shutdown callbacks concurrently (ipc/job_proc_lazy_main.py,
    `_shutdown_job`): the recorder's, registered first by record_session, and the session's
    own close with reason job_shutdown, registered by session.start."""
    from livekit.agents.testing import fake_job_context

    from auditagent import record_session

    with fake_job_context(job_id="job-close") as ctx:
        session: AgentSession[None] = AgentSession(llm=_script(), vad=None)
        rec = await record_session(ctx, session, tenant=tenant, settings=settings)
        await session.start(BankAgent())
        await session.run(user_input="hi")
        await session.run(user_input="close B-2")
        callbacks = list(ctx._shutdown_callbacks)
        assert len(callbacks) == 2
        await asyncio.gather(*(asyncio.create_task(cb("job shutdown")) for cb in callbacks))

    got = read_records(settings.database_url or "", rec.session_id, keyring)
    assert _one_closed_last(got).reason == "job_shutdown"
    assert _row(settings, rec.session_id)[:2] == ("closed", "job_shutdown")
    (result,) = by_kind(got, "tool_result")
    assert "quetzalmarmot" in (result.exception or "")  # type: ignore[attr-defined]


async def test_recorder_waits_for_a_close_livekit_has_begun(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """`session.shutdown()` schedules LiveKit's close; closing the recorder right after still
    records LiveKit's close, once."""
    recorder = await AuditRecorder(settings, key_provider=keyring).start()
    session: AgentSession[None] = AgentSession(llm=_script(), vad=None)
    rec = recorder.attach(session, tenant=tenant)
    await session.start(BankAgent())
    await session.run(user_input="hi")
    session.shutdown(drain=False)
    await recorder.aclose()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    assert _one_closed_last(got).reason == "user_initiated"


async def test_recorder_closing_a_running_session_closes_it_once(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    recorder = await AuditRecorder(settings, key_provider=keyring).start()
    session: AgentSession[None] = AgentSession(llm=_script(), vad=None)
    rec = recorder.attach(session, tenant=tenant)
    await session.start(BankAgent())
    await session.run(user_input="hi")
    await recorder.aclose()
    await session.aclose()  # after the recorder: nothing more is recorded
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    assert _one_closed_last(got).reason == "recorder_closed"
    assert [u.text for u in by_kind(got, "user_utterance")] == ["hi"]  # type: ignore[attr-defined]


async def test_a_second_close_adds_nothing(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    async with AuditRecorder(settings, key_provider=keyring) as recorder:
        rec = recorder.open_session(tenant=tenant)
        rec.close(reason="participant_disconnected")
        rec.close(reason="again")
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    assert _one_closed_last(got).reason == "participant_disconnected"


async def test_item_is_not_marked_seen_before_its_record_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A live translation that fails after the item was marked as seen would lose it for good:
    reconcile() skips seen items. Built first, marked after, reconcile picks it up."""
    session: AgentSession[None] = AgentSession(vad=None)
    cap = SessionCapture(session, put=lambda _: None, policy="off")
    msg = lk_llm.ChatMessage(id="a-1", role="assistant", content=["the last words"])
    session.history.items.append(msg)

    real = translate_mod.AgentUtterance
    calls = {"n": 0}

    def failing_once(**kw: Any) -> r.AgentUtterance:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("translation failed")
        return real(**kw)

    monkeypatch.setattr(translate_mod, "AgentUtterance", failing_once)
    live = cap.translate(
        ("conversation_item_added", (ConversationItemAddedEvent(item=msg), None, None), 1.0)
    )
    assert [x.kind for x in live] == ["notice"]  # untranslatable_event, type name only
    late = [x for x in cap.reconcile() if isinstance(x, r.AgentUtterance)]
    assert [(x.text, x.provenance) for x in late] == [("the last words", "reconciled")]
    assert cap.reconcile() == []  # and only once


async def test_attach_records_when_livekit_lacks_an_attribute_the_recorder_reads(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """The private LiveKit attributes the recorder reads (auditagent/livekit/_compat.py) are checked
    at attach; one a LiveKit upgrade removed is named in the record, not silently missed."""
    async with AuditRecorder(settings, key_provider=keyring) as recorder:
        intact: AgentSession[None] = AgentSession(llm=_script(), vad=None)
        ok = recorder.attach(intact, tenant=tenant)
        changed: AgentSession[None] = AgentSession(llm=_script(), vad=None)
        del changed._closing_task  # as if a LiveKit release had renamed it
        degraded = recorder.attach(changed, tenant=tenant)
    good = read_records(settings.database_url or "", ok.session_id, keyring)
    assert not [x for x in good if isinstance(x, r.Notice)]
    notes = [
        x
        for x in read_records(settings.database_url or "", degraded.session_id, keyring)
        if isinstance(x, r.Notice) and x.code == "livekit_internals_missing"
    ]
    assert [n.details["missing"] for n in notes] == [["AgentSession._closing_task"]]
