"""AUDITAGENT_REQUIRE_RECORDING: refuse to attach when nothing can be written; end a call whose
records can be kept nowhere; the next recorder records that recording failed, with the times.

The database is cut off through a TCP proxy in front of the real server; the spool is made
unwritable by putting a regular file where its directory was (the tests run as root, for whom
permission bits do not stop a write)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from livekit.agents import Agent, AgentSession

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.recorder.guarantee import MARKER_DIR, RecordingUnavailable
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.fakes.llm import Reply, ScriptedLLM
from tests.support.helpers import assert_no_plaintext, by_kind, read_records
from tests.support.netproxy import TcpProxy

CANARY = "Canary-Osprey-2287"


async def _until(pred: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _break_spool(spool: Path) -> None:
    shutil.rmtree(spool, ignore_errors=True)
    spool.write_bytes(b"not a directory")


def _mend_spool(spool: Path) -> None:
    spool.unlink()
    spool.mkdir(mode=0o700)


@pytest.fixture
async def proxied(database_url: str, data_dir: Path) -> tuple[Settings, TcpProxy]:
    target = psycopg.conninfo.conninfo_to_dict(db.libpq_url(database_url))
    proxy = TcpProxy(str(target.get("host", "127.0.0.1")), int(target.get("port", 5432)))
    await proxy.start()
    url = f"postgresql://{target.get('user', 'postgres')}@127.0.0.1:{proxy.port}/{target['dbname']}"
    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        flush_interval=0.05,
        db_timeout=0.5,
        require_recording=True,
        recording_failed_line="We cannot record this call, goodbye.",
    )
    return settings, proxy


async def test_attach_refuses_when_neither_database_nor_spool_can_be_written(
    proxied: tuple[Settings, TcpProxy], tenant: str
) -> None:
    settings, proxy = proxied
    LocalKeyring.init(settings.resolved_keyring_path)
    await proxy.stop()
    recorder = await AuditRecorder(settings).start()  # starts: records would spool
    try:
        _break_spool(settings.resolved_spool_dir)
        session: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
        with pytest.raises(RecordingUnavailable) as err:
            recorder.attach(session, tenant=tenant)
        message = str(err.value)
        assert "\n" not in message
        assert "neither the database nor the spool can be written" in message
        assert "make AUDITAGENT_SPOOL_DIR writable" in message
        _mend_spool(settings.resolved_spool_dir)
        recorder.attach(session, tenant=tenant)  # the spool alone is enough
    finally:
        await recorder.aclose()


async def test_a_call_that_cannot_be_recorded_is_ended_and_the_failure_recorded_later(
    proxied: tuple[Settings, TcpProxy], database_url: str, tenant: str
) -> None:
    settings, proxy = proxied
    kr = LocalKeyring.init(settings.resolved_keyring_path)
    llm = ScriptedLLM([Reply(text="Hello."), Reply(text=f"Noted {CANARY}.")])
    recorder = await AuditRecorder(settings).start()
    closed: list[str] = []
    try:
        session: AgentSession[None] = AgentSession(llm=llm, vad=None)
        session.on("close", lambda ev: closed.append(str(ev.reason)))
        rec = recorder.attach(session, tenant=tenant)
        await session.start(Agent(instructions="You are a broker."))
        await session.run(user_input="good morning")
        await recorder.flush()
        t_cut = time.time()
        await proxy.stop()
        _break_spool(settings.resolved_spool_dir)
        await session.run(user_input=f"buy 100 shares {CANARY}")
        await _until(lambda: bool(closed), "the session to be ended")
        assert (rec.recording_failed_since or 0) >= t_cut
        # the failure is noted outside the spool, without any content
        (marker,) = (settings.data_dir / MARKER_DIR).glob("*.json")
        assert CANARY not in marker.read_text()
        assert json.loads(marker.read_text())["session_id"] == str(rec.session_id)
    finally:
        await recorder.aclose()
    # the database and the spool are back; the next recorder records the failure
    await proxy.start()
    _mend_spool(settings.resolved_spool_dir)
    async with AuditRecorder(settings) as later:
        await later.flush()
    assert not list((settings.data_dir / MARKER_DIR).glob("*"))
    with psycopg.connect(db.libpq_url(database_url)) as conn:
        (failed_sid,) = conn.execute(
            "SELECT id FROM sessions WHERE tenant = %s AND labels->>'recording_failed_for' = %s",
            (tenant, str(rec.session_id)),
        ).fetchone() or (None,)
    assert failed_sid is not None
    got = read_records(database_url, failed_sid, kr)
    (failed,) = by_kind(got, "recording_failed")
    assert isinstance(failed, r.RecordingFailed)
    assert failed.failed_from.timestamp() >= t_cut
    assert failed.failed_until is not None and failed.failed_until >= failed.failed_from
    assert failed.ended_session and failed.records_lost > 0
    assert str(rec.session_id) in failed.reason
    # what was recorded before the failure is there; what was said after it is nowhere
    first = read_records(database_url, rec.session_id, kr)
    assert [u.text for u in by_kind(first, "user_utterance")] == ["good morning"]  # type: ignore[attr-defined]
    assert_no_plaintext(database_url, settings.resolved_spool_dir, CANARY)
