"""Synthetic audio for the audio tests: tones in, decoded channels out."""

from __future__ import annotations

import io

import av
import numpy as np
from livekit import rtc


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


def read_audio(url: str, session_id: object, kp: object) -> tuple[bytes, list, object]:  # type: ignore[type-arg]
    """Decrypt a session's recording from the database; its audio records and their check."""
    import uuid as _uuid

    from sqlalchemy import create_engine

    from auditagent import crypto
    from auditagent.audio.reading import read_stream
    from auditagent.audio.store import PostgresAudioStore
    from auditagent.audio.verify import check_audio
    from auditagent.envelope import dek_context
    from auditagent.keys import WrappedKey
    from auditagent.store import db
    from tests.helpers import read_records

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
