"""RFC 9457 problem details, the body of every error answer."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from .base import ApiModel


class Problem(ApiModel):
    """RFC 9457 problem details."""

    # A problem type may add members (`legal_holds`, `deletion_record`): RFC 9457 extensions.
    model_config = ConfigDict(extra="ignore")

    type: str = Field(default="about:blank", description="URI identifying the problem type")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Validation failures (422 only)"
    )
