"""A session's integrity report (`/verify`)."""

from __future__ import annotations

import uuid

from pydantic import Field

from .audio import AudioIntegrity
from .base import ApiModel
from .deletions import DeletionRecordOut


class VerifyReport(ApiModel):
    session_id: uuid.UUID
    ok: bool
    events: int = Field(description="Records that verified before the first failure")
    first_bad_seq: int | None
    reason: str | None
    head_hash: str = Field(description="Hex hash of the last verified record")
    erased: bool = Field(
        default=False,
        description="The session was erased or expired: its data key is destroyed and its "
        "records deleted; `ok` then says whether a valid signed deletion record accounts for it",
    )
    deletion_record: DeletionRecordOut | None = None
    audio: AudioIntegrity | None = Field(
        default=None,
        description="Present when the session has call audio; a cut, swapped or edited chunk "
        "makes `ok` false. Checking it opens the audio records (not the audio) with the "
        "session's data key.",
    )
