"""Session and deletion-chain heads, read consistently for checkpoints."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, any_, select

from ._sql import uuid_array
from .deletions import deletion_head
from .models import SessionRow

_SESSIONS = SessionRow.__table__
_HEAD_COLS = (_SESSIONS.c.id, _SESSIONS.c.status, _SESSIONS.c.event_count, _SESSIONS.c.head_hash)


@dataclass(frozen=True)
class SessionHead:
    session_id: uuid.UUID
    status: str
    event_count: int
    head_hash: bytes | None


def snapshot_heads(engine: Engine) -> tuple[list[SessionHead], int, bytes]:
    """Every session's (count, head) and the deletion chain's (count, head), read in one
    repeatable-read snapshot so they are consistent with each other."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        rows = conn.execute(select(*_HEAD_COLS).order_by(_SESSIONS.c.id))
        heads = [
            SessionHead(
                session_id=r.id,
                status=r.status,
                event_count=int(r.event_count or 0),
                head_hash=bytes(r.head_hash) if r.head_hash is not None else None,
            )
            for r in rows
        ]
        count, head = deletion_head(conn)
        conn.rollback()
    return heads, count, head


def session_heads(engine: Engine, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, SessionHead]:
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(*_HEAD_COLS).where(_SESSIONS.c.id == any_(uuid_array(ids))))
        return {
            r.id: SessionHead(
                session_id=r.id,
                status=r.status,
                event_count=int(r.event_count or 0),
                head_hash=bytes(r.head_hash) if r.head_hash is not None else None,
            )
            for r in rows
        }
