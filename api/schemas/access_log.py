"""The access log (`/v1/access-log`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from .base import ApiModel


class AccessLogEntry(ApiModel):
    seq: int
    at: datetime
    principal_id: uuid.UUID | None
    principal_name: str | None
    role: str | None
    tenant: str | None
    action: str
    session_id: uuid.UUID | None
    route: str | None
    reason: str | None
    correlation_id: str | None
    detail: dict[str, Any]
    hash: str


class AccessLogPage(ApiModel):
    items: list[AccessLogEntry]
    next_cursor: str | None
