"""A real AgentSession with audio in and out records its call audio: both channels, the length
of the call, sealed; a pause leaves silence; nothing of it in plaintext in the database or the
spool."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from livekit.agents import Agent, AgentSession

from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from tests.audio.audio_support import (
    CANARY,
    decode,
    peak_rms,
    read_audio,
    rms,
    scripted_session,
    take_a_turn,
)
from tests.support.fakes.io import ScriptedAudioInput
from tests.support.helpers import assert_no_plaintext, read_records
from tests.support.netproxy import TcpProxy


@pytest.fixture
def keyring(settings: Settings) -> LocalKeyring:
    return LocalKeyring.init(settings.resolved_keyring_path)


# the scripted mic's voice: 20 ms of its tone as raw PCM
PCM = ScriptedAudioInput()._tone[:320]


def _no_audio_in_plaintext(url: str, spool: Path) -> None:
    """No Ogg page, Opus header or raw PCM of the call in the database or the spool."""
    with psycopg.connect(db.libpq_url(url)) as conn:
        for (t,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall():
            for row in conn.execute(f'SELECT * FROM "{t}"'):
                for v in row:
                    if isinstance(v, (bytes, memoryview)):
                        data = bytes(v)
                        assert b"OggS" not in data and b"OpusHead" not in data, t
                        assert PCM not in data, t
    for f in spool.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert b"OggS" not in data and PCM not in data, f


async def test_call_audio_is_recorded_on_both_channels(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    session, mic, _ = scripted_session()
    async with AuditRecorder(settings) as recorder:
        rec = recorder.attach(session, tenant=tenant)
        assert rec.audio is not None and rec.audio.active
        started = time.time()
        await session.start(Agent(instructions="help"))
        await take_a_turn(session, mic)
        await asyncio.sleep(0.3)
        mic.close()
        await session.aclose()
        length = time.time() - started
        await recorder.flush()
    data, _recs, check = read_audio(settings.database_url or "", rec.session_id, keyring)
    assert check.ok and check.complete, check  # type: ignore[attr-defined]
    pcm, rate = decode(data)
    assert pcm.shape[0] == 2
    assert abs(pcm.shape[1] / rate - length) < 1.5, (pcm.shape[1] / rate, length)
    assert peak_rms(pcm[0], rate) > 0.01, "the caller's channel is silent"
    assert peak_rms(pcm[1], rate) > 0.01, "the agent's channel is silent"
    # the caller and the agent take turns: where one is loud the other is mostly not
    loud0 = np.abs(pcm[0]) > 0.05
    loud1 = np.abs(pcm[1]) > 0.05
    assert (loud0 & loud1).sum() < 0.2 * min(loud0.sum(), loud1.sum())
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    kinds = [r.kind for r in got]
    assert kinds[-1] == "closed"
    assert kinds.index("audio_chunk") > 0 and "audio_chunk" not in kinds[kinds.index("closed") :]
    _no_audio_in_plaintext(settings.database_url or "", settings.resolved_spool_dir)
    assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, CANARY)


async def test_io_set_after_attach_is_tapped_once_the_session_runs(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """As with RoomIO, which sets the session's audio IO inside ``session.start``."""
    session, mic, speaker = scripted_session()
    session.input.audio = None
    session.output.audio = None
    async with AuditRecorder(settings) as recorder:
        rec = recorder.attach(session, tenant=tenant)
        assert rec.audio is not None and not rec.audio.active
        session.input.audio = mic
        session.output.audio = speaker
        await session.start(Agent(instructions="help"))
        await take_a_turn(session, mic)
        assert rec.audio.active
        mic.close()
        await session.aclose()
        await recorder.flush()
    data, _, check = read_audio(settings.database_url or "", rec.session_id, keyring)
    assert check.ok and check.complete, check  # type: ignore[attr-defined]
    pcm, rate = decode(data)
    assert peak_rms(pcm[0], rate) > 0.01 and peak_rms(pcm[1], rate) > 0.01


