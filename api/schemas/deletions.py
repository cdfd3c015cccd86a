"""Deletion records, the runs they came from and both chains' state (`/v1/deletions`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from .base import ApiModel


class DeletionRecordOut(ApiModel):
    """A deletion record: proof that a session was erased or expired, signed with the
    checkpoint key (`auditagent keys public`)."""

    seq: int
    run_id: uuid.UUID | None
    session_id: uuid.UUID
    tenant: str
    policy: str
    reason: str
    event_count: int
    final_hash: str | None = Field(description="Hex hash of the session's last record")
    deleted_at: datetime = Field(description="The real time of deletion (database clock)")
    hash: str = Field(description="Hex hash of this record in the deletion chain")
    prev_hash: str | None = None
    basis: dict[str, Any] | None = Field(
        default=None,
        description="Why it was due: end time and chained close time, policy version and "
        "keep period, default, floor, expiry, the run's clock, the hold check",
    )
    signature: str | None = Field(default=None, description="Base64 Ed25519 signature")
    valid: bool | None = Field(
        default=None, description="Hash, signature and basis verified (null: not checked)"
    )
    problems: list[str] = Field(default_factory=list)


class RunSummary(ApiModel):
    id: uuid.UUID
    trigger: str
    tenant: str | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    requested_by: str | None
    reason: str | None
    sessions_matched: int
    sessions_deleted: int
    events_deleted: int
    sessions_skipped_held: int
    errors: int


class ChainState(ApiModel):
    ok: bool
    count: int
    head: str
    first_bad_seq: int | None = None
    reason: str | None = None
    problems: list[str] = Field(default_factory=list)


class DeletionList(ApiModel):
    items: list[DeletionRecordOut]
    runs: list[RunSummary] = Field(description="The runs and erasures these records came from")
    deletion_chain: ChainState
    change_log: ChainState = Field(description="The signed log of policy and hold changes")
    valid: bool = Field(description="Every listed record and both chains verify")
    next_after_seq: int | None = Field(description="Pass as `after_seq` for the next page")
