"""Retention periods in calendar terms: years, months and days.

"Six years" is six calendar years, not 2190 days (two leap days short). A period is added the
way Postgres adds ``make_interval(years, months, days)`` to a UTC timestamp: months first (a
day past the end of the target month is clamped to its last day), then days. Retention SQL and
the verifier both use that rule, so a deletion record's ``expires_at`` can be recomputed.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["RetentionPeriod"]


@dataclass(frozen=True, order=False)
class RetentionPeriod:
    years: int = 0
    months: int = 0
    days: int = 0

    def __post_init__(self) -> None:
        if min(self.years, self.months, self.days) < 0:
            raise ValueError("a retention period cannot be negative")

    @classmethod
    def of(
        cls, *, years: int | None = None, months: int | None = None, days: int | None = None
    ) -> RetentionPeriod:
        return cls(years=years or 0, months=months or 0, days=days or 0)

    @property
    def total_months(self) -> int:
        return 12 * self.years + self.months

    @property
    def empty(self) -> bool:
        return self.total_months == 0 and self.days == 0

    @property
    def min_days(self) -> int:
        """Fewest days it can span (a year is at least 365 days, a month at least 28)."""
        return 365 * (self.total_months // 12) + 28 * (self.total_months % 12) + self.days

    @property
    def max_days(self) -> int:
        """Most days it can span (a year is at most 366 days, a month at most 31)."""
        return 366 * (self.total_months // 12) + 31 * (self.total_months % 12) + self.days

    def covers(self, other: RetentionPeriod) -> bool:
        """True when this period is at least as long as ``other`` whatever the start date.

        Sufficient, not necessary: it may refuse a pair that would only fall short never, but
        it never accepts one that falls short on some date (e.g. 365 days does not cover one
        year; twelve months does cover 365 days)."""
        if self.total_months >= other.total_months and self.days >= other.days:
            return True
        return self.min_days >= other.max_days

    def add_to(self, t: datetime) -> datetime:
        """``t`` plus this period, in UTC, months before days (as Postgres does)."""
        if t.tzinfo is None:
            raise ValueError("a timezone-aware time is needed")
        u = t.astimezone(timezone.utc)
        months = u.month - 1 + self.total_months
        year, month = u.year + months // 12, months % 12 + 1
        day = min(u.day, calendar.monthrange(year, month)[1])
        return u.replace(year=year, month=month, day=day) + timedelta(days=self.days)

    def to_json(self) -> dict[str, int]:
        return {"years": self.years, "months": self.months, "days": self.days}

    @classmethod
    def from_json(cls, value: Any) -> RetentionPeriod:
        if not isinstance(value, dict):
            raise ValueError("a retention period is an object")
        return cls(
            years=int(value.get("years", 0)),
            months=int(value.get("months", 0)),
            days=int(value.get("days", 0)),
        )

    def __str__(self) -> str:
        """``keep_days=30``, ``keep_years=6``, ``keep_years=1 keep_months=6``: the names of the
        CLI flags and API fields that set them."""
        parts = [
            f"keep_{name}={value}"
            for name, value in (("years", self.years), ("months", self.months), ("days", self.days))
            if value
        ]
        return " ".join(parts) or "keep_days=0"

    def describe(self) -> str:
        """``6 years``, ``1 year 6 months``, ``30 days``: for messages."""
        parts = [
            f"{value} {name[:-1] if value == 1 else name}"
            for name, value in (("years", self.years), ("months", self.months), ("days", self.days))
            if value
        ]
        return " ".join(parts) or "0 days"
