"""`GET /v1/sessions/{id}/audio`: the call's recording, decrypted on read, as `audio/ogg`.

Access-logged before anything is read, tenant-scoped like every session read. Byte ranges
(RFC 9110) are served by opening only the chunks they touch, so a player can seek. Every chunk
opened is authenticated against its session, index and place on the timeline; a store whose
chunks no longer line up is refused (409) rather than served with a hole.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from auditagent.audio.reading import RangeNotSatisfiable, parse_range, read_stream
from auditagent.audio.store import PostgresAudioStore
from auditagent.reading import decrypt
from auditagent.store import reader

from ..audio_reads import contiguous, has_audio_records
from ..deps import AccessDep, KeysDep
from ..problems import ProblemError, problem_responses
from ..reads import logged_session as _logged_session

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

MEDIA_TYPE = "audio/ogg"
_OGG = {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}


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
    session = _logged_session(
        access, session_id, "sessions.audio", detail={"range": range_ is not None}
    )
    conn = access.conn
    store = PostgresAudioStore(conn)
    infos = store.index(session_id)
    # erased first: a shredded session says 410 whether or not its chunks are purged yet
    sealer = decrypt.session_sealer(keys, reader.get_data_key(conn, session_id), session)
    if not infos and not has_audio_records(conn, session_id):
        raise ProblemError(404, f"no audio recorded for session {session_id}", type_="not-found")
    if not infos or not contiguous(infos):
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
