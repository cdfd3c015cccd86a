"""Retention policies, legal holds, erasure (GDPR Art. 17) and retention runs.

A run finds sessions whose ``ended_at + keep_days`` lies before ``now`` and that no unreleased
legal hold covers, then for each one, in separate committed transactions:

1. **shred** — the wrapped data key is destroyed, the session becomes ``shredded`` and a
   hash-chained deletion record (session, policy, count, final chain hash, time, run) is
   written; from here on its ciphertext is unreadable everywhere;
2. **delete** its events in batches of ``batch_size`` rows (the only path the append-only
   trigger lets through);
3. **mark** it ``purged``.

Each step is idempotent, so a run that is interrupted anywhere is finished by running again:
``shredded`` sessions are always picked up. Erasure does the same for every session of one
participant (found through the blind index) and refuses, naming the hold, when one covers them.
All SQL lives in :mod:`auditagent.store.retention`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from sqlalchemy import Engine

from .errors import AuditagentError, Conflict, NotFound
from .keys import KeyProvider
from .settings import Settings
from .store import retention as store
from .store.retention import (
    Candidate,
    DeletionRecord,
    Hold,
    Policy,
    SessionHeld,
    deletion_record_hash,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Candidate",
    "DeletionRecord",
    "ErasureBlocked",
    "Hold",
    "HoldScope",
    "Policy",
    "PolicyBelowFloor",
    "RunReport",
    "create_hold",
    "deletion_record_hash",
    "erase_participant",
    "release_hold",
    "run_retention",
    "set_policy",
    "verify_deletion_chain",
]

log = logging.getLogger("auditagent.retention")

DEFAULT_BATCH_SIZE = 10_000

HoldScope = Literal["session", "participant", "tenant"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- policies ---------------------------------------------------------------------------------


class PolicyBelowFloor(AuditagentError):
    """A policy would keep records for fewer days than the configured floor."""

    def __init__(self, keep_days: int, floor_days: int) -> None:
        super().__init__(
            f"keep_days {keep_days} is below the retention floor of {floor_days} days",
            fix="keep records at least AUDITAGENT_RETENTION_FLOOR_DAYS days "
            "(the floor is an operator setting, not a per-policy choice)",
        )
        self.keep_days = keep_days
        self.floor_days = floor_days


def set_policy(
    engine: Engine,
    settings: Settings,
    *,
    tenant: str,
    agent: str | None,
    keep_days: int,
    created_by: str,
) -> Policy:
    """Create or replace the policy of (tenant, agent). The floor is never undercut: a
    regulated user who needs a shorter period changes the floor setting deliberately."""
    if keep_days < 1:
        raise AuditagentError("keep_days must be at least 1", fix="pass a positive number")
    if keep_days < settings.retention_floor_days:
        raise PolicyBelowFloor(keep_days, settings.retention_floor_days)
    return store.put_policy(
        engine, tenant=tenant, agent=agent, keep_days=keep_days, created_by=created_by
    )


def remove_policy(engine: Engine, *, tenant: str, agent: str | None) -> Policy:
    removed = store.delete_policy(engine, tenant=tenant, agent=agent)
    if removed is None:
        what = f"tenant {tenant!r}" + (f" agent {agent!r}" if agent else "")
        raise NotFound(
            f"no retention policy for {what}", fix="list them with GET /v1/retention/policies"
        )
    return removed


# --- holds ------------------------------------------------------------------------------------


def create_hold(
    engine: Engine,
    key_provider: KeyProvider,
    *,
    scope: HoldScope,
    tenant: str,
    reason: str,
    created_by: str,
    session_id: uuid.UUID | None = None,
    participant: str | None = None,
) -> Hold:
    """Hold one session, one participant (by blind index, so no identity is stored) or a
    whole tenant. A held session survives retention runs and erasure until released."""
    if not reason.strip():
        raise AuditagentError("a legal hold needs a reason", fix="pass --reason / reason")
    participant_index: bytes | None = None
    if scope == "session":
        if session_id is None:
            raise AuditagentError("a session hold needs a session id", fix="pass session_id")
        owner = store.session_tenant(engine, session_id)
        if owner is None or owner != tenant:
            raise NotFound(f"no session {session_id} in tenant {tenant!r}")
    elif scope == "participant":
        if not participant:
            raise AuditagentError(
                "a participant hold needs the participant identity", fix="pass participant"
            )
        participant_index = key_provider.blind_index(tenant=tenant, value=participant)
    elif scope != "tenant":
        raise AuditagentError(f"unknown hold scope {scope!r}", fix="use session|participant|tenant")
    return store.create_hold(
        engine,
        scope=scope,
        tenant=tenant,
        session_id=session_id if scope == "session" else None,
        participant_index=participant_index,
        reason=reason,
        created_by=created_by,
    )


def release_hold(
    engine: Engine, hold_id: uuid.UUID, *, released_by: str, reason: str, tenant: str | None
) -> Hold:
    """Release a hold (recorded: who, when, why). ``tenant`` limits which holds the caller
    may see; another tenant's hold is reported as missing."""
    if not reason.strip():
        raise AuditagentError("releasing a hold needs a reason", fix="pass --reason / reason")
    existing = store.get_hold(engine, hold_id)
    if existing is None or (tenant is not None and existing.tenant != tenant):
        raise NotFound(f"no legal hold {hold_id}")
    if existing.released_at is not None:
        raise Conflict(
            f"legal hold {hold_id} was already released at {existing.released_at.isoformat()} "
            f"by {existing.released_by}"
        )
    released = store.release_hold(engine, hold_id, released_by=released_by, reason=reason)
    assert released is not None
    return released