async def test_record_audio_off_records_none(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    off = settings.model_copy(update={"record_audio": False})
    session, mic, _ = scripted_session()
    async with AuditRecorder(off) as recorder:
        rec = recorder.attach(session, tenant=tenant)
        assert rec.audio is None
        await session.start(Agent(instructions="help"))
        await take_a_turn(session, mic)
        mic.close()
        await session.aclose()
        await recorder.flush()
    kinds = [r.kind for r in read_records(settings.database_url or "", rec.session_id, keyring)]
    assert "audio_chunk" not in kinds and kinds[-1] == "closed"


async def test_a_pause_leaves_silence_of_the_same_length(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    session, mic, _ = scripted_session()
    async with AuditRecorder(settings) as recorder:
        rec = recorder.attach(session, tenant=tenant)
        t0 = time.time()
        await session.start(Agent(instructions="help"))
        await asyncio.sleep(0.2)
        rec.pause(reason="card number")
        p0 = time.time()
        await mic.speak(1.0)  # the caller reads out the card number
        rec.resume()
        p1 = time.time()
        await asyncio.sleep(0.3)
        mic.close()
        await session.aclose()
        await recorder.flush()
    assert rec.audio is not None and rec.audio.worker is not None
    data, recs, check = read_audio(settings.database_url or "", rec.session_id, keyring)
    assert check.ok, check  # type: ignore[attr-defined]
    pcm, rate = decode(data)
    start = recs[0].started_at.timestamp()
    assert start <= t0 + 0.5
    lo, hi = int((p0 - start + 0.05) * rate), int((p1 - start - 0.05) * rate)
    assert hi - lo > 0.5 * rate
    # the caller's tone is ~0.17 rms; Opus leaves traces near the pause's edges (0.0025 seen at
    # load 9), so "kept" means anything near a voice's level
    assert rms(pcm[:, lo:hi]) < 0.01, "audio kept while paused"
    notices = [r for r in read_records(settings.database_url or "", rec.session_id, keyring)]
    assert any(getattr(n, "code", None) == "recording_paused" for n in notices)


async def test_a_database_outage_mid_call_loses_no_audio(
    database_url: str, data_dir: Path, tenant: str
) -> None:
    target = psycopg.conninfo.conninfo_to_dict(db.libpq_url(database_url))
    proxy = TcpProxy(str(target.get("host", "127.0.0.1")), int(target.get("port", 5432)))
    await proxy.start()
    url = f"postgresql://{target.get('user', 'postgres')}@127.0.0.1:{proxy.port}/{target['dbname']}"
    settings = Settings(database_url=url, data_dir=data_dir, flush_interval=0.05, db_timeout=1.0)
    kr = LocalKeyring.init(settings.resolved_keyring_path)
    session, mic, _ = scripted_session()
    recorder = await AuditRecorder(settings).start()
    try:
        rec = recorder.attach(session, tenant=tenant)
        started = time.time()
        await session.start(Agent(instructions="help"))
        await asyncio.sleep(0.5)
        await proxy.stop()  # the database goes away mid-call
        await take_a_turn(session, mic)
        await asyncio.sleep(5.5)  # more than a chunk of audio while it is gone
        await recorder.flush()
        assert list(settings.resolved_spool_dir.glob("*.spool"))
        _no_audio_in_plaintext(database_url, settings.resolved_spool_dir)
        await proxy.start()
        mic.close()
        await session.aclose()
        length = time.time() - started
        for _ in range(200):
            await recorder.flush()
            if not list(settings.resolved_spool_dir.glob("*.spool")):
                break
            await asyncio.sleep(0.05)
    finally:
        await recorder.aclose()
        await proxy.stop()
    data, recs, check = read_audio(database_url, rec.session_id, kr)
    assert check.ok and check.complete, check  # type: ignore[attr-defined]
    assert len(recs) >= 2
    pcm, rate = decode(data)
    assert abs(pcm.shape[1] / rate - length) < 1.5
    assert uuid.UUID(str(rec.session_id))


async def test_a_realtime_session_records_the_callers_audio(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """The realtime fake answers in text only: the agent's channel stays silent, the caller's
    carries what the model was sent."""
    from livekit.agents.voice.events import ConversationItemAddedEvent

    from tests.support.fakes.io import ClockedAudioOutput
    from tests.support.fakes.realtime import OpenAILikeRealtime

    model = OpenAILikeRealtime(replies=["Hello."])
    session: AgentSession[None] = AgentSession(llm=model, vad=None)
    mic = ScriptedAudioInput()
    session.input.audio = mic
    session.output.audio = ClockedAudioOutput()
    said: list[object] = []

    def on_item(ev: ConversationItemAddedEvent) -> None:
        said.append(ev.item)

    session.on("conversation_item_added", on_item)
    async with AuditRecorder(settings) as recorder:
        rec = recorder.attach(session, tenant=tenant)
        started = time.time()
        await session.start(Agent(instructions="help"))
        await mic.speak(0.8)
        (rt,) = model.sessions
        rt.user_turn("hello there")
        deadline = time.monotonic() + 10
        while len(said) < 2:
            assert time.monotonic() < deadline, "no reply from the realtime fake"
            await asyncio.sleep(0.02)
        mic.close()
        await session.aclose()
        length = time.time() - started
        await recorder.flush()
    data, _, check = read_audio(settings.database_url or "", rec.session_id, keyring)
    assert check.ok and check.complete, check  # type: ignore[attr-defined]
    pcm, rate = decode(data)
    assert abs(pcm.shape[1] / rate - length) < 1.5
    # Opus codes the two channels jointly: the caller's onsets leave a trace ~40 dB down on the
    # agent's side (0.0016 seen), far below any voice (a spoken reply is above 0.1)
    assert peak_rms(pcm[0], rate) > 0.01 and rms(pcm[1]) < 0.01
    assert rt.audio_frames > 0
