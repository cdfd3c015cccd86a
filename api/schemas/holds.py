"""Legal holds (`/v1/holds`): placing one (by scope), releasing it, and the hold as listed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from .base import SAFE_TEXT, ApiModel


class _HoldBase(ApiModel):
    tenant: str = Field(min_length=1, max_length=128, pattern=SAFE_TEXT)
    reason: str = Field(min_length=1, max_length=1000, pattern=SAFE_TEXT)
    allow_empty: bool = Field(
        default=False,
        description="Place it even if it covers no session yet (otherwise 404)",
    )


class SessionHoldIn(_HoldBase):
    scope: Literal["session"]
    session_id: uuid.UUID


class ParticipantHoldIn(_HoldBase):
    scope: Literal["participant"]
    participant: str = Field(
        min_length=1,
        max_length=256,
        pattern=SAFE_TEXT,
        description="The identity; stored only as its keyed blind index",
    )


class TenantHoldIn(_HoldBase):
    scope: Literal["tenant"]


HoldIn = Annotated[SessionHoldIn | ParticipantHoldIn | TenantHoldIn, Field(discriminator="scope")]


class ReleaseIn(ApiModel):
    reason: str = Field(min_length=1, max_length=1000, pattern=SAFE_TEXT)


class HoldOut(ApiModel):
    id: uuid.UUID
    scope: Literal["session", "participant", "tenant"]
    tenant: str
    session_id: uuid.UUID | None
    reason: str
    created_by: str
    created_at: datetime
    active: bool
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None
    sessions_covered: int | None = Field(
        default=None,
        description="Sessions (not purged) it covers: when placed, or when released",
    )


class HoldList(ApiModel):
    items: list[HoldOut]
