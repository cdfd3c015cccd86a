"""Steps 2 and 3 of a per-session purge (see ``auditagent/store/purges.py``): delete a shredded
session's events and call audio in batches, then mark it ``purged`` once none is left; and
what of a dropped month a default partition kept, for ``store/month_drop.py``.

The only code that runs ``SET LOCAL auditagent.allow_purge = 'on'``, and only in a
transaction that deletes rows of shredded (or purged) sessions. Statements are built once, in
``store/purge_statements.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine

from . import search_rows
from .partitions import Month
from .purge_statements import (
    _ALLOW_MONTH,
    _ALLOW_PURGE,
    _DELETE_AUDIO,
    _DELETE_AUDIO_IN,
    _DELETE_BATCH,
    _DELETE_SEARCH_IN,
    _EVENTS_LEFT,
    _MARK_PURGED,
    _PURGE_SETTINGS,
    _STATUS_FOR_SHARE,
)


def delete_event_batch(engine: Engine, session_id: uuid.UUID, *, batch_size: int) -> int:
    """Delete up to ``batch_size`` events of a *shredded* (or purged) session; returns how many.

    The only statement anywhere that lifts the append-only guard for one session, and only for
    this transaction; it refuses to touch a session whose key has not been shredded first.
    ``synchronous_commit = off`` is safe here: a batch lost in a crash is simply deleted again
    by the next run.
    """
    with engine.begin() as conn:
        row = conn.execute(_STATUS_FOR_SHARE, {"sid": session_id}).first()
        if row is None or row.status not in ("shredded", "purged"):
            return 0
        conn.execute(_PURGE_SETTINGS)
        # With the partition key, each statement touches the session's one partition.
        key = {"sid": session_id, "started": row.started_at}
        # The call audio goes with the first batch (a few rows a minute of call); chunks a
        # live recorder wrote while it was being erased, with the sweep's.
        conn.execute(_DELETE_AUDIO, key)
        result = conn.execute(_DELETE_BATCH, {**key, "n": batch_size})
        return int(result.rowcount or 0)


def events_left(engine: Engine, session_id: uuid.UUID) -> int:
    """Rows of the session still stored: events and call audio chunks."""
    with engine.connect() as conn:
        return int(conn.execute(_EVENTS_LEFT, {"sid": session_id}).scalar_one())


def mark_purged(engine: Engine, session_id: uuid.UUID, *, now: datetime | None = None) -> bool:
    """``shredded`` -> ``purged`` once no event is left; drops the participant's blind index
    (the count and head hash stay: they are what checkpoints and deletion records refer to)."""
    with engine.begin() as conn:
        result = conn.execute(_MARK_PURGED, {"sid": session_id})
        if result.rowcount:
            # Rows a writer added under the destroyed key after the shred (erased mid-call).
            search_rows.delete_for_sessions(conn, [session_id])
        return bool(result.rowcount)


def delete_month_leftovers_on(
    conn: Connection, month: Month, session_ids: Sequence[uuid.UUID]
) -> int:
    """In the caller's transaction (a month's drop, its partitions already dropped, every
    session of it shredded or purged under the same row locks): delete the month's call audio
    and search index rows a default partition still holds (their month partition was never
    created: rows were there first), and the sessions' search index markers. Returns the audio
    chunks deleted."""
    conn.execute(_ALLOW_PURGE)
    window = {"s": month.start, "e": month.end}
    audio = conn.execute(_DELETE_AUDIO_IN, window).rowcount
    conn.execute(_DELETE_SEARCH_IN, window)
    search_rows.delete_markers(conn, session_ids)
    # Back to the month's flag: the rest of the drop's transaction is not a row purge.
    conn.execute(_ALLOW_MONTH)
    return int(audio or 0)
