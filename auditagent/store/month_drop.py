"""Retention by the month: drop a whole month partition of every table in ``GROWING_TABLES``
once every session that started in it is expired and none is held (issue 16).

Order, each step committed before the next, so an interrupted run resumes where it stopped:

1. each open/closed session of the month gets its signed deletion record and loses its data
   key, with every check a per-session purge makes (holds under a lock, the basis, the floor:
   ``purges.decide``), set-based, ``SHRED_CHUNK`` sessions a transaction — a dozen round trips
   per session is what makes a per-session purge slow;
2. one transaction re-checks, under row locks, that every session of the month is now
   ``shredded`` or ``purged``, then detaches and drops the month's partitions of ``events``,
   ``audio_chunks`` and ``search_index`` — the only statement that runs ``SET LOCAL
   auditagent.allow_purge = 'month'``, which the event trigger of migrations 0016/0018 asks of
   any ``DROP`` of a partition — deletes whatever of the month a table kept in its default
   partition, and marks the sessions ``purged``.

A month any of whose sessions is not a candidate (open, not expired, held, another tenant's in
a tenant-scoped run) is left to the per-session path; so are the current and future months and
the default partition. A row's ``session_started_at`` is its session's ``started_at`` (the
writer copies it; the sessions guard keeps ``started_at`` from changing), so the sessions of a
month are exactly the sessions whose start falls in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from ..integrity.ledgers import Signer
from ..period import RetentionPeriod
from . import search_rows
from .changes import changes_head
from .deletions import DeletionRecord, NewDeletion, append_deletions_on
from .locks import LOCK_HOLDS, clock, xact_lock
from .partitions import GROWING_TABLES, Month, months_present, partition_name
from .purge_rows import delete_month_leftovers_on
from .purges import SHRED_SELECT, BasisRefused, Candidate, NotDue, decide, period_params

SHRED_CHUNK = 1000
"""Sessions whose deletion records and key shreds share one transaction."""


@dataclass
class MonthPlan:
    month: Month
    sessions: list[uuid.UUID] = field(default_factory=list)
    """Every session that started in the month (candidates and already purged ones)."""
    to_shred: list[Candidate] = field(default_factory=list)


def droppable_months(
    engine: Engine, candidates: Sequence[Candidate], *, now: datetime
) -> list[MonthPlan]:
    """The past months of ``events`` every session of which is a candidate or purged."""
    by_id = {c.session_id: c for c in candidates}
    current = Month.of(now)
    plans = []
    with engine.connect() as conn:
        for m in months_present(conn, GROWING_TABLES[0]):
            if m >= current:
                continue
            rows = conn.execute(
                text("SELECT id, status FROM sessions WHERE started_at >= :s AND started_at < :e"),
                {"s": m.start, "e": m.end},
            ).all()
            if not rows or not all(r.id in by_id or r.status == "purged" for r in rows):
                continue
            plan = MonthPlan(m, sessions=[r.id for r in rows])
            plan.to_shred = [
                by_id[r.id] for r in rows if r.id in by_id and r.status in ("open", "closed")
            ]
            plans.append(plan)
    return plans


def shred_month(
    engine: Engine,
    plan: MonthPlan,
    into: list[DeletionRecord],
    *,
    run_id: uuid.UUID,
    now: datetime,
    signer: Signer,
    default: RetentionPeriod,
    floor: RetentionPeriod,
) -> bool:
    """Step 1 for every session of the month still to shred, ``SHRED_CHUNK`` sessions a
    transaction, set-based; each committed record is appended to ``into``. False when a
    session stops it (held, not due, refused; nothing of that chunk is written): chunks
    committed before stay done and the per-session path takes the month from there."""
    todo = list(plan.to_shred)
    for i in range(0, len(todo), SHRED_CHUNK):
        with engine.begin() as conn:
            records = _shred_chunk(
                conn,
                plan.month,
                todo[i : i + SHRED_CHUNK],
                run_id=run_id,
                now=now,
                signer=signer,
                default=default,
                floor=floor,
            )
        if records is None:
            return False
        into += records
    return True


def _shred_chunk(
    conn: Connection,
    month: Month,
    chunk: list[Candidate],
    *,
    run_id: uuid.UUID,
    now: datetime,
    signer: Signer,
    default: RetentionPeriod,
    floor: RetentionPeriod,
) -> list[DeletionRecord] | None:
    """What ``purges.shred_session`` does for one session, for ``chunk`` at once: the same checks
    (``purges.decide``), the same records, in a handful of statements."""
    ids = [c.session_id for c in chunk]
    planned = {c.session_id: c.ended_at for c in chunk}
    xact_lock(conn, LOCK_HOLDS)
    rows = conn.execute(
        text(
            f"{SHRED_SELECT} WHERE s.id = ANY(CAST(:ids AS uuid[])) ORDER BY s.id FOR UPDATE OF s"
        ),
        {"ids": ids, **period_params(default, floor)},
    ).all()
    # Every row of these sessions is in the month's partition (its key is their start).
    part = partition_name(GROWING_TABLES[0], month)
    stats = {
        r.session_id: r
        for r in conn.execute(
            text(
                "SELECT session_id, count(*) AS n, max(seq) AS last, "
                f"min(at) FILTER (WHERE kind = 'closed') AS closed_at FROM {part} "
                "WHERE session_id = ANY(CAST(:ids AS uuid[])) GROUP BY session_id"
            ),
            {"ids": ids},
        )
    }
    heads: dict[uuid.UUID, bytes] = {
        sid: bytes(h)
        for sid, h in conn.execute(
            text(
                f"SELECT e.session_id, e.hash FROM {part} e JOIN unnest("
                "CAST(:sids AS uuid[]), CAST(:seqs AS int[])) AS l(sid, seq) "
                "ON e.session_id = l.sid AND e.seq = l.seq"
            ),
            {"sids": list(stats), "seqs": [r.last for r in stats.values()]},
        ).tuples()
    }
    changes = changes_head(conn)
    items: list[NewDeletion] = []
    for s in rows:
        if s.status not in ("open", "closed"):
            continue  # shredded by an earlier run: its record exists
        if s.held:
            return None
        st = stats.get(s.id)
        try:
            policy, basis = decide(
                s,
                st.closed_at if st is not None else None,
                reason="retention",
                now=now,
                default=default,
                floor=floor,
                planned_ended_at=planned[s.id],
                changes=changes,
            )
        except (NotDue, BasisRefused):
            return None
        head = heads.get(s.id)
        items.append(
            NewDeletion(
                session_id=s.id,
                tenant=s.tenant,
                policy=policy[:256],
                reason="retention",
                event_count=int(st.n) if st is not None else 0,
                final_hash=head,
                basis=basis,
            )
        )
    if not items:
        return []
    deleted_at = clock(conn)
    records = append_deletions_on(conn, signer, items, run_id=run_id, deleted_at=deleted_at)
    shredded = [it.session_id for it in items]
    done = {"ids": shredded, "at": deleted_at}
    conn.execute(
        text(
            "UPDATE data_keys SET wrapped = NULL, shredded_at = :at "
            "WHERE session_id = ANY(CAST(:ids AS uuid[])) AND wrapped IS NOT NULL"
        ),
        done,
    )
    # The search index goes with the key, as in the per-session shred.
    search_rows.delete_for_sessions(conn, shredded)
    conn.execute(
        text(
            "UPDATE sessions SET status = 'shredded', updated_at = :at, "
            "ended_at = COALESCE(ended_at, :at), close_reason = COALESCE(close_reason, "
            "'retention') WHERE id = ANY(CAST(:ids AS uuid[]))"
        ),
        done,
    )
    return records


def drop_month(
    engine: Engine, plan: MonthPlan, *, lock_timeout: str = "5s"
) -> tuple[int, int] | None:
    """Detach and drop the month's partitions and mark its sessions purged, in one
    transaction; returns (events dropped, sessions marked purged), or None (nothing dropped)
    when a session of
    the month is not shredded or purged by now (a hold won, it was not due: the per-session
    path takes the month's other sessions)."""
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": lock_timeout})
        statuses = conn.execute(
            text(
                "SELECT id, status FROM sessions WHERE started_at >= :s AND started_at < :e "
                "ORDER BY id FOR UPDATE"
            ),
            {"s": plan.month.start, "e": plan.month.end},
        ).all()
        if any(r.status not in ("shredded", "purged") for r in statuses):
            return None
        events = _count(conn, partition_name(GROWING_TABLES[0], plan.month))
        _detach_and_drop(conn, plan.month)
        # Rows of the month another table keeps in its default partition (its month was not
        # created: rows were there first) go by the month's range — the dropped partitions
        # are gone, so only the default is scanned — in this commit, so the month is gone
        # whole (and ``purged`` means no audio is left either).
        delete_month_leftovers_on(conn, plan.month, [r.id for r in statuses])
        marked = conn.execute(
            text(
                "UPDATE sessions SET status = 'purged', participant_index = NULL, "
                "updated_at = clock_timestamp() "
                "WHERE started_at >= :s AND started_at < :e AND status = 'shredded'"
            ),
            {"s": plan.month.start, "e": plan.month.end},
        )
        return events, int(marked.rowcount or 0)


def _count(conn: Connection, name: str) -> int:
    if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is None:
        return 0
    return int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())


def _detach_and_drop(conn: Connection, month: Month) -> None:
    # The event trigger of migrations 0016/0018 refuses a partition's DROP without this flag;
    # only this transaction sets it, after every session's deletion record is committed.
    conn.execute(text("SET LOCAL auditagent.allow_purge = 'month'"))
    for table in GROWING_TABLES:
        name = partition_name(table, month)
        if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is None:
            continue
        conn.execute(text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
        conn.execute(text(f"DROP TABLE {name}"))


def ensure_months_ahead(engine: Engine, *, now: datetime, ahead: int = 2) -> list[str]:
    """Create this month and the next ``ahead`` for every growing table (the retention job's
    share of keeping months ahead of the writers); returns the partitions created."""
    from .partitions import ensure_months

    made: list[str] = []
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('lock_timeout', '5s', true)"))
        for table in GROWING_TABLES:
            made += [
                partition_name(table, m)
                for m in ensure_months(conn, table, Month.of(now).ahead(ahead))
            ]
    return made


def sessions_of(plans: Iterable[MonthPlan]) -> set[uuid.UUID]:
    return {sid for p in plans for sid in p.sessions}
