"""Planning a retention run and executing the plan."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ..keys import KeyProvider
from ..settings import Settings
from ..store import locks, purges
from .execute import execute_run
from .guards import (
    DEFAULT_BATCH_SIZE,
    ClockAhead,
    check_floor,
    load_keys,
    log,
    signer_for,
    tampered_tenants,
)
from .report import Progress, RunReport

if TYPE_CHECKING:
    from ..integrity.checkpoints import CheckpointSink


def plan_retention(
    engine: Engine, settings: Settings, *, now: datetime | None = None, tenant: str | None = None
) -> RunReport:
    """What a run would delete at ``now`` (default: the database's clock). A later ``now``
    may be planned (what will be due by then) but never executed (:class:`ClockAhead`)."""
    check_floor(settings)
    if now is None:
        now = locks.db_clock(engine)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    candidates, held = purges.expired_candidates(
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
    db_now = locks.db_clock(engine)
    if plan.now > db_now:
        raise ClockAhead(plan.now, db_now)
    keys = key_provider or load_keys(settings)
    signer = signer_for(keys)
    for t, problems in tampered_tenants(engine, signer, settings, plan.tenant).items():
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
    execute_run(
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
