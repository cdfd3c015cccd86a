"""`/health`."""

from __future__ import annotations

from typing import Literal

from .base import ApiModel


class Health(ApiModel):
    status: Literal["ok"]
    database: Literal["ok"]
