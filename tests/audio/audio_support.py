"""Synthetic audio for the audio tests: tones in, decoded channels out."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Callable

import av
import numpy as np
from livekit import rtc
from livekit.agents import Agent, AgentSession

from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from tests.support.fakes.io import ClockedAudioOutput, CollectingTextOutput, ScriptedAudioInput
from tests.support.fakes.llm import Reply, ScriptedLLM
from tests.support.fakes.stt import ScriptedSTT
from tests.support.fakes.tts import ScriptedTTS
from tests.support.fakes.vad import EnergyVAD

CANARY = "zebrafinch"


def tone(seconds: float, *, rate: int, freq: float = 440.0, amp: int = 8000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amp).astype(np.int16)


def frames(pcm: np.ndarray, *, rate: int, frame_ms: int = 20) -> list[rtc.AudioFrame]:
    spf = rate * frame_ms // 1000
    return [
        rtc.AudioFrame(
            data=pcm[i : i + spf].tobytes(),
            sample_rate=rate,
            num_channels=1,
            samples_per_channel=len(pcm[i : i + spf]),
        )
        for i in range(0, len(pcm), spf)
    ]


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """The stream's samples as float32 (channels, n) and its rate."""
    container = av.open(io.BytesIO(data))
    parts = []
    rate = 48_000
    for f in container.decode(audio=0):
        rate = f.sample_rate
        parts.append(f.to_ndarray().reshape(f.layout.nb_channels, -1))
    container.close()
    return np.concatenate(parts, axis=1), rate


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if x.size else 0.0


def peak_rms(x: np.ndarray, rate: int, *, window_s: float = 0.1) -> float:
    """The loudest ``window_s`` of ``x``: whether a channel carries sound at all, however long
    the recording around it grew (a slow machine lengthens the silence, not the speech)."""
    n = max(1, int(rate * window_s))
    return max((rms(x[i : i + n]) for i in range(0, max(x.size, 1), n)), default=0.0)


def read_audio(url: str, session_id: object, kp: object) -> tuple[bytes, list, object]:  # type: ignore[type-arg]
    """Decrypt a session's recording from the database; its audio records and their check."""
    import uuid as _uuid

    from sqlalchemy import create_engine

    from auditagent.audio.reading import read_stream
    from auditagent.audio.store import PostgresAudioStore
    from auditagent.audio.verify import check_audio
    from auditagent.integrity import crypto
    from auditagent.integrity.envelope import dek_context
    from auditagent.keys import WrappedKey
    from auditagent.store import db
    from tests.support.helpers import read_records

    assert isinstance(session_id, _uuid.UUID)
    recs = [r for r in read_records(url, session_id, kp) if r.kind == "audio_chunk"]  # type: ignore[arg-type]
    engine = create_engine(db.sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            from sqlalchemy import text

            key_id, tenant, mk, wrapped = conn.execute(
                text(
                    "SELECT key_id, tenant, master_key_id, wrapped FROM data_keys "
                    "WHERE session_id = :s"
                ),
                {"s": session_id},
            ).one()
            dk = kp.unwrap(  # type: ignore[attr-defined]
                WrappedKey(master_key_id=mk, blob=wrapped),
                context=dek_context(tenant=tenant, session_id=session_id, key_id=key_id),
            )
            store = PostgresAudioStore(conn)
            infos = store.index(session_id)
            sealed = list(store.read(session_id))
            check = check_audio(recs, [(i, s.digest) for i, s in zip(infos, sealed, strict=True)])
            data = b"".join(read_stream(store, crypto.Sealer(dk), session_id, infos))
    finally:
        engine.dispose()
    return data, recs, check


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def scripted_session() -> tuple[AgentSession[None], ScriptedAudioInput, ClockedAudioOutput]:
    session: AgentSession[None] = AgentSession(
        stt=ScriptedSTT([f"hello this is {CANARY}", "thanks"]),
        vad=EnergyVAD(),
        llm=ScriptedLLM([Reply(text="Hello there, how can I help?"), Reply(text="Bye now.")]),
        tts=ScriptedTTS(seconds_per_word=0.1),
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": 0.15, "max_delay": 1.0},
            "preemptive_generation": {"enabled": False},
        },
        user_away_timeout=None,
        aec_warmup_duration=None,
    )
    mic, speaker = ScriptedAudioInput(), ClockedAudioOutput()
    session.input.audio = mic
    session.output.audio = speaker
    session.output.transcription = CollectingTextOutput()
    return session, mic, speaker


async def take_a_turn(session: AgentSession[None], mic: ScriptedAudioInput) -> None:
    await mic.speak(0.6)
    await _until(lambda: session.agent_state == "speaking", 10, "the agent to answer")
    await _until(lambda: session.agent_state == "listening", 10, "the agent to finish")


async def record_call(
    settings: Settings, tenant: str, *, participant: str | None = None
) -> tuple[uuid.UUID, float]:
    """One real voice turn recorded with audio; the session id and the call's length (s)."""
    session, mic, _ = scripted_session()
    async with AuditRecorder(settings) as recorder:
        rec = recorder.attach(session, tenant=tenant, participant=participant)
        started = time.time()
        await session.start(Agent(instructions="help"))
        await take_a_turn(session, mic)
        mic.close()
        await session.aclose()
        length = time.time() - started
        await recorder.flush()
    return rec.session_id, length
