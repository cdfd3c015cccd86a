"""`GET /v1/sessions/{id}/audio`: the call's recording, decrypted on read, as `audio/ogg`.

Access-logged before anything is read, tenant-scoped like every session read. Byte ranges
(RFC 9110) are served by opening only the chunks they touch, so a player can seek. Every chunk
opened is authenticated against its session, index and place on the timeline; a store whose
chunks no longer line up is refused (409) rather than served with a hole.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import Response
from sqlalchemy import Connection

from auditagent import records
from auditagent.audio.bundle import bundle_audio
from auditagent.audio.integrity import check_stored_audio
from auditagent.audio.ogg import GRANULE_RATE
from auditagent.audio.reading import RangeNotSatisfiable, parse_range, read_stream
from auditagent.audio.sealing import open_chunk
from auditagent.audio.store import ChunkInfo, PostgresAudioStore
from auditagent.errors import AuditagentError
from auditagent.integrity import crypto
from auditagent.keys import KeyProvider
from auditagent.reading import decrypt
from auditagent.store import reader

from ..deps import AccessDep, KeysDep
from ..problems import ProblemError, problem_responses
from ..schemas import AudioIntegrity, TranscriptAudio, VerifyReport

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

MEDIA_TYPE = "audio/ogg"
_OGG = {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}


def _contiguous(infos: list[ChunkInfo]) -> bool:
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
    if not has_chunks and not reader.event_counts(conn, session.id).get("audio_chunk"):
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
) -> TranscriptAudio | None:
    """The transcript's pointer to the recording, from its audio records (already opened)."""
    recs = [o.record for o in opened if isinstance(o.record, records.AudioChunk)]
    if not recs:
        return None
    return TranscriptAudio(
        url=f"/v1/sessions/{session_id}/audio",
        started_at=recs[0].started_at,
        seconds=sum(r.duration for r in recs) / GRANULE_RATE,
        complete=recs[-1].final,
    )


def export_audio(conn: Connection, sealer: crypto.Sealer, session_id: uuid.UUID) -> Any:
    """The bundle's ``audio`` part, or None when the session has no audio."""
    store = PostgresAudioStore(conn)
    chunks = list(store.read(session_id))
    if not chunks and not reader.event_counts(conn, session_id).get("audio_chunk"):
        return None
    check = check_stored_audio(conn, sealer, session_id)
    if not check.ok:
        # a bundle must not carry audio that is not the recording: say so, and carry none
        return bundle_audio(b"", [], check)
    ogg = b"".join(open_chunk(sealer, c) for c in chunks)
    return bundle_audio(ogg, chunks, check)


@router.get(
    "/{session_id}/audio",
    response_class=Response,
    responses={
        200: {"description": "The whole recording", "content": _OGG},
        206: {"description": "The byte range asked for", "content": _OGG},
        **problem_responses(401, 403, 404, 409, 410, 416, 422, 503),
    },
)
def get_audio(
    session_id: uuid.UUID,
    access: AccessDep,
    keys: KeysDep,
    range_: Annotated[str | None, Header(alias="Range", max_length=256)] = None,
) -> Response:
    """Two channels on the call's timeline (0: the caller as the agent's pipeline received it,
    1: the agent as played out), Opus in Ogg. Supports `Range: bytes=...` (206, or 416 with
    the recording's size). A second of the recording sits at `started_at` of its
    `audio_chunk` records plus its offset, the same clock as every record's `at`."""
    from .sessions import _visible_session  # sessions imports this module for with_audio

    session = _visible_session(access.conn, access, session_id)
    access.record(
        "sessions.audio",
        tenant=session.tenant,
        session_id=session_id,
        detail={"range": range_ is not None},
    )
    conn = access.conn
    store = PostgresAudioStore(conn)
    infos = store.index(session_id)
    # erased first: a shredded session says 410 whether or not its chunks are purged yet
    sealer = decrypt.session_sealer(keys, reader.get_data_key(conn, session_id), session)
    if not infos and not reader.event_counts(conn, session_id).get("audio_chunk"):
        raise ProblemError(404, f"no audio recorded for session {session_id}", type_="not-found")
    if not infos or not _contiguous(infos):
        raise ProblemError(
            409,
            "the stored audio has a missing or misplaced chunk",
            type_="integrity",
        )
    total = sum(i.size for i in infos)
    try:
        rng = parse_range(range_, total)
    except RangeNotSatisfiable:
        raise ProblemError(
            416,
            f"the recording has {total} bytes",
            type_="range-not-satisfiable",
            headers={"Content-Range": f"bytes */{total}"},
        ) from None
    body = b"".join(read_stream(store, sealer, session_id, infos, rng))
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store"}
    if rng is None:
        return Response(body, media_type=MEDIA_TYPE, headers=headers)
    headers["Content-Range"] = f"bytes {rng.start}-{rng.end}/{total}"
    return Response(body, status_code=206, media_type=MEDIA_TYPE, headers=headers)
