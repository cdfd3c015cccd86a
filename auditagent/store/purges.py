"""What a retention run or erasure deletes, and the three steps that delete it (steps 2 and
3 in ``store/purge_rows.py``, a whole month's in ``store/month_drop.py``).

Per session, each step its own committed transaction (an interrupted run resumes there):

1. shred: re-check legal holds (under a lock) and, for retention, that the session is still
   due (its end time agrees with its chained close record, the current policy and the floor);
   append its deletion record (hash-chained, carrying that basis, signed with the checkpoint
   key); then destroy the wrapped data key and mark the session ``shredded`` — one transaction.
   The database refuses the last two without the record (migration 0017's guards);
2. delete events (and the call audio) in batches of ``batch_size`` rows;
3. mark the session ``purged`` once no event of it is left.

Statements (built once, in ``store/purge_statements.py``) are SQLAlchemy Core over the typed
models, as everywhere in the store, except the expiry SQL (policy in force by LATERAL join,
``make_interval``, the hold check), kept as PostgreSQL text because that is what it is reviewed
as, and the ``SET LOCAL`` guards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from ..integrity.encoding import ts
from ..integrity.ledgers import Signer
from ..period import RetentionPeriod
from . import search_rows
from .changes import changes_head
from .deletions import DeletionRecord, append_deletion_on
from .locks import LOCK_HOLDS, clock, xact_lock
from .purge_statements import (
    _EVENT_STATS,
    _EXPIRES,
    _LAST_EVENT,
    _MARK_SHREDDED,
    _POLICY_JOIN,
    _SHRED_BASIS,
    _SHRED_KEY,
    HELD_SQL,
    SHRED_SELECT,
)

__all__ = ["SHRED_SELECT", "decide", "period_params", "shred_session"]


@dataclass(frozen=True)
class Candidate:
    """A session the run will delete (or finish deleting, when already ``shredded``, or whose
    late rows it removes, when ``purged``)."""

    session_id: uuid.UUID
    tenant: str
    status: str
    ended_at: datetime | None
    event_count: int
    policy: str
    expires_at: datetime | None = None


def period_params(default: RetentionPeriod, floor: RetentionPeriod) -> dict[str, int]:
    return {
        "dy": default.years,
        "dm": default.months,
        "dd": default.days,
        "fy": floor.years,
        "fm": floor.months,
        "fd": floor.days,
    }


def _policy_name(row: Any, default: RetentionPeriod) -> str:
    if row.policy_id is None:
        return f"default {default}"
    period = RetentionPeriod(row.keep_years, row.keep_months, row.keep_days)
    who = f"tenant={row.tenant}" + (f" agent={row.policy_agent}" if row.policy_agent else "")
    return f"{who} {period}"


def _expired_where(tenant: str | None) -> str:
    where = (
        "((s.status = 'closed' AND s.ended_at IS NOT NULL "
        f"AND {_EXPIRES} < :now) OR s.status = 'shredded' "
        "OR (s.status = 'purged' AND EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id)))"
    )
    if tenant is not None:
        where += " AND s.tenant = :tenant"
    return where


def expired_candidates(
    engine: Engine,
    *,
    now: datetime,
    tenant: str | None,
    default: RetentionPeriod,
    floor: RetentionPeriod,
) -> tuple[list[Candidate], int]:
    """(unheld sessions to delete, oldest first; number of expired sessions skipped as held).

    Sessions left ``shredded`` by an interrupted run or erasure are always included (their
    key is gone already; only their rows remain), and so are ``purged`` sessions that rows
    arrived for afterwards (a recorder still writing to an erased session)."""
    params: dict[str, Any] = {"now": now, "tenant": tenant, **period_params(default, floor)}
    where = _expired_where(tenant)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.id, s.tenant, s.status, s.ended_at, s.event_count, pol.id AS policy_id, "
                "pol.agent AS policy_agent, pol.keep_years, pol.keep_months, pol.keep_days, "
                f"CASE WHEN s.ended_at IS NULL THEN NULL ELSE {_EXPIRES} END AS expires_at "
                f"FROM sessions s {_POLICY_JOIN} WHERE {where} AND NOT {HELD_SQL} "
                "ORDER BY s.ended_at NULLS FIRST, s.id"
            ),
            params,
        ).all()
        held = conn.execute(
            text(f"SELECT count(*) FROM sessions s {_POLICY_JOIN} WHERE {where} AND {HELD_SQL}"),
            params,
        ).scalar_one()
    out = [
        Candidate(
            session_id=r.id,
            tenant=r.tenant,
            status=r.status,
            ended_at=r.ended_at,
            event_count=int(r.event_count or 0),
            policy=_policy_name(r, default),
            expires_at=r.expires_at,
        )
        for r in rows
    ]
    return out, int(held)


class SessionHeld(Exception):
    """Raised inside ``shred_session`` when a hold appeared since the candidate was chosen."""


class NotDue(Exception):
    """Raised inside ``shred_session`` when the session is no longer due (a longer policy,
    a raised floor, or a different end time than when the run was planned)."""


class BasisRefused(Exception):
    """Raised inside ``shred_session`` when what decides expiry contradicts the chain."""


def decide(
    s: Any,
    closed_at: datetime | None,
    *,
    reason: str,
    now: datetime,
    default: RetentionPeriod,
    floor: RetentionPeriod,
    planned_ended_at: datetime | None,
    changes: tuple[int, bytes],
) -> tuple[str, dict[str, Any]]:
    """(policy name, basis) of a session's deletion record, ``s`` being its row as selected
    by :data:`SHRED_SELECT`; raises ``NotDue`` / ``BasisRefused`` as :func:`shred_session`
    says. Shared by the per-session shred and a month's (``store/month_drop.py``)."""
    if reason == "retention":
        if s.status != "closed" or s.ended_at is None:
            raise NotDue("not closed")
        if planned_ended_at is not None and s.ended_at != planned_ended_at:
            raise NotDue("its end time changed after the run was planned")
        if closed_at is None:
            raise BasisRefused("it has no chained close record to confirm its end time")
        if s.ended_at < closed_at:
            raise BasisRefused(
                f"its ended_at {ts(s.ended_at)} is earlier than its chained close record "
                f"({ts(closed_at)}): the end time was rewritten"
            )
        if not s.expires_at < now:
            raise NotDue(f"due only after {ts(s.expires_at)}")
    changes_n, changes_h = changes
    basis: dict[str, Any] = {
        "v": 1,
        "ended_at": ts(s.ended_at) if s.ended_at is not None else None,
        "closed_at": ts(closed_at) if closed_at is not None else None,
        "floor": floor.to_json(),
        "holds": {"checked": True, "changes": changes_n, "changes_head": changes_h.hex()},
    }
    if reason != "retention":
        basis["request"] = reason
        return reason, basis
    basis.update(
        {
            "agent": s.agent_label,
            "policy": (
                {
                    "id": str(s.policy_id),
                    "version": int(s.policy_version),
                    "agent": s.policy_agent,
                    "keep": RetentionPeriod(s.keep_years, s.keep_months, s.keep_days).to_json(),
                }
                if s.policy_id is not None
                else None
            ),
            "default": default.to_json(),
            "expires_at": ts(s.expires_at),
            "run_clock": ts(now),
        }
    )
    return _policy_name(s, default), basis


