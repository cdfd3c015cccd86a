"""Call audio in the session reads (issue 15): `/verify` holds the chunks to their records,
`/transcript` says where the recording is, `/export?audio=true` carries it. Shared by
routes/sessions.py and routes/audio.py."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection

import auditagent.records as records
from auditagent.audio.bundle import bundle_audio
from auditagent.audio.integrity import check_stored_audio
from auditagent.audio.ogg import GRANULE_RATE
from auditagent.audio.sealing import open_chunk
from auditagent.audio.store import ChunkInfo, PostgresAudioStore
from auditagent.errors import AuditagentError
from auditagent.integrity import crypto
from auditagent.keys import KeyProvider
from auditagent.reading import decrypt
from auditagent.store import reader

from .schemas import AudioIntegrity, TranscriptAudio, VerifyReport

__all__ = ["contiguous", "export_audio", "has_audio_records", "transcript_audio", "with_audio"]


def has_audio_records(conn: Connection, session_id: uuid.UUID) -> bool:
    return bool(reader.event_counts(conn, session_id).get("audio_chunk"))


def contiguous(infos: list[ChunkInfo]) -> bool:
    at = 0
    for n, i in enumerate(infos):
        if i.index != n or i.offset != at:
            return False
        at += i.duration
    return True


def with_audio(
    report: VerifyReport, conn: Connection, keys: KeyProvider, session: Any
) -> VerifyReport:
    """``report`` with the session's audio held to its records; unchanged when the session
    has no audio. Audio that cannot be checked (data key unavailable) is reported not ok."""
    if not report.ok and report.first_bad_seq is not None:
        return report  # the chain itself failed: its audio records cannot be trusted
    has_chunks = bool(PostgresAudioStore(conn).index(session.id))
    if not has_chunks and not has_audio_records(conn, session.id):
        return report
    try:
        sealer = decrypt.session_sealer(keys, reader.get_data_key(conn, session.id), session)
        check = check_stored_audio(conn, sealer, session.id)
    except AuditagentError as exc:
        audio = AudioIntegrity(
            ok=False, chunks=0, seconds=0.0, complete=False, reason=f"not checked: {exc}"
        )
    else:
        audio = AudioIntegrity(
            ok=check.ok,
            chunks=check.chunks,
            seconds=check.seconds,
            complete=check.complete,
            first_bad_chunk=check.first_bad_index,
            reason=check.reason,
        )
    ok = report.ok and audio.ok
    reason = report.reason or (None if audio.ok else f"audio: {audio.reason}")
    return report.model_copy(update={"audio": audio, "ok": ok, "reason": reason})


def transcript_audio(
    session_id: uuid.UUID, opened: list[decrypt.OpenedRecord]
) -> dict[str, TranscriptAudio]:
    """The transcript's ``audio`` field (the recording, from its audio records already
    opened); none for a session without audio, so the field stays unset."""
    recs = [o.record for o in opened if isinstance(o.record, records.AudioChunk)]
    if not recs:
        return {}
    audio = TranscriptAudio(
        url=f"/v1/sessions/{session_id}/audio",
        started_at=recs[0].started_at,
        seconds=sum(r.duration for r in recs) / GRANULE_RATE,
        complete=recs[-1].final,
        late_seconds=sum(r.late_samples for r in recs) / GRANULE_RATE,
    )
    return {"audio": audio}


def export_audio(conn: Connection, sealer: crypto.Sealer, session_id: uuid.UUID) -> Any:
    """The bundle's ``audio`` part, or None when the session has no audio."""
    store = PostgresAudioStore(conn)
    chunks = list(store.read(session_id))
    if not chunks and not has_audio_records(conn, session_id):
        return None
    check = check_stored_audio(conn, sealer, session_id)
    if not check.ok:
        # a bundle must not carry audio that is not the recording: say so, and carry none
        return bundle_audio(b"", [], check)
    ogg = b"".join(open_chunk(sealer, c) for c in chunks)
    return bundle_audio(ogg, chunks, check)
