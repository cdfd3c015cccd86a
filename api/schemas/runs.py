"""Retention runs and erasures (`/v1/retention/runs`, `/v1/erasure`): what a run covered and
deleted."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from .base import SAFE_TEXT, ApiModel
from .deletions import DeletionRecordOut


class PlannedSession(ApiModel):
    session_id: uuid.UUID
    tenant: str
    status: str
    ended_at: datetime | None
    event_count: int
    policy: str


class RunOut(ApiModel):
    run_id: uuid.UUID | None
    dry_run: bool
    complete: bool
    sessions_planned: int = Field(description="Sessions the run covers: it deletes no others")
    events_planned: int
    sessions_deleted: int
    events_deleted: int
    sessions_skipped_held: int
    sessions_not_due: int = 0
    errors: int
    checkpoint_written: bool = False
    sessions: list[PlannedSession] = Field(description="At most 1000 of the planned sessions")
    deletion_records: list[DeletionRecordOut]


class ErasureIn(ApiModel):
    tenant: str = Field(min_length=1, max_length=128, pattern=SAFE_TEXT)
    participant: str = Field(min_length=1, max_length=256, pattern=SAFE_TEXT)
    reason: str = Field(
        min_length=1,
        max_length=1000,
        pattern=SAFE_TEXT,
        description="Request reference; kept with the run. No personal data.",
    )
    allow_empty: bool = Field(
        default=False,
        description="Succeed when the participant has no session (otherwise 404)",
    )
