"""Retention policies (`/v1/retention/policies`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict, Field

from .base import SAFE_TEXT, ApiModel


class Period(ApiModel):
    years: int
    months: int
    days: int


class RetentionPolicy(ApiModel):
    id: uuid.UUID
    tenant: str
    agent: str | None = Field(description="Agent label; null: every agent of the tenant")
    keep_days: int
    keep_months: int = 0
    keep_years: int = 0
    version: int = Field(default=1, description="Policies are versioned, never overwritten")
    created_by: str
    created_at: datetime


class RetentionPolicies(ApiModel):
    default_keep_days: int = Field(
        description="Applies where no policy matches: its shortest length in days"
    )
    floor_days: int = Field(
        description="No policy keeps records for less: the floor's shortest length in days"
    )
    default: Period = Field(description="The default in calendar terms")
    floor: Period = Field(description="The floor in calendar terms, enforced at run time too")
    items: list[RetentionPolicy]


class PolicyIn(ApiModel):
    """A period of at least one day, in calendar terms; under the server's floor is 409."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"minimum": 1}}}
                for name in ("keep_years", "keep_months", "keep_days")
            ]
        },
    )

    tenant: str = Field(min_length=1, max_length=128, pattern=SAFE_TEXT)
    agent: str | None = Field(default=None, min_length=1, max_length=256, pattern=SAFE_TEXT)
    keep_days: int = Field(
        default=0,
        ge=0,
        le=36_500,
        description="Days kept after a session ends (added to years and months)",
    )
    keep_months: int = Field(default=0, ge=0, le=1_200, description="Calendar months")
    keep_years: int = Field(default=0, ge=0, le=100, description="Calendar years")
