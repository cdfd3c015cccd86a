"""The recorder's wall clock: one seam, so a benchmark can record sessions "in the past"."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
