"""The recorder end to end against the real Postgres: real AgentSessions, decrypted content."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from livekit.agents import Agent, AgentSession, RunContext, function_tool

from auditagent import records as r
from auditagent.errors import TranscriptionDisabled
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from tests.support import ROOT
from tests.support.fakes.llm import Reply, ScriptedLLM
from tests.support.fakes.realtime import GeminiLikeRealtime
from tests.support.helpers import assert_no_plaintext, by_kind, read_records, text_values
from tests.support.netproxy import TcpProxy

CANARY = "Canary-Zebra-7741"  # must never appear in plaintext anywhere


class BankAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a bank agent.")

    @function_tool
    async def get_balance(self, context: RunContext, account: str) -> str:
        """Look up an account balance."""
        return f"balance of {account} is 42 {CANARY}"

    @function_tool
    async def close_account(self, context: RunContext, account: str) -> str:
        """Close an account."""
        raise RuntimeError(f"ledger locked for {account}")


async def test_open_session_round_trip(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    async with AuditRecorder(settings) as recorder:
        rec = recorder.open_session(
            tenant=tenant, participant=f"+1555{CANARY}", labels={"agent": "intake"}
        )
        now = datetime.now(timezone.utc)
        rec.add(r.UserUtterance(at=now, text=f"my id is {CANARY}", source="stt"))
        rec.add(r.ToolCall(at=now, call_id="c1", name="lookup", arguments=f'{{"q": "{CANARY}"}}'))
        rec.close(reason="participant_disconnected")
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    assert [x.kind for x in got] == ["opened", "user_utterance", "tool_call", "closed"]
    opened = got[0]
    assert isinstance(opened, r.Opened) and opened.participant == f"+1555{CANARY}"
    assert got[1].text == f"my id is {CANARY}"  # type: ignore[union-attr]
    with psycopg.connect(db.libpq_url(settings.database_url or "")) as conn:
        row = conn.execute(
            "SELECT status, event_count, tool_names, close_reason, agent_name, participant_index"
            " FROM sessions WHERE id = %s",
            (rec.session_id,),
        ).fetchone()
    assert row is not None
    status, count, tools, reason, agent, pidx = row
    assert (status, count, tools, reason, agent) == (
        "closed",
        4,
        ["lookup"],
        "participant_disconnected",
        "intake",
    )
    assert pidx == keyring.blind_index(tenant=tenant, value=f"+1555{CANARY}")
    assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, CANARY)


async def test_text_mode_session_with_tools(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    llm = ScriptedLLM(
        [
            Reply(text=f"Hello {CANARY}, how can I help?"),
            Reply(tool_calls=[("get_balance", '{"account": "A-1"}')]),
            Reply(text="Your balance is 42."),
            Reply(tool_calls=[("close_account", '{"account": "B-2"}')]),
            Reply(text="Sorry, that failed."),
        ]
    )
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=llm, vad=None)
        rec = recorder.attach(
            session, tenant=tenant, participant="+15551234567", labels={"agent": "bank"}
        )
        await session.start(BankAgent())
        await session.run(user_input=f"hi, I am {CANARY}")
        await session.run(user_input="what is my balance?")
        await session.run(user_input="close B-2")
        await session.aclose()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    assert got[0].kind == "opened" and got[-1].kind == "closed"
    assert [u.text for u in by_kind(got, "user_utterance")] == [  # type: ignore[attr-defined]
        f"hi, I am {CANARY}",
        "what is my balance?",
        "close B-2",
    ]
    agents = [a.text for a in by_kind(got, "agent_utterance")]  # type: ignore[attr-defined]
    assert agents == [
        f"Hello {CANARY}, how can I help?",
        "Your balance is 42.",
        "Sorry, that failed.",
    ]
    calls = {c.name: c for c in by_kind(got, "tool_call")}  # type: ignore[attr-defined]
    assert calls["get_balance"].arguments == '{"account": "A-1"}'  # type: ignore[attr-defined]
    results = {t.name: t for t in by_kind(got, "tool_result")}  # type: ignore[attr-defined]
    assert CANARY in (results["get_balance"].output or "")  # type: ignore[attr-defined]
    failed = results["close_account"]
    assert failed.is_error and "ledger locked for B-2" in (failed.exception or "")  # type: ignore[attr-defined]
    assert failed.model_told and "ledger locked" not in failed.model_told  # type: ignore[attr-defined]
    with psycopg.connect(db.libpq_url(settings.database_url or "")) as conn:
        tools = conn.execute(
            "SELECT tool_names FROM sessions WHERE id = %s", (rec.session_id,)
        ).fetchone()
    assert tools == (["close_account", "get_balance"],)
    assert_no_plaintext(
        settings.database_url or "", settings.resolved_spool_dir, CANARY, "+15551234567"
    )


async def test_hostile_payload_recorded_and_session_undisturbed(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    huge = ("A" * 1_000_000) + CANARY
    weird = "nul\x00byte lone\ud800surrogate"
    llm = ScriptedLLM(
        [
            Reply(tool_calls=[("get_balance", "{not json at all \x00")]),
            Reply(text=weird),
            Reply(text="still here"),
        ]
    )
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=llm, vad=None)
        rec = recorder.attach(session, tenant=tenant)
        await session.start(BankAgent())
        await session.run(user_input=huge + "\ud800")
        result = await session.run(user_input="and now?")
        result.expect.contains_message(role="assistant")
        await session.aclose()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    users = [u.text for u in by_kind(got, "user_utterance")]  # type: ignore[attr-defined]
    assert users == [huge + "\ud800", "and now?"]
    assert weird in [a.text for a in by_kind(got, "agent_utterance")]  # type: ignore[attr-defined]
    call = by_kind(got, "tool_call")[0]
    assert call.arguments == "{not json at all \x00"  # type: ignore[attr-defined]
    assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, CANARY)


async def test_gemini_like_refused_at_attach_writes_nothing(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=GeminiLikeRealtime(input_on=False), vad=None)
        with pytest.raises(TranscriptionDisabled) as err:
            recorder.attach(session, tenant=tenant)
        assert "transcription" in str(err.value) and "\n" not in str(err.value)
        await recorder.flush()
    with psycopg.connect(db.libpq_url(settings.database_url or "")) as conn:
        assert conn.execute(
            "SELECT count(*) FROM sessions WHERE tenant = %s", (tenant,)
        ).fetchone() == (0,)


async def test_database_outage_mid_session_spools_and_replays(
    database_url: str, data_dir: Path, tenant: str
) -> None:
    target = psycopg.conninfo.conninfo_to_dict(db.libpq_url(database_url))
    proxy = TcpProxy(str(target.get("host", "127.0.0.1")), int(target.get("port", 5432)))
    await proxy.start()
    url = f"postgresql://{target.get('user', 'postgres')}@127.0.0.1:{proxy.port}/{target['dbname']}"
    settings = Settings(database_url=url, data_dir=data_dir, flush_interval=0.05, db_timeout=1.0)
    kr = LocalKeyring.init(settings.resolved_keyring_path)
    llm = ScriptedLLM([Reply(text=f"reply {i} {CANARY}") for i in range(6)])
    recorder = await AuditRecorder(settings).start()
    try:
        session: AgentSession[None] = AgentSession(llm=llm, vad=None)
        rec = recorder.attach(session, tenant=tenant)
        await session.start(BankAgent())
        await session.run(user_input="turn 0")
        await recorder.flush()
        await proxy.stop()  # the database goes away mid-session
        for i in (1, 2, 3):
            t0 = asyncio.get_running_loop().time()
            await session.run(user_input=f"turn {i}")
            # The voice loop does not wait for the dead database.
            assert asyncio.get_running_loop().time() - t0 < 1.0
        await recorder.flush()
        spooled = list(settings.resolved_spool_dir.glob("*.spool"))
        assert spooled, "records should be in the spool while the database is down"
        assert_no_plaintext(database_url, settings.resolved_spool_dir, CANARY)
        await proxy.start()  # back
        await session.run(user_input="turn 4")
        await session.aclose()
        deadline = time.monotonic() + 10
        await recorder.flush()
        while list(settings.resolved_spool_dir.glob("*.spool")):
            assert time.monotonic() < deadline, "the spool was not replayed"
            await asyncio.sleep(0.05)
            await recorder.flush()
    finally:
        await recorder.aclose()
        await proxy.stop()
    got = read_records(database_url, rec.session_id, kr)
    users = [u.text for u in by_kind(got, "user_utterance")]  # type: ignore[attr-defined]
    assert users == [f"turn {i}" for i in range(5)]
    assert got[-1].kind == "closed"
    assert not list(settings.resolved_spool_dir.glob("*.spool"))
    assert_no_plaintext(database_url, settings.resolved_spool_dir, CANARY)


CRASHER = textwrap.dedent(
    """
    import asyncio, os, sys, uuid
    from datetime import datetime, timezone
    from auditagent import records as r
    from auditagent.recorder import AuditRecorder
    from auditagent.settings import Settings

    async def main():
        s = Settings(database_url="postgresql://postgres@127.0.0.1:1/nowhere",
                     data_dir=sys.argv[1], flush_interval=0.05, db_timeout=0.5)
        rec = await AuditRecorder(s).start()
        h = rec.open_session(tenant=sys.argv[2], session_id=uuid.UUID(sys.argv[3]))
        for i in range(50):
            h.add(r.UserUtterance(at=datetime.now(timezone.utc), text=f"line {i} {sys.argv[4]}",
                                  source="stt"))
        h.close(reason="crash-test")
        await rec.flush()
        os._exit(0)   # die without aclose: no cleanup, the spool is all that is left

    asyncio.run(main())
    """
)


async def test_restart_replays_spool_left_by_crashed_process(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    sid = uuid.uuid4()
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, str(settings.data_dir), tenant, str(sid), CANARY],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert list(settings.resolved_spool_dir.glob("*.spool"))
    assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, CANARY)
    async with AuditRecorder(settings) as recorder:
        await recorder.flush()
    got = read_records(settings.database_url or "", sid, keyring)
    assert [u.text for u in by_kind(got, "user_utterance")] == [  # type: ignore[attr-defined]
        f"line {i} {CANARY}" for i in range(50)
    ]
    assert got[-1].kind == "closed"
    assert not list(settings.resolved_spool_dir.glob("*.spool"))


async def test_queue_overflow_becomes_a_gap_record(
    database_url: str, data_dir: Path, keyring: Any, tenant: str
) -> None:
    settings = Settings(
        database_url=database_url, data_dir=data_dir, queue_size=100, flush_interval=5
    )
    kr = LocalKeyring.load(settings.resolved_keyring_path) if keyring else None
    async with AuditRecorder(settings) as recorder:
        h = recorder.open_session(tenant=tenant)
        now = datetime.now(timezone.utc)
        for i in range(150):  # no await: the writer cannot run, the queue overflows
            h.add(r.Notice(at=now, code="n", message=str(i)))
        await recorder.flush()
        h.close()
        await recorder.flush()
    assert kr is not None
    got = read_records(database_url, h.session_id, kr)
    gaps = by_kind(got, "gap")
    assert len(gaps) == 1 and gaps[0].count == 51  # type: ignore[attr-defined]
    assert "queue full" in gaps[0].reason  # type: ignore[attr-defined]
    assert len(by_kind(got, "notice")) == 99


async def test_aclose_twice_and_attach_before_start(
    settings: Settings, keyring: LocalKeyring
) -> None:
    recorder = AuditRecorder(settings)
    from auditagent.errors import AuditagentError

    with pytest.raises(AuditagentError, match="start"):
        recorder.open_session(tenant="x")
    await recorder.start()
    await recorder.aclose()
    await recorder.aclose()


async def test_processes_sharing_a_data_dir_never_replay_a_live_spool_or_insert_twice(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """Job processes share one data directory: a spool file held by a live writer is left
    alone, a released one is replayed once, and replaying the same frames again inserts
    nothing twice."""
    import shutil

    down = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        data_dir=settings.data_dir,
        flush_interval=0.05,
        db_timeout=0.5,
    )
    a = await AuditRecorder(down).start()
    h = a.open_session(tenant=tenant)
    for i in range(20):
        h.add(r.UserUtterance(at=datetime.now(timezone.utc), text=f"line {i}", source="stt"))
    h.close()
    await a.flush()
    (held,) = list(settings.resolved_spool_dir.glob("*.spool"))
    # another process starts while A still holds its spool: it must not take it
    async with AuditRecorder(settings) as b:
        await b.flush()
    assert held.exists()
    with psycopg.connect(db.libpq_url(settings.database_url or "")) as conn:
        assert conn.execute(
            "SELECT count(*) FROM events WHERE session_id = %s", (h.session_id,)
        ).fetchone() == (0,)
    await a.aclose()  # releases the file (the database is still unreachable for A)
    copy = held.with_name("copy.keep")
    shutil.copy(held, copy)
    async with AuditRecorder(settings) as c:
        await c.flush()
    assert not held.exists()
    got = read_records(settings.database_url or "", h.session_id, keyring)
    assert [u.text for u in by_kind(got, "user_utterance")] == [f"line {i}" for i in range(20)]
    # the same frames again (a crash between commit and unlink): nothing is inserted twice
    copy.rename(settings.resolved_spool_dir / "00000000000000000001-1-replay.spool")
    async with AuditRecorder(settings) as d:
        await d.flush()
    assert not list(settings.resolved_spool_dir.glob("*.spool"))
    again = read_records(settings.database_url or "", h.session_id, keyring)
    assert [x.kind for x in again] == [x.kind for x in got]


async def test_record_session_one_liner_flushes_at_job_shutdown(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    from livekit.agents.testing import fake_job_context

    from auditagent import record_session

    with fake_job_context(job_id="job-4711") as ctx:
        session: AgentSession[None] = AgentSession(llm=ScriptedLLM([Reply(text="Hi.")]), vad=None)
        rec = await record_session(
            ctx, session, tenant=tenant, participant="+15550009999", settings=settings
        )
        await session.start(BankAgent())
        await session.run(user_input="hello")
        # what LiveKit does when the job shuts down: run the registered callbacks
        assert ctx._shutdown_callbacks
        for callback in ctx._shutdown_callbacks:
            await callback("job_shutdown")
        await session.aclose()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    opened = got[0]
    assert isinstance(opened, r.Opened)
    assert opened.job_id == "job-4711" and opened.room == "fake-room"
    assert opened.participant == "+15550009999"
    assert [u.text for u in by_kind(got, "user_utterance")] == ["hello"]  # type: ignore[attr-defined]
    assert [a.text for a in by_kind(got, "agent_utterance")] == ["Hi."]  # type: ignore[attr-defined]
    assert got[-1].kind == "closed"


async def test_pause_keeps_card_details_out_of_the_record_and_says_so(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """PCI DSS 3.3.1: a CVV must not be kept even encrypted. While paused nothing the caller or
    the agent says is recorded — not live, not from history at close — and the record shows
    the pause, its reason and how much was left out."""
    # the canary is a word no latency float or id can contain; it is looked for in text fields
    card = "card 4111 1111 1111 1111 cvv zanzibarquokka"
    llm = ScriptedLLM([Reply(text="Hello."), Reply(text=f"Got {card}."), Reply(text="Paid.")])
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=llm, vad=None)
        rec = recorder.attach(session, tenant=tenant)
        await session.start(BankAgent())
        await session.run(user_input="I want to pay")
        rec.pause(reason="card details")
        assert rec.is_paused
        await session.run(user_input=card)
        rec.resume()
        await session.run(user_input="thanks")
        await session.aclose()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    texts = [v for x in got for v in text_values(x)]
    assert not [t for t in texts if "zanzibarquokka" in t or "4111 1111" in t]
    assert [u.text for u in by_kind(got, "user_utterance")] == ["I want to pay", "thanks"]  # type: ignore[attr-defined]
    notices = {n.code: n for n in by_kind(got, "notice")}  # type: ignore[attr-defined]
    assert notices["recording_paused"].message == "card details"  # type: ignore[attr-defined]
    resumed = notices["recording_resumed"]
    assert resumed.details["events_not_recorded"] > 0  # type: ignore[attr-defined]
    kinds = [x.kind for x in got]
    assert kinds.index("notice") < kinds.index("closed")
    assert got[-1].kind == "closed"


async def test_closing_while_paused_records_what_was_left_out(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
        rec = recorder.attach(session, tenant=tenant)
        await session.start(BankAgent())
        rec.pause(reason="payment")
        await session.run(user_input="my cvv is 123")
        await session.aclose()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    assert "my cvv" not in "\n".join(r.encode(x).decode() for x in got)
    codes = [n.code for n in by_kind(got, "notice")]  # type: ignore[attr-defined]
    assert codes.index("recording_resumed") > codes.index("recording_paused")
    (resumed,) = [n for n in by_kind(got, "notice") if n.code == "recording_resumed"]  # type: ignore[attr-defined]
    assert resumed.details["events_not_recorded"] > 0  # type: ignore[attr-defined]
    assert got[-1].kind == "closed"
