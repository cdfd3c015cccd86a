"""API keys (`/v1/admin/apikeys`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from .base import ApiModel


class ApiKey(ApiModel):
    id: uuid.UUID
    name: str
    role: Literal["auditor", "admin"]
    tenant: str | None
    token_prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyList(ApiModel):
    items: list[ApiKey]