# --- runs -------------------------------------------------------------------------------------


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
    errors: int = 0
    complete: bool = True
    deletion_records: list[DeletionRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.complete

    @property
    def events_planned(self) -> int:
        return sum(c.event_count for c in self.candidates)

    def summary(self) -> str:
        """The one line a cron job keeps."""
        if self.dry_run:
            return (
                f"retention dry run: would delete {len(self.candidates)} sessions "
                f"({self.events_planned} events), {self.sessions_skipped_held} held sessions kept"
            )
        state = "complete" if self.ok else ("incomplete" if self.complete else "interrupted")
        return (
            f"retention run {self.run_id} {state}: deleted {self.sessions_deleted} sessions "
            f"({self.events_deleted} events), {self.sessions_skipped_held} held sessions kept, "
            f"{self.errors} errors"
        )


Progress = Callable[[int, int, int], None]
"""``progress(sessions_done, sessions_total, events_deleted)``."""


class RunInterrupted(Exception):
    """Raised by a ``before_batch`` hook (tests) to simulate a crash mid-run."""


def run_retention(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    tenant: str | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    trigger: str = "cli",
    requested_by: str | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Delete every expired, unheld session (see the module text). ``now`` is the clock the
    expiry is computed against (tests set it); ``max_batches`` stops after that many event
    batches, leaving the run resumable (tests, and operators with a maintenance window)."""
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    candidates, held = store.expired_candidates(
        engine, now=now, tenant=tenant, default_days=settings.retention_default_days
    )
    report = RunReport(
        run_id=None, dry_run=dry_run, now=now, candidates=candidates, sessions_skipped_held=held
    )
    if dry_run:
        return report
    report.run_id = store.start_run(
        engine,
        dry_run=False,
        tenant=tenant,
        trigger=trigger,
        requested_by=requested_by,
        reason=None,
        started_at=utcnow(),
    )
    _purge(
        engine,
        report,
        reason="retention",
        batch_size=batch_size,
        max_batches=max_batches,
        progress=progress,
    )
    return report


def _purge(
    engine: Engine,
    report: RunReport,
    *,
    reason: str,
    batch_size: int,
    max_batches: int | None,
    progress: Progress | None,
    stop_on_held: bool = False,
) -> None:
    assert report.run_id is not None
    batches = 0
    total = len(report.candidates)
    try:
        for i, c in enumerate(report.candidates):
            if max_batches is not None and batches >= max_batches:
                report.complete = False
                break
            try:
                if c.status in ("open", "closed"):
                    record = store.shred_session(
                        engine,
                        c.session_id,
                        run_id=report.run_id,
                        policy=c.policy,
                        reason=reason,
                        now=report.now,
                    )
                    if record is not None:
                        report.sessions_shredded += 1
                        report.deletion_records.append(record)
                while True:
                    if max_batches is not None and batches >= max_batches:
                        report.complete = False
                        break
                    n = store.delete_event_batch(engine, c.session_id, batch_size=batch_size)
                    batches += 1
                    report.events_deleted += n
                    if progress is not None:
                        progress(i, total, report.events_deleted)
                    if n < batch_size:
                        break
                if not report.complete:
                    break
                if store.mark_purged(engine, c.session_id, now=report.now):
                    report.sessions_deleted += 1
            except SessionHeld:
                # A hold arrived after the candidates were chosen: it wins.
                report.sessions_skipped_held += 1
                if stop_on_held:
                    raise
            except RunInterrupted:
                raise
            except Exception as exc:
                report.errors += 1
                log.error(
                    "retention: session %s failed (%s); rerun to finish it",
                    c.session_id,
                    type(exc).__name__,
                )
            if progress is not None:
                progress(i + 1, total, report.events_deleted)
    except BaseException:
        # A crash, Ctrl-C or a held session during erasure: what is done stays done.
        report.complete = False
        raise
    finally:
        status = (
            "complete"
            if report.complete and not report.errors
            else ("interrupted" if not report.complete else "partial")
        )
        store.finish_run(
            engine,
            report.run_id,
            status=status,
            sessions_deleted=report.sessions_deleted,
            events_deleted=report.events_deleted,
            sessions_skipped_held=report.sessions_skipped_held,
            errors=report.errors,
        )


# --- erasure ----------------------------------------------------------------------------------


class ErasureBlocked(Conflict):
    """A legal hold covers the participant, one of their sessions, or their tenant."""

    def __init__(self, holds: list[Hold]) -> None:
        self.holds = holds
        first = holds[0]
        super().__init__(
            f"erasure blocked by legal hold {first.id} (scope {first.scope}, placed by "
            f"{first.created_by} at {first.created_at.isoformat()})"
            + (f" and {len(holds) - 1} more" if len(holds) > 1 else ""),
            fix="the hold must be released before the participant can be erased",
        )


def erase_participant(
    engine: Engine,
    key_provider: KeyProvider,
    *,
    tenant: str,
    participant: str,
    reason: str,
    requested_by: str,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> RunReport:
    """Crypto-shred, then purge, every session of ``participant`` in ``tenant``.

    Refuses with ``ErasureBlocked`` (naming the hold) while a hold covers any of it. Sessions
    still open are shredded too: their later records can never be read. Rerunning finishes an
    interrupted erasure; erasing someone with no sessions left is a no-op."""
    if not reason.strip():
        raise AuditagentError("an erasure needs a reason", fix="pass --reason / reason")
    now = now or utcnow()
    index = key_provider.blind_index(tenant=tenant, value=participant)
    holds = store.holds_blocking_participant(engine, tenant=tenant, participant_index=index)
    if holds:
        raise ErasureBlocked(holds)
    candidates = store.participant_sessions(engine, tenant=tenant, participant_index=index)
    report = RunReport(run_id=None, dry_run=False, now=now, candidates=candidates)
    report.run_id = store.start_run(
        engine,
        dry_run=False,
        tenant=tenant,
        trigger="erasure",
        requested_by=requested_by,
        reason=reason,
        started_at=utcnow(),
    )
    try:
        _purge(
            engine,
            report,
            reason="erasure",
            batch_size=batch_size,
            max_batches=max_batches,
            progress=None,
            stop_on_held=True,
        )
    except SessionHeld:
        raise ErasureBlocked(
            store.holds_blocking_participant(engine, tenant=tenant, participant_index=index)
        ) from None
    return report


# --- the deletion-record chain -----------------------------------------------------------------


@dataclass(frozen=True)
class DeletionChainResult:
    ok: bool
    count: int
    head: bytes
    first_bad_seq: int | None
    reason: str | None
    hashes: dict[int, bytes]


def verify_deletion_chain(engine: Engine, *, keep: set[int] | None = None) -> DeletionChainResult:
    """Recompute every deletion record's hash and link; ``keep`` names seqs whose hash to
    return (the checkpoint verifier compares them with signed heads)."""
    from .chain import GENESIS

    prev = GENESIS
    expected_seq = 0
    kept: dict[int, bytes] = {}
    for r in store.iter_deletion_records(engine):
        if r.seq != expected_seq:
            return DeletionChainResult(
                False,
                expected_seq,
                prev,
                expected_seq,
                f"deletion record {expected_seq} missing",
                kept,
            )
        digest = deletion_record_hash(
            prev_hash=r.prev_hash,
            seq=r.seq,
            run_id=r.run_id,
            session_id=r.session_id,
            tenant=r.tenant,
            policy=r.policy,
            reason=r.reason,
            event_count=r.event_count,
            final_hash=r.final_hash,
            deleted_at=r.deleted_at,
        )
        if r.prev_hash != prev:
            return DeletionChainResult(
                False, expected_seq, prev, r.seq, "deletion record prev_hash mismatch", kept
            )
        if digest != r.hash:
            return DeletionChainResult(
                False, expected_seq, prev, r.seq, "deletion record altered (hash mismatch)", kept
            )
        prev = digest
        if keep is not None and r.seq in keep:
            kept[r.seq] = digest
        expected_seq += 1
    return DeletionChainResult(True, expected_seq, prev, None, None, kept)
