"""Sessions: the list, one session's detail, its legal holds as the detail shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from .base import ApiModel
from .verify import VerifyReport


class SessionSummary(ApiModel):
    id: uuid.UUID
    tenant: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    close_reason: str | None
    architecture: str | None
    agent_name: str | None
    labels: dict[str, Any]
    tool_names: list[str]
    models: dict[str, Any]
    event_count: int
    notice: str | None = Field(
        default=None,
        description="Recording notice: null (none asked for), incomplete, or completed",
    )


class SessionPage(ApiModel):
    items: list[SessionSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class LegalHold(ApiModel):
    id: uuid.UUID
    scope: Literal["session", "participant", "tenant"]
    reason: str
    created_by: str
    created_at: datetime


class SessionDetail(SessionSummary):
    head_hash: str | None
    counts: dict[str, int] = Field(description="Stored records by kind")
    integrity: VerifyReport
    legal_holds: list[LegalHold]
