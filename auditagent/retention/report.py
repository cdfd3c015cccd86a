"""What a retention run or erasure did (or, dry, would do)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..store.deletions import DeletionRecord
from ..store.purges import Candidate


@dataclass
class RunReport:
    """What a run did (or, dry, would do). ``complete`` is False when it stopped early."""

    run_id: uuid.UUID | None
    dry_run: bool
    now: datetime
    candidates: list[Candidate] = field(default_factory=list)
    sessions_deleted: int = 0
    sessions_shredded: int = 0
    events_deleted: int = 0
    sessions_skipped_held: int = 0
    sessions_not_due: int = 0
    errors: int = 0
    complete: bool = True
    deletion_records: list[DeletionRecord] = field(default_factory=list)
    tenant: str | None = None
    runs_marked_interrupted: list[uuid.UUID] = field(default_factory=list)
    checkpoint: str | None = None
    checkpoint_error: str | None = None
    tenants_refused: dict[str, int] = field(default_factory=dict)
    months_dropped: list[str] = field(default_factory=list)
    """``YYYYMM`` of every month whose partitions the run dropped whole."""
    """Tenants left alone (sessions planned) because their policies or holds disagree with
    the signed change log; each session counts as an error."""

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.complete and self.checkpoint_error is None

    @property
    def matched(self) -> int:
        """How many sessions the plan covers (the most this run may delete)."""
        return len(self.candidates) + sum(self.tenants_refused.values())

    @property
    def events_planned(self) -> int:
        return sum(c.event_count for c in self.candidates)

    @property
    def state(self) -> str:
        if self.dry_run:
            return "dry run"
        if not self.complete:
            return "interrupted"
        return "complete" if self.errors == 0 else "incomplete"

    def summary(self) -> str:
        """The one line a cron job keeps."""
        if self.dry_run:
            return (
                f"retention dry run: would delete {len(self.candidates)} sessions "
                f"({self.events_planned} events), {self.sessions_skipped_held} held sessions kept"
            )
        extra = ""
        if self.sessions_not_due:
            extra += f", {self.sessions_not_due} no longer due"
        for t, n in self.tenants_refused.items():
            extra += f", {n} sessions of tenant {t} refused (tampered policies or holds)"
        if self.runs_marked_interrupted:
            extra += f", {len(self.runs_marked_interrupted)} earlier runs marked interrupted"
        checkpoint = (
            "checkpoint written"
            if self.checkpoint
            else f"checkpoint NOT written ({self.checkpoint_error})"
            if self.checkpoint_error
            else "no checkpoint"
        )
        return (
            f"retention run {self.run_id} {self.state}: {self.matched} sessions matched, "
            f"deleted {self.sessions_deleted} sessions ({self.events_deleted} events), "
            f"{self.sessions_skipped_held} held sessions kept{extra}, {self.errors} errors; "
            f"{checkpoint}"
        )


Progress = Callable[[int, int, int], None]
"""``progress(sessions_done, sessions_total, events_deleted)``."""


class RunInterrupted(Exception):
    """Raised by a ``before_batch`` hook (tests) to simulate a crash mid-run."""