def shred_session(
    engine: Engine,
    session_id: uuid.UUID,
    *,
    run_id: uuid.UUID | None,
    reason: str,
    now: datetime,
    signer: Signer,
    default: RetentionPeriod,
    floor: RetentionPeriod,
    planned_ended_at: datetime | None = None,
) -> DeletionRecord | None:
    """Check the basis, append the session's signed deletion record, then destroy its data key
    — in one transaction.

    For ``reason="retention"`` the session must still be due at ``now`` under the policy in
    force and the floor (``NotDue``), its end time must be the planned one and no earlier
    than its chained close record (``BasisRefused``). Returns the new record; None when the
    session is no longer ``open``/``closed`` (already shredded by an earlier run). Raises
    ``SessionHeld`` if a hold covers it."""
    with engine.begin() as conn:
        xact_lock(conn, LOCK_HOLDS)
        s = conn.execute(_SHRED_BASIS, {"id": session_id, **period_params(default, floor)}).first()
        if s is None or s.status not in ("open", "closed"):
            return None
        if s.held:
            raise SessionHeld(str(session_id))
        key = {"sid": session_id, "started": s.started_at}
        stats = conn.execute(_EVENT_STATS, key).one()
        # Checked before anything is read for the record: a refusal writes nothing.
        policy_name, basis = decide(
            s,
            stats.closed_at,
            reason=reason,
            now=now,
            default=default,
            floor=floor,
            planned_ended_at=planned_ended_at,
            changes=changes_head(conn),
        )
        last = conn.execute(_LAST_EVENT, key).first()
        deleted_at: datetime = clock(conn)
        record = append_deletion_on(
            conn,
            signer,
            run_id=run_id,
            session_id=session_id,
            tenant=s.tenant,
            policy=policy_name[:256],
            reason=reason,
            event_count=int(stats.n),
            final_hash=bytes(last.hash) if last is not None else None,
            deleted_at=deleted_at,
            basis=basis,
        )
        conn.execute(_SHRED_KEY, {"sid": session_id, "at": deleted_at})
        # The search index goes with the key, in this transaction (derived data: no record).
        search_rows.delete_for_sessions(conn, [session_id])
        conn.execute(_MARK_SHREDDED, {"sid": session_id, "at": deleted_at, "reason": reason})
        return record
