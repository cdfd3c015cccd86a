"""Retention runs (``retention_runs``) and the lock that tells a live run from a dead one."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, any_, func, insert, select, update

from ._sql import uuid_array
from .locks import RUN_LOCK_CLASS
from .models import RetentionRunRow

_RUNS = RetentionRunRow.__table__


def _run_lock(fn: str, run_id: uuid.UUID) -> Select[tuple[Any]]:
    """``SELECT fn(class, hashtext(run id))``: the run's session-level lock."""
    return select(getattr(func, fn)(RUN_LOCK_CLASS, func.hashtext(str(run_id))))


class RunLock:
    """A session-level advisory lock held, on its own connection, for as long as a run lives.
    A crashed or killed run's connection closes and frees it: that is how the next run knows
    a ``running`` row is dead."""

    def __init__(self, engine: Engine, run_id: uuid.UUID) -> None:
        self._conn = engine.connect()
        try:
            self._conn.execute(_run_lock("pg_advisory_lock", run_id))
            self._conn.commit()
        except BaseException:
            self._conn.close()
            raise
        self.run_id = run_id

    def release(self) -> None:
        try:
            self._conn.execute(_run_lock("pg_advisory_unlock", self.run_id))
            self._conn.commit()
        finally:
            self._conn.close()


def mark_dead_runs_interrupted(engine: Engine) -> list[uuid.UUID]:
    """Runs still ``running`` whose process is gone (killed, SIGKILL, power loss) become
    ``interrupted``; a live run's lock is taken, so it is left alone."""
    marked: list[uuid.UUID] = []
    with engine.connect() as conn:
        running = [
            r[0] for r in conn.execute(select(_RUNS.c.id).where(_RUNS.c.status == "running"))
        ]
        conn.commit()
        for run_id in running:
            got = conn.execute(_run_lock("pg_try_advisory_lock", run_id)).scalar_one()
            if not got:
                conn.commit()
                continue
            try:
                n = conn.execute(
                    update(RetentionRunRow)
                    .where(RetentionRunRow.id == run_id, RetentionRunRow.status == "running")
                    .values(status="interrupted", finished_at=func.clock_timestamp())
                ).rowcount
                conn.commit()
                if n:
                    marked.append(run_id)
            finally:
                conn.execute(_run_lock("pg_advisory_unlock", run_id))
                conn.commit()
    return marked


def start_run(
    engine: Engine,
    *,
    dry_run: bool,
    tenant: str | None,
    trigger: str,
    requested_by: str | None,
    reason: str | None,
    started_at: datetime | None = None,
    sessions_matched: int = 0,
    run_id: uuid.UUID | None = None,
) -> uuid.UUID:
    run_id = run_id or uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            insert(RetentionRunRow).values(
                id=run_id,
                started_at=started_at if started_at is not None else func.clock_timestamp(),
                dry_run=dry_run,
                tenant=tenant,
                trigger=trigger,
                status="running",
                requested_by=requested_by,
                reason=reason,
                sessions_matched=sessions_matched,
            )
        )
    return run_id


def finish_run(
    engine: Engine,
    run_id: uuid.UUID,
    *,
    status: str,
    sessions_deleted: int,
    events_deleted: int,
    sessions_skipped_held: int,
    errors: int,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(RetentionRunRow)
            .where(RetentionRunRow.id == run_id)
            .values(
                finished_at=func.clock_timestamp(),
                status=status,
                sessions_deleted=sessions_deleted,
                events_deleted=events_deleted,
                sessions_skipped_held=sessions_skipped_held,
                errors=errors,
            )
        )


def get_run(engine: Engine, run_id: uuid.UUID) -> Any | None:
    with engine.connect() as conn:
        return conn.execute(select(_RUNS).where(_RUNS.c.id == run_id)).first()


def list_runs(
    engine: Engine,
    *,
    ids: Sequence[uuid.UUID] | None = None,
    tenant: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Any]:
    """Runs (not dry runs) named by ``ids``, or scoped to ``tenant`` / started in [start, end)."""
    stmt = select(_RUNS).where(~_RUNS.c.dry_run)
    if ids is not None:
        stmt = stmt.where(_RUNS.c.id == any_(uuid_array(ids)))
    if tenant is not None:
        stmt = stmt.where(_RUNS.c.tenant == tenant)
    if start is not None:
        stmt = stmt.where(_RUNS.c.started_at >= start)
    if end is not None:
        stmt = stmt.where(_RUNS.c.started_at < end)
    with engine.connect() as conn:
        return list(conn.execute(stmt.order_by(_RUNS.c.started_at, _RUNS.c.id)).all())
