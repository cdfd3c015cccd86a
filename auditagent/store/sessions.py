"""Reads of ``sessions`` and ``data_keys`` the retention path and its verifier make."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    any_,
    case,
    func,
    or_,
    select,
    true,
    union_all,
)

from ._sql import uuid_array
from .models import (
    AudioChunkRow,
    DataKeyRow,
    DeletionRecordRow,
    EventRow,
    PrincipalRow,
    RetentionPolicyRow,
    SessionRow,
)
from .purges import Candidate

_S = SessionRow.__table__
_K = DataKeyRow.__table__
_E = EventRow.__table__
_A = AudioChunkRow.__table__
_D = DeletionRecordRow.__table__
_P = RetentionPolicyRow.__table__
_API = PrincipalRow.__table__


def _destroyed() -> ColumnElement[bool]:
    """A data key that can no longer open anything."""
    return or_(_K.c.wrapped.is_(None), _K.c.shredded_at.is_not(None))


def session_tenant(engine: Engine, session_id: uuid.UUID) -> str | None:
    with engine.connect() as conn:
        value = conn.execute(select(_S.c.tenant).where(_S.c.id == session_id)).scalar()
    return str(value) if value is not None else None


def tenant_known(engine: Engine, tenant: str) -> bool:
    """A tenant is known when it has a session (any state), a policy or an API key."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                select(
                    or_(
                        select(_S.c.id).where(_S.c.tenant == tenant).exists(),
                        select(_P.c.id).where(_P.c.tenant == tenant).exists(),
                        select(_API.c.id).where(_API.c.tenant == tenant).exists(),
                    )
                )
            ).scalar_one()
        )


def iter_session_events(conn: Connection, session_id: uuid.UUID) -> Iterator[Any]:
    yield from conn.execution_options(yield_per=1000).execute(
        select(
            _E.c.session_id,
            _E.c.seq,
            _E.c.tenant,
            _E.c.kind,
            _E.c.at,
            _E.c.key_id,
            _E.c.nonce,
            _E.c.ciphertext,
            _E.c.prev_hash,
            _E.c.hash,
        )
        .where(_E.c.session_id == session_id)
        .order_by(_E.c.seq)
    )


@dataclass(frozen=True)
class KeyState:
    session_id: uuid.UUID
    status: str
    key: str
    """``missing`` (no data_keys row), ``destroyed`` or ``wrapped``."""
    has_record: bool


def key_anomalies(engine: Engine) -> list[KeyState]:
    """Sessions whose data key is gone without a deletion record, or is still there (or back)
    although a deletion record says it was destroyed."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                _S.c.id,
                _S.c.status,
                case(
                    (_K.c.session_id.is_(None), "missing"),
                    (_destroyed(), "destroyed"),
                    else_="wrapped",
                ).label("key"),
                select(_D.c.seq).where(_D.c.session_id == _S.c.id).exists().label("has_record"),
            ).select_from(_S.outerjoin(_K, _K.c.session_id == _S.c.id))
        )
        return [
            KeyState(r.id, r.status, r.key, bool(r.has_record))
            for r in rows
            if (r.key != "wrapped") != bool(r.has_record)
        ]


def purged_with_rows(engine: Engine) -> list[tuple[uuid.UUID, int]]:
    """Purged sessions that still have rows (events or call audio chunks): written after the
    erasure, not deleted yet."""
    rows = union_all(select(_E.c.session_id), select(_A.c.session_id)).subquery()
    with engine.connect() as conn:
        return [
            (r[0], int(r[1]))
            for r in conn.execute(
                select(rows.c.session_id, func.count())
                .join(_S, _S.c.id == rows.c.session_id)
                .where(_S.c.status == "purged")
                .group_by(rows.c.session_id)
            )
        ]


def end_time_anomalies(engine: Engine) -> list[tuple[uuid.UUID, datetime | None, datetime | None]]:
    """Closed sessions whose ``ended_at`` is missing, has no chained close record to confirm
    it, or is earlier than that record (what a rewrite to expire it early looks like)."""
    with engine.connect() as conn:
        closed = (
            select(func.min(_E.c.at).label("closed_at"))
            .where(_E.c.session_id == _S.c.id, _E.c.kind == "closed")
            .lateral("c")
        )
        return [
            (r.id, r.ended_at, r.closed_at)
            for r in conn.execute(
                select(_S.c.id, _S.c.ended_at, closed.c.closed_at)
                .select_from(_S.outerjoin(closed, true()))
                .where(
                    _S.c.status == "closed",
                    or_(
                        _S.c.ended_at.is_(None),
                        closed.c.closed_at.is_(None),
                        _S.c.ended_at < closed.c.closed_at,
                    ),
                )
            )
        ]


def session_ended_at(engine: Engine, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    if not ids:
        return {}
    with engine.connect() as conn:
        return {
            r.id: r
            for r in conn.execute(
                select(_S.c.id, _S.c.tenant, _S.c.ended_at, _S.c.status).where(
                    _S.c.id == any_(uuid_array(ids))
                )
            )
        }


def data_key_destroyed(conn: Connection, session_id: uuid.UUID) -> bool:
    row = conn.execute(select(_destroyed()).where(_K.c.session_id == session_id)).first()
    return row is None or bool(row[0])


def participant_sessions(
    engine: Engine, *, tenant: str, participant_index: bytes
) -> list[Candidate]:
    """Every session of the participant not purged yet (open ones included): what an
    erasure deletes."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_S.c.id, _S.c.tenant, _S.c.status, _S.c.ended_at, _S.c.event_count)
            .where(
                _S.c.tenant == tenant,
                _S.c.participant_index == participant_index,
                _S.c.status != "purged",
            )
            .order_by(_S.c.started_at, _S.c.id)
        ).all()
    return [
        Candidate(
            session_id=r.id,
            tenant=r.tenant,
            status=r.status,
            ended_at=r.ended_at,
            event_count=int(r.event_count or 0),
            policy="erasure",
        )
        for r in rows
    ]
