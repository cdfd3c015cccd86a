"""Executing a run: the run row and its lock, shred / delete / mark per session, the checkpoint."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ..integrity.ledgers import Signer
from ..keys import KeyProvider
from ..settings import Settings
from ..store import deletions, month_drop, purge_rows, purges, runs
from ..store.purges import SessionHeld
from .guards import RetentionRefused, log
from .report import Progress, RunInterrupted, RunReport

if TYPE_CHECKING:
    from ..integrity.checkpoints import CheckpointSink


def execute_run(
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
    report.runs_marked_interrupted = runs.mark_dead_runs_interrupted(engine)
    for dead in report.runs_marked_interrupted:
        log.warning("retention: run %s had died without finishing; marked interrupted", dead)
    run_id = uuid.uuid4()
    lock = runs.RunLock(engine, run_id)
    try:
        report.run_id = runs.start_run(
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
            runs.finish_run(
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
    from ..integrity import checkpoints

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


def _drop_months(
    engine: Engine,
    report: RunReport,
    *,
    signer: Signer,
    settings: Settings,
    max_batches: int | None,
) -> tuple[int, set[uuid.UUID]]:
    """Whole months first (store/month_drop.py): each session's deletion record, then one
    DROP per month. Returns (batches used, sessions done). Anything that stops a month — a
    session not due, held, refused, an error — leaves it to the per-session path, which
    reports that session as it always has."""
    assert report.run_id is not None
    try:
        month_drop.ensure_months_ahead(engine, now=report.now)
    except Exception as exc:  # the writers' idle ticks create them too; the default catches
        log.warning("retention: months ahead not created (%s)", type(exc).__name__)
    batches = 0
    gone: set[uuid.UUID] = set()
    for plan in month_drop.droppable_months(engine, report.candidates, now=report.now):
        if max_batches is not None and batches >= max_batches:
            break
        records: list[deletions.DeletionRecord] = []
        try:
            whole = month_drop.shred_month(
                engine,
                plan,
                records,
                run_id=report.run_id,
                now=report.now,
                signer=signer,
                default=settings.retention_default,
                floor=settings.retention_floor,
            )
            dropped = month_drop.drop_month(engine, plan) if whole else None
        except deletions.ChainTailInvalid:
            continue  # the per-session path stops the run, saying why
        except Exception as exc:
            log.warning(
                "retention: month %s left to the per-session purge (%s)",
                plan.month.suffix,
                type(exc).__name__,
            )
            continue
        finally:
            report.sessions_shredded += len(records)
            report.deletion_records += records
        batches += 1
        if dropped is None:
            continue
        events, marked = dropped
        report.events_deleted += events
        report.sessions_deleted += marked
        report.months_dropped.append(plan.month.suffix[1:])
        gone |= set(plan.sessions)
        log.info("retention: month %s dropped (%d events)", plan.month.suffix, events)
    return batches, gone


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
    candidates = report.candidates
    if reason == "retention":
        batches, gone = _drop_months(
            engine, report, signer=signer, settings=settings, max_batches=max_batches
        )
        candidates = [c for c in candidates if c.session_id not in gone]
    total = len(candidates)
    for i, c in enumerate(candidates):
        if max_batches is not None and batches >= max_batches:
            report.complete = False
            break
        step = "shred"
        try:
            if c.status in ("open", "closed"):
                step = "check the basis and shred"
                record = purges.shred_session(
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
                n = purge_rows.delete_event_batch(engine, c.session_id, batch_size=batch_size)
                batches += 1
                report.events_deleted += n
                if progress is not None:
                    progress(i, total, report.events_deleted)
                if n < batch_size:
                    break
            if not report.complete:
                break
            step = "mark purged"
            if purge_rows.mark_purged(engine, c.session_id):
                report.sessions_deleted += 1
        except SessionHeld:
            # A hold arrived after the candidates were chosen: it wins.
            report.sessions_skipped_held += 1
            if stop_on_held:
                raise
        except purges.NotDue as exc:
            report.sessions_not_due += 1
            log.info("retention: session %s kept: %s", c.session_id, exc)
        except purges.BasisRefused as exc:
            report.errors += 1
            log.error(
                "retention: session %s not deleted at step %r: %s; "
                "investigate with `auditagent verify --all --checkpoints DIR`",
                c.session_id,
                step,
                exc,
            )
        except deletions.ChainTailInvalid as exc:
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
