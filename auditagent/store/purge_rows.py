"""Steps 2 and 3 of a per-session purge (see ``auditagent/store/purges.py``): delete a shredded
session's events and call audio in batches, then mark it ``purged`` once none is left; and
the unpartitioned rows (audio, search index) of a month's sessions, for ``store/month_drop.py``.

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
from .purge_statements import (
    _ALLOW_PURGE,
    _DELETE_AUDIO,
    _DELETE_AUDIO_OF,
    _DELETE_BATCH,
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
        status = conn.execute(_STATUS_FOR_SHARE, {"sid": session_id}).scalar()
        if status not in ("shredded", "purged"):
            return 0
        conn.execute(_PURGE_SETTINGS)
        # The call audio goes with the first batch (a few rows a minute of call); chunks a
        # live recorder wrote while it was being erased, with the sweep's.
        conn.execute(_DELETE_AUDIO, {"sid": session_id})
        result = conn.execute(_DELETE_BATCH, {"sid": session_id, "n": batch_size})
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


def delete_unpartitioned_on(conn: Connection, session_ids: Sequence[uuid.UUID]) -> int:
    """In the caller's transaction (a month's drop, every session of it already shredded or
    purged under the same row locks): delete the sessions' call audio and search index rows,
    which are not partitioned by month and so do not go with the dropped partitions. Returns
    the audio chunks deleted."""
    ids = list(session_ids)
    if not ids:
        return 0
    conn.execute(_ALLOW_PURGE)
    audio = conn.execute(_DELETE_AUDIO_OF, {"ids": ids}).rowcount
    search_rows.delete_for_sessions(conn, ids)
    return int(audio or 0)
