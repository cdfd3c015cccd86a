"""A session's transcript and its decrypted records, each with the chain checked in the same
pass as the read."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from auditagent.reading.transcript import TranscriptEntry

from .audio import TranscriptAudio
from .base import ApiModel


class TranscriptIntegrity(ApiModel):
    """The session's hash chain, recomputed from the same rows the transcript was read from
    and held to the session's stored count and head hash (as `/verify` does)."""

    ok: bool
    first_bad_seq: int | None = Field(description="First record that failed, if any")
    reason: str | None


class Transcript(ApiModel):
    session_id: uuid.UUID
    entries: list[TranscriptEntry]
    integrity: TranscriptIntegrity | None = Field(
        default=None,
        description="The chain checked in the same pass as the read; always set by this "
        "service (null only in a Transcript built by other code).",
    )
    audio: TranscriptAudio | None = Field(
        default=None, description="The call's recording, when the session has one (issue 15)"
    )


class EventItem(ApiModel):
    seq: int
    at: datetime
    kind: str
    record: dict[str, Any]


class EventList(ApiModel):
    session_id: uuid.UUID
    events: list[EventItem]
    integrity: TranscriptIntegrity = Field(
        description="The chain checked in the same pass as the read, exactly as `/transcript`"
        " reports it"
    )
