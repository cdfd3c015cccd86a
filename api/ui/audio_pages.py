"""The call's recording in the review UI: `/ui/sessions/{id}/audio` and the session page's
player with click-to-seek.

The route is `GET /v1/sessions/{id}/audio` itself (`api/routes/audio.py`), called with the
sign-in's access context: the same access-log row written first, tenant scoping, byte ranges
and one decrypt path. The player's facts come from the reads the API's `/transcript` and
`/verify` use (`api/audio_reads.py`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import Response

from auditagent.reading import decrypt
from auditagent.reading.transcript import TranscriptEntry

from ..audio_reads import transcript_audio, with_audio
from ..deps import AccessContext, KeysDep
from ..routes import audio as api
from ..schemas import AudioIntegrity, VerifyReport
from .auth import UiAccessDep

router = APIRouter(prefix="/ui", include_in_schema=False)

SEEKABLE = frozenset({"user", "agent"})


@dataclass(frozen=True)
class Player:
    url: str
    started_at: datetime
    seconds: float
    complete: bool
    integrity: AudioIntegrity | None
    """The `/verify` report's audio block; None when the chain under it failed (then the
    audio records themselves cannot be trusted, and the page says so)."""

    def seek(self, entry: TranscriptEntry) -> float | None:
        """Seconds into the recording where a turn starts: its ``started_at`` (when the
        speaking started) if LiveKit reported one, else its ``at``; the transcript's rule.
        None for entries that are not turns or fall outside the recording."""
        if entry.kind not in SEEKABLE:
            return None
        offset = ((entry.started_at or entry.at) - self.started_at).total_seconds()
        if offset > self.seconds:
            return None
        return max(0.0, offset)

    @staticmethod
    def position(seconds: float) -> str:
        """A place in the recording as the player's own clock shows it (m:ss.s)."""
        minutes, sec = divmod(seconds, 60)
        return f"{int(minutes)}:{sec:04.1f}"


def player(
    access: AccessContext,
    keys: Any,
    session: Any,
    opened: list[decrypt.OpenedRecord],
    report: VerifyReport,
) -> Player | None:
    """The player for a session whose records are already read (and access-logged) by the
    page; None when the session recorded no audio."""
    found = transcript_audio(session.id, opened).get("audio")
    if found is None:
        return None
    checked = with_audio(report, access.conn, keys, session)
    return Player(
        url=f"/ui/sessions/{session.id}/audio",
        started_at=found.started_at,
        seconds=found.seconds,
        complete=found.complete,
        integrity=checked.audio,
    )


@router.get("/sessions/{session_id}/audio")
def audio(
    session_id: uuid.UUID,
    access: UiAccessDep,
    keys: KeysDep,
    range_: Annotated[str | None, Header(alias="Range", max_length=256)] = None,
) -> Response:
    """The recording for the page's player: whole (200) or a byte range (206)."""
    return api.get_audio(session_id, access, keys, range_)
