"""The one base every request and response model of the review API derives from, and the
field types they share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

__all__ = ["SAFE_TEXT", "ApiModel", "IsoDatetime"]

# Free text that ends up in SQL parameters: no control characters (Postgres refuses NUL).
SAFE_TEXT = r"^[^\x00-\x1f\x7f]*$"


def _iso_only(value: Any) -> Any:
    # pydantic reads a bare number as a Unix timestamp; an audit query should say what it means.
    number = isinstance(value, (int, float))
    if isinstance(value, str):
        try:
            float(value.strip())  # "1e-39" too, which pydantic also reads as a timestamp
            number = True
        except ValueError:
            pass
    if number:
        raise ValueError("expected an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]


class ApiModel(BaseModel):
    """A field the API does not define is refused (request) or a bug (response), never
    silently dropped."""

    model_config = ConfigDict(extra="forbid")
