"""Steps 2 and 3 of a per-session purge (see ``auditagent/store/purges.py``): delete a shredded
session's events in batches, then mark it ``purged`` once none is left.

With ``store/purges.py``, the only code that runs ``SET LOCAL auditagent.allow_purge = 'on'``,
and only in the transaction that deletes one batch of a shredded (or purged) session's events.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, ScalarSelect, delete, func, select, text, update

from .models import EventRow, SessionRow

_S = SessionRow.__table__
_E = EventRow.__table__


def _first_seq(session_id: uuid.UUID) -> ScalarSelect[Any]:
    # An alias, so the subquery is not correlated to the DELETE's own ``events`` row.
    first = _E.alias("first")
    return select(func.min(first.c.seq)).where(first.c.session_id == session_id).scalar_subquery()


def delete_event_batch(engine: Engine, session_id: uuid.UUID, *, batch_size: int) -> int:
    """Delete up to ``batch_size`` events of a *shredded* (or purged) session; returns how many.

    The only statement anywhere that lifts the append-only guard, and only for this
    transaction; it refuses to touch a session whose key has not been shredded first.
    ``synchronous_commit = off`` is safe here: a batch lost in a crash is simply deleted again
    by the next run.
    """
    with engine.begin() as conn:
        status = conn.execute(
            select(_S.c.status).where(_S.c.id == session_id).with_for_update(read=True)
        ).scalar()
        if status not in ("shredded", "purged"):
            return 0
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text("SET LOCAL auditagent.allow_purge = 'on'"))
        result = conn.execute(
            delete(EventRow).where(
                EventRow.session_id == session_id,
                EventRow.seq < _first_seq(session_id) + batch_size,
            )
        )
        return int(result.rowcount or 0)


def events_left(engine: Engine, session_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).where(_E.c.session_id == session_id)).scalar_one()
        )


def mark_purged(engine: Engine, session_id: uuid.UUID, *, now: datetime | None = None) -> bool:
    """``shredded`` -> ``purged`` once no event is left; drops the participant's blind index
    (the count and head hash stay: they are what checkpoints and deletion records refer to)."""
    with engine.begin() as conn:
        result = conn.execute(
            update(SessionRow)
            .where(
                SessionRow.id == session_id,
                SessionRow.status == "shredded",
                ~select(_E.c.seq).where(_E.c.session_id == session_id).exists(),
            )
            .values(status="purged", participant_index=None, updated_at=func.clock_timestamp())
        )
        return bool(result.rowcount)
