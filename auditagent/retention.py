"""Retention policies, legal holds, erasure (GDPR Art. 17) and retention runs.

A run is planned, then executed. The plan lists the sessions whose end time plus their policy
(or the default) — never less than the floor, in calendar terms — lies before the run's clock
(the database's own clock; a clock ahead of it is refused) and that no unreleased legal hold
covers. Executing a plan deletes at most those sessions, each in separate committed
transactions:

1. **shred** — under the hold lock, re-check the hold and that the session is still due (end
   time unchanged since the plan and confirmed by its chained close record, the policy in
   force, the floor), append its deletion record — hash-chained, carrying that basis and the
   real time of deletion, signed with the checkpoint key — destroy the wrapped data key and
   mark the session ``shredded``; from here on its ciphertext is unreadable everywhere;
2. **delete** its events in batches of ``batch_size`` rows (the only path the append-only
   trigger lets through);
3. **mark** it ``purged``.

Each step is idempotent, so a run that is interrupted anywhere is finished by running again:
``shredded`` sessions are always picked up, and so are rows that reached a ``purged`` session
afterwards. A run holds a lock for its lifetime; a run whose process died (SIGKILL) is marked
``interrupted`` by the next one. Every run and erasure ends with a signed global checkpoint.

Policy and hold changes are signed entries of a change log; a run refuses to start while the
policy and hold tables disagree with it. All SQL lives in :mod:`auditagent.store.retention`;
the checks are in :mod:`auditagent.retention_proof`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Engine

from .errors import AuditagentError, Conflict, NotFound
from .keys import KeyProvider
from .period import RetentionPeriod
from .retention_proof import DeletionChainResult, verify_changes, verify_deletion_chain
from .settings import Settings
from .store import retention as store
from .store.retention import (
    Candidate,
    DeletionRecord,
    Hold,
    Policy,
    SessionHeld,
    Signer,
    deletion_record_hash,
)

if TYPE_CHECKING:
    from .checkpoints import CheckpointSink

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Candidate",
    "ClockAhead",
    "DeletionChainResult",
    "DeletionRecord",
    "ErasureBlocked",
    "Hold",
    "HoldScope",
    "MatchesNothing",
    "Policy",
    "PolicyBelowFloor",
    "RetentionPeriod",
    "RetentionRefused",
    "RunReport",
    "UnknownTenant",
    "adopt_legacy",
    "check_floor",
    "create_hold",
    "deletion_record_hash",
    "erase_participant",
    "execute_plan",
    "plan_retention",
    "release_hold",
    "remove_policy",
    "run_retention",
    "set_policy",
    "signer_for",
    "verify_deletion_chain",
]

log = logging.getLogger("auditagent.retention")

DEFAULT_BATCH_SIZE = 10_000

HoldScope = Literal["session", "participant", "tenant"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def signer_for(key_provider: KeyProvider) -> Signer:
    """Deletion records and change-log entries are signed with the checkpoint key."""
    return Signer.from_private(key_provider.signing_key())


# --- errors -----------------------------------------------------------------------------------


class PolicyBelowFloor(AuditagentError):
    """A policy (or the default) would keep records for less than the configured floor."""

    def __init__(self, keep: RetentionPeriod | int, floor: RetentionPeriod | int) -> None:
        keep = keep if isinstance(keep, RetentionPeriod) else RetentionPeriod(days=keep)
        floor = floor if isinstance(floor, RetentionPeriod) else RetentionPeriod(days=floor)
        super().__init__(
            f"{keep} is below the retention floor of {floor.describe()}",
            fix="keep records at least as long as AUDITAGENT_RETENTION_FLOOR_DAYS/_MONTHS/_YEARS "
            "(the floor is an operator setting, not a per-policy choice)",
        )
        self.keep = keep
        self.floor = floor


class ClockAhead(AuditagentError):
    """A run's clock is later than the database's: it would delete early."""

    def __init__(self, now: datetime, db_now: datetime) -> None:
        super().__init__(
            f"the run's clock ({now.isoformat()}) is later than the database's "
            f"({db_now.isoformat()}); a run never deletes ahead of time",
            fix="omit --now (use it only to look back, or to plan with --dry-run)",
        )


class MatchesNothing(NotFound):
    """A hold or an erasure that covers no session."""


class UnknownTenant(NotFound):
    def __init__(self, tenant: str) -> None:
        super().__init__(
            f"no tenant {tenant!r}: it has no sessions, policies or API keys",
            fix="check the tenant name",
        )


class RetentionRefused(Conflict):
    """The proof retention builds on does not verify, so nothing is deleted."""


def check_floor(settings: Settings) -> None:
    """Refuse a default retention under the floor (the settings validator already does; this
    guards settings built another way)."""
    if not settings.retention_default.covers(settings.retention_floor):
        raise PolicyBelowFloor(settings.retention_default, settings.retention_floor)


def _tampered_tenants(
    engine: Engine, signer: Signer, settings: Settings, tenant: str | None
) -> dict[str, list[str]]:
    """Tenants whose policies or holds disagree with the signed change log. A log that does
    not verify itself, or a problem with ``tenant`` (the one tenant this run or erasure is
    for), refuses the whole run; otherwise the caller leaves those tenants alone."""
    log_ = verify_changes(engine, public_key=signer.public, floor=settings.retention_floor)
    problems = log_.problems if not log_.log_ok else log_.tenants.get(tenant or "", [])
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RetentionRefused(
            f"retention refused: {problems[0]}{more}",
            fix="nothing was deleted; investigate with `auditagent verify --all --checkpoints DIR`",
        )
    return log_.tenants


# --- policies ---------------------------------------------------------------------------------


def _period(
    keep_days: int | None, keep_months: int | None, keep_years: int | None
) -> RetentionPeriod:
    for name, v in (
        ("keep_days", keep_days),
        ("keep_months", keep_months),
        ("keep_years", keep_years),
    ):
        if v is not None and v < 0:
            raise AuditagentError(f"{name} cannot be negative", fix="pass a positive number")
    period = RetentionPeriod.of(years=keep_years, months=keep_months, days=keep_days)
    if period.empty:
        raise AuditagentError(
            "a policy must keep records for at least a day",
            fix="pass --keep-years, --keep-months and/or --keep-days",
        )
    return period


def set_policy(
    engine: Engine,
    settings: Settings,
    *,
    tenant: str,
    agent: str | None,
    keep_days: int | None = None,
    keep_months: int | None = None,
    keep_years: int | None = None,
    created_by: str,
    key_provider: KeyProvider | None = None,
    sink: CheckpointSink | None = None,
) -> Policy:
    """Write a new version of the policy of (tenant, agent), kept in calendar terms. The floor
    is never undercut: a regulated user who needs a shorter period changes the floor setting
    deliberately."""
    period = _period(keep_days, keep_months, keep_years)
    if not period.covers(settings.retention_floor):
        raise PolicyBelowFloor(period, settings.retention_floor)
    keys = key_provider or _load_keys(settings)
    policy = store.put_policy(
        engine,
        signer_for(keys),
        tenant=tenant,
        agent=agent,
        period=period,
        created_by=created_by,
        floor=settings.retention_floor,
    )
    note_changes(engine, keys, sink)
    return policy


def remove_policy(
    engine: Engine,
    settings: Settings,
    *,
    tenant: str,
    agent: str | None,
    removed_by: str,
    key_provider: KeyProvider | None = None,
    sink: CheckpointSink | None = None,
) -> Policy:
    """Remove the policy of (tenant, agent) (a ``deleted`` version); the tenant-wide policy or
    the default then applies. Returns the version that was in force."""
    keys = key_provider or _load_keys(settings)
    removed = store.delete_policy(
        engine,
        signer_for(keys),
        tenant=tenant,
        agent=agent,
        deleted_by=removed_by,
        floor=settings.retention_floor,
    )
    if removed is None:
        what = f"tenant {tenant!r}" + (f" agent {agent!r}" if agent else "")
        raise NotFound(
            f"no retention policy for {what}",
            fix="list them with `auditagent retention policy list` or GET /v1/retention/policies",
        )
    note_changes(engine, keys, sink)
    return removed


def note_changes(engine: Engine, keys: KeyProvider, sink: CheckpointSink | None) -> str | None:
    """Sign the change log's new head into ``sink`` (best effort: the change itself is made
    and signed already; a missing note only narrows what a later truncation would show)."""
    if sink is None:
        return None
    from . import checkpoints

    try:
        return checkpoints.write_changes_checkpoint(engine, keys, sink)
    except Exception as exc:
        log.error(
            "retention: the change-log checkpoint was not written (%s); run "
            "`auditagent checkpoint write`",
            type(exc).__name__,
        )
        return None


def _load_keys(settings: Settings) -> KeyProvider:
    from .keys import load_key_provider

    return load_key_provider(settings)


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
    allow_empty: bool = False,
    sink: CheckpointSink | None = None,
) -> Hold:
    """Hold one session, one participant (by blind index, so no identity is stored) or a
    whole tenant. A held session survives retention runs and erasure until released.

    The returned hold says how many sessions it covers (``sessions_covered``). A hold on an
    unknown tenant is refused; one that covers no session is refused too unless
    ``allow_empty`` (a participant held before their first call, say)."""
    if not reason.strip():
        raise AuditagentError("a legal hold needs a reason", fix="pass --reason / reason")
    if not store.tenant_known(engine, tenant):
        raise UnknownTenant(tenant)
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
    covered = store.sessions_covered(
        engine,
        scope=scope,
        tenant=tenant,
        session_id=session_id,
        participant_index=participant_index,
    )
    if covered == 0 and not allow_empty:
        what = "this participant" if scope == "participant" else f"tenant {tenant!r}"
        raise MatchesNothing(
            f"the hold would cover no session: {what} has none in tenant {tenant!r} "
            "(a mistyped identity, or the wrong keyring?)",
            fix="check the identity and AUDITAGENT_KEYRING_PATH, or pass --allow-empty / "
            "allow_empty to hold it before any session exists",
        )
    hold = store.create_hold(
        engine,
        signer_for(key_provider),
        scope=scope,
        tenant=tenant,
        session_id=session_id if scope == "session" else None,
        participant_index=participant_index,
        reason=reason,
        created_by=created_by,
    )
    note_changes(engine, key_provider, sink)
    return hold


def release_hold(
    engine: Engine,
    hold_id: uuid.UUID,
    *,
    released_by: str,
    reason: str,
    tenant: str | None,
    key_provider: KeyProvider,
    sink: CheckpointSink | None = None,
) -> Hold:
    """Release a hold (recorded and signed: who, when, why). ``tenant`` limits which holds the
    caller may see; another tenant's hold is reported as missing. The returned hold says how
    many sessions it covered when released."""
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
    released = store.release_hold(
        engine, signer_for(key_provider), hold_id, released_by=released_by, reason=reason
    )
    assert released is not None
    note_changes(engine, key_provider, sink)
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
    sessions_not_due: int = 0
    errors: int = 0
    complete: bool = True
    deletion_records: list[DeletionRecord] = field(default_factory=list)
    tenant: str | None = None
    runs_marked_interrupted: list[uuid.UUID] = field(default_factory=list)
    checkpoint: str | None = None
    checkpoint_error: str | None = None
    tenants_refused: dict[str, int] = field(default_factory=dict)
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


def plan_retention(
    engine: Engine, settings: Settings, *, now: datetime | None = None, tenant: str | None = None
) -> RunReport:
    """What a run would delete at ``now`` (default: the database's clock). A later ``now``
    may be planned (what will be due by then) but never executed (:class:`ClockAhead`)."""
    check_floor(settings)
    if now is None:
        now = store.db_clock(engine)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    candidates, held = store.expired_candidates(
        engine,
        now=now,
        tenant=tenant,
        default=settings.retention_default,
        floor=settings.retention_floor,
    )
    return RunReport(
        run_id=None,
        dry_run=True,
        now=now,
        candidates=candidates,
        sessions_skipped_held=held,
        tenant=tenant,
    )


def execute_plan(
    engine: Engine,
    settings: Settings,
    plan: RunReport,
    *,
    key_provider: KeyProvider | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    trigger: str = "cli",
    requested_by: str | None = None,
    progress: Progress | None = None,
    sink: CheckpointSink | None = None,
) -> RunReport:
    """Delete what ``plan`` lists — at most that, each session re-checked when it is shredded
    — and turn the plan into the run's report (updated in place, so a caller holding it sees
    how far an interrupted run got). Ends with a signed global checkpoint."""
    if plan.run_id is not None or not plan.dry_run:
        raise ValueError("this plan was executed already")
    check_floor(settings)
    db_now = store.db_clock(engine)
    if plan.now > db_now:
        raise ClockAhead(plan.now, db_now)
    keys = key_provider or _load_keys(settings)
    signer = signer_for(keys)
    for t, problems in _tampered_tenants(engine, signer, settings, plan.tenant).items():
        refused = [c for c in plan.candidates if c.tenant == t]
        if not refused:
            continue
        plan.candidates = [c for c in plan.candidates if c.tenant != t]
        plan.tenants_refused[t] = len(refused)
        plan.errors += len(refused)
        log.error(
            "retention: %d sessions of tenant %r not deleted: %s; investigate with "
            "`auditagent verify --all --checkpoints DIR`",
            len(refused),
            t,
            problems[0],
        )
    plan.dry_run = False
    _run(
        engine,
        settings,
        plan,
        keys=keys,
        signer=signer,
        reason="retention",
        trigger=trigger,
        requested_by=requested_by,
        run_reason=None,
        batch_size=batch_size,
        max_batches=max_batches,
        progress=progress,
        sink=sink,
    )
    return plan


def run_retention(
    engine: Engine,
    settings: Settings,
    *,
    key_provider: KeyProvider | None = None,
    now: datetime | None = None,
    tenant: str | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    trigger: str = "cli",
    requested_by: str | None = None,
    progress: Progress | None = None,
    sink: CheckpointSink | None = None,
) -> RunReport:
    """Plan and (unless ``dry_run``) execute a run; see :func:`plan_retention` and
    :func:`execute_plan`. ``max_batches`` stops after that many event batches, leaving the run
    resumable (tests, and operators with a maintenance window)."""
    plan = plan_retention(engine, settings, now=now, tenant=tenant)
    if dry_run:
        return plan
    return execute_plan(
        engine,
        settings,
        plan,
        key_provider=key_provider,
        batch_size=batch_size,
        max_batches=max_batches,
        trigger=trigger,
        requested_by=requested_by,
        progress=progress,
        sink=sink,
    )


def _run(
    engine: Engine,
    settings: Settings,
    report: RunReport,
    *,
    keys: KeyProvider,
    signer: Signer,
    reason: str,
    trigger: str,
    requested_by: str | None,
    run_reason: str | None,
    batch_size: int,
    max_batches: int | None,
    progress: Progress | None,
    sink: CheckpointSink | None,
    stop_on_held: bool = False,
) -> None:
    report.runs_marked_interrupted = store.mark_dead_runs_interrupted(engine)
    for dead in report.runs_marked_interrupted:
        log.warning("retention: run %s had died without finishing; marked interrupted", dead)
    run_id = uuid.uuid4()
    lock = store.RunLock(engine, run_id)
    try:
        report.run_id = store.start_run(
            engine,
            dry_run=False,
            tenant=report.tenant,
            trigger=trigger,
            requested_by=requested_by,
            reason=run_reason,
            sessions_matched=report.matched,
            run_id=run_id,
        )
        try:
            _purge(
                engine,
                report,
                signer=signer,
                settings=settings,
                reason=reason,
                batch_size=batch_size,
                max_batches=max_batches,
                progress=progress,
                stop_on_held=stop_on_held,
            )
        except BaseException:
            # A crash, Ctrl-C, SIGTERM or a held session during erasure: what is done stays
            # done, and the run says it stopped.
            report.complete = False
            raise
        finally:
            store.finish_run(
                engine,
                run_id,
                status=(
                    "interrupted"
                    if not report.complete
                    else ("complete" if not report.errors else "partial")
                ),
                sessions_deleted=report.sessions_deleted,
                events_deleted=report.events_deleted,
                sessions_skipped_held=report.sessions_skipped_held,
                errors=report.errors,
            )
    finally:
        lock.release()
        _checkpoint(engine, keys, settings, sink, report)


def _checkpoint(
    engine: Engine,
    keys: KeyProvider,
    settings: Settings,
    sink: CheckpointSink | None,
    report: RunReport,
) -> None:
    """Sign what the run left (session heads, the deletion chain, the change log) into the
    checkpoint sink, outside the database. A failure makes the run not ok, never undoes it."""
    from . import checkpoints

    try:
        where, _ = checkpoints.write_global_checkpoint(
            engine, keys, sink or checkpoints.default_sink(settings)
        )
        report.checkpoint = where
    except Exception as exc:
        report.checkpoint_error = type(exc).__name__
        log.error(
            "retention: run %s: the checkpoint was not written (%s); run "
            "`auditagent checkpoint write`",
            report.run_id,
            type(exc).__name__,
        )


def _purge(
    engine: Engine,
    report: RunReport,
    *,
    signer: Signer,
    settings: Settings,
    reason: str,
    batch_size: int,
    max_batches: int | None,
    progress: Progress | None,
    stop_on_held: bool,
) -> None:
    assert report.run_id is not None
    batches = 0
    total = len(report.candidates)
    for i, c in enumerate(report.candidates):
        if max_batches is not None and batches >= max_batches:
            report.complete = False
            break
        step = "shred"
        try:
            if c.status in ("open", "closed"):
                step = "check the basis and shred"
                record = store.shred_session(
                    engine,
                    c.session_id,
                    run_id=report.run_id,
                    reason=reason,
                    now=report.now,
                    signer=signer,
                    default=settings.retention_default,
                    floor=settings.retention_floor,
                    planned_ended_at=c.ended_at if reason == "retention" else None,
                )
                if record is not None:
                    report.sessions_shredded += 1
                    report.deletion_records.append(record)
            step = "delete events"
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
            step = "mark purged"
            if store.mark_purged(engine, c.session_id):
                report.sessions_deleted += 1
        except SessionHeld:
            # A hold arrived after the candidates were chosen: it wins.
            report.sessions_skipped_held += 1
            if stop_on_held:
                raise
        except store.NotDue as exc:
            report.sessions_not_due += 1
            log.info("retention: session %s kept: %s", c.session_id, exc)
        except store.BasisRefused as exc:
            report.errors += 1
            log.error(
                "retention: session %s not deleted at step %r: %s; "
                "investigate with `auditagent verify --all --checkpoints DIR`",
                c.session_id,
                step,
                exc,
            )
        except store.ChainTailInvalid as exc:
            raise RetentionRefused(
                f"retention stopped: {exc}",
                fix="nothing more was deleted; investigate with "
                "`auditagent verify --all --checkpoints DIR`",
            ) from None
        except RunInterrupted:
            raise
        except Exception as exc:
            report.errors += 1
            log.error(
                "retention: session %s failed at step %r (%s); rerun to finish it",
                c.session_id,
                step,
                type(exc).__name__,
            )
        if progress is not None:
            progress(i + 1, total, report.events_deleted)


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
    settings: Settings,
    tenant: str,
    participant: str,
    reason: str,
    requested_by: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    allow_empty: bool = False,
    sink: CheckpointSink | None = None,
) -> RunReport:
    """Crypto-shred, then purge, every session of ``participant`` in ``tenant``.

    Refuses with ``ErasureBlocked`` (naming the hold) while a hold covers any of it, with
    ``UnknownTenant`` for a tenant that does not exist, and with ``MatchesNothing`` when the
    participant has no session left unless ``allow_empty`` (erasing again is then a no-op).
    Sessions still open are shredded too: records written to them afterwards can never be
    read, and the next retention run deletes them. Rerunning finishes an interrupted erasure.
    Ends with a signed global checkpoint."""
    if not reason.strip():
        raise AuditagentError("an erasure needs a reason", fix="pass --reason / reason")
    if not store.tenant_known(engine, tenant):
        raise UnknownTenant(tenant)
    index = key_provider.blind_index(tenant=tenant, value=participant)
    holds = store.holds_blocking_participant(engine, tenant=tenant, participant_index=index)
    if holds:
        raise ErasureBlocked(holds)
    candidates = store.participant_sessions(engine, tenant=tenant, participant_index=index)
    if not candidates and not allow_empty:
        raise MatchesNothing(
            f"the erasure matches no session: this participant has none left in tenant "
            f"{tenant!r} (already erased, a mistyped identity, or the wrong keyring?)",
            fix="check the identity and AUDITAGENT_KEYRING_PATH, or pass --allow-empty / "
            "allow_empty",
        )
    signer = signer_for(key_provider)
    _tampered_tenants(engine, signer, settings, tenant)
    report = RunReport(
        run_id=None,
        dry_run=False,
        now=store.db_clock(engine),
        candidates=candidates,
        tenant=tenant,
    )
    try:
        _run(
            engine,
            settings,
            report,
            keys=key_provider,
            signer=signer,
            reason="erasure",
            trigger="erasure",
            requested_by=requested_by,
            run_reason=reason,
            batch_size=batch_size,
            max_batches=max_batches,
            progress=None,
            sink=sink,
            stop_on_held=True,
        )
    except SessionHeld:
        raise ErasureBlocked(
            store.holds_blocking_participant(engine, tenant=tenant, participant_index=index)
        ) from None
    if report.complete:
        _sweep_late_rows(engine, report, batch_size=batch_size)
    return report


def _sweep_late_rows(engine: Engine, report: RunReport, *, batch_size: int) -> None:
    """Rows a live recorder wrote to a session while it was being erased."""
    for c in report.candidates:
        while store.events_left(engine, c.session_id):
            n = store.delete_event_batch(engine, c.session_id, batch_size=batch_size)
            report.events_deleted += n
            if n == 0:
                break
        if store.mark_purged(engine, c.session_id):
            report.sessions_deleted += 1


# --- adopting what predates signed retention --------------------------------------------------


@dataclass
class Adopted:
    policies: list[Policy] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    deletion_records: int = 0

    @property
    def empty(self) -> bool:
        return not self.policies and not self.holds and not self.deletion_records


def adopt_legacy(
    engine: Engine,
    settings: Settings,
    *,
    adopted_by: str,
    key_provider: KeyProvider | None = None,
    dry_run: bool = False,
    sink: CheckpointSink | None = None,
) -> Adopted:
    """After upgrading to migration 0017: sign into the change log the policies and holds that
    have no entry there, and vouch for the unsigned deletion records written before it (a
    prefix of the chain), so verification and runs accept them. An operator's deliberate act
    with the checkpoint key: run it once, right after the upgrade, and read what it lists —
    anything it adopts is trusted from then on."""
    keys = key_provider or _load_keys(settings)
    signer = signer_for(keys)
    log_ = verify_changes(engine, public_key=signer.public, compare_tables=False)
    if not log_.log_ok:
        raise RetentionRefused(
            f"the change log does not verify: {log_.problems[0]}",
            fix="nothing was adopted; investigate with `auditagent verify --all --checkpoints DIR`",
        )
    signed_policies = log_.policy_versions()
    signed_holds = {c.subject for c in log_.changes if c.action in ("hold.create", "hold.adopt")}
    out = Adopted(
        policies=[p for p in store.all_policy_rows(engine) if p.id not in signed_policies],
        holds=[h for h in store.all_hold_rows(engine) if h.id not in signed_holds],
    )
    prefix = store.unsigned_deletion_prefix(engine)
    already = log_.adopted_deletions
    if prefix is not None and (already is None or already[0] < prefix[0]):
        chain = verify_deletion_chain(engine)
        if not chain.ok:
            raise RetentionRefused(
                f"the deletion records do not verify: {chain.reason} at seq {chain.first_bad_seq}",
                fix="nothing was adopted; investigate before vouching for them",
            )
        out.deletion_records = prefix[0]
    if dry_run or out.empty:
        return out
    floor = settings.retention_floor.to_json()
    for p in sorted(out.policies, key=lambda p: (p.tenant, p.agent or "", p.version)):
        store.append_change(
            engine,
            signer,
            action="policy.adopt",
            tenant=p.tenant,
            subject=p.id,
            actor=adopted_by,
            body={**p.body(), "floor": floor},
        )
    for h in sorted(out.holds, key=lambda h: (h.created_at, str(h.id))):
        store.append_change(
            engine,
            signer,
            action="hold.adopt",
            tenant=h.tenant,
            subject=h.id,
            actor=adopted_by,
            body=h.body(),
        )
        if h.released_at is not None:
            store.append_change(
                engine,
                signer,
                action="hold.release",
                tenant=h.tenant,
                subject=h.id,
                actor=adopted_by,
                body=h.release_body(),
            )
    if out.deletion_records:
        assert prefix is not None
        store.append_change(
            engine,
            signer,
            action=store.ADOPT_DELETIONS,
            tenant="",
            subject=uuid.UUID(int=0),
            actor=adopted_by,
            body={"count": prefix[0], "head": prefix[1].hex()},
        )
    note_changes(engine, keys, sink)
    return out
