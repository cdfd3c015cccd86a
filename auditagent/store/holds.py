"""Legal holds (``legal_holds``): placed and released with a signed change-log entry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from ..integrity.ledger_format import Signer, ts
from .changes import append_change_on
from .locks import LOCK_HOLDS, xact_lock


@dataclass(frozen=True)
class Hold:
    id: uuid.UUID
    scope: str
    tenant: str
    session_id: uuid.UUID | None
    participant_index: bytes | None
    reason: str
    created_by: str
    created_at: datetime
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None
    sessions_covered: int | None = None
    """How many sessions (not purged) it covered when it was placed or released."""

    @property
    def active(self) -> bool:
        return self.released_at is None

    def body(self) -> dict[str, Any]:
        """What the change log holds for this hold's creation."""
        return {
            "id": str(self.id),
            "scope": self.scope,
            "tenant": self.tenant,
            "session_id": str(self.session_id) if self.session_id else None,
            "participant_index": self.participant_index.hex() if self.participant_index else None,
            "reason": self.reason,
            "created_by": self.created_by,
            "created_at": ts(self.created_at),
        }

    def release_body(self) -> dict[str, Any]:
        assert self.released_at is not None
        return {
            "id": str(self.id),
            "released_at": ts(self.released_at),
            "released_by": self.released_by,
            "release_reason": self.release_reason,
        }


_HOLD_COLS = (
    "id, scope, tenant, session_id, participant_index, reason, created_by, created_at, "
    "released_at, released_by, release_reason"
)


def _hold(row: Any) -> Hold:
    return Hold(
        id=row.id,
        scope=row.scope,
        tenant=row.tenant,
        session_id=row.session_id,
        participant_index=bytes(row.participant_index) if row.participant_index else None,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        released_at=row.released_at,
        released_by=row.released_by,
        release_reason=row.release_reason,
    )


# Sessions a hold (or a would-be hold) covers: not purged, so there is still something to keep.
_COVERED = """SELECT count(*) FROM sessions s WHERE s.tenant = :tenant AND s.status <> 'purged'
  AND (:scope = 'tenant'
       OR (:scope = 'session' AND s.id = :session_id)
       OR (:scope = 'participant' AND s.participant_index = :pi))"""


def _covered(
    conn: Connection,
    *,
    scope: str,
    tenant: str,
    session_id: uuid.UUID | None,
    participant_index: bytes | None,
) -> int:
    return int(
        conn.execute(
            text(_COVERED),
            {"tenant": tenant, "scope": scope, "session_id": session_id, "pi": participant_index},
        ).scalar_one()
    )


def sessions_covered(
    engine: Engine,
    *,
    scope: str,
    tenant: str,
    session_id: uuid.UUID | None = None,
    participant_index: bytes | None = None,
) -> int:
    with engine.connect() as conn:
        return _covered(
            conn,
            scope=scope,
            tenant=tenant,
            session_id=session_id,
            participant_index=participant_index,
        )


def create_hold(
    engine: Engine,
    signer: Signer,
    *,
    scope: str,
    tenant: str,
    session_id: uuid.UUID | None,
    participant_index: bytes | None,
    reason: str,
    created_by: str,
) -> Hold:
    """Place a hold and its signed change-log entry in one transaction."""
    with engine.begin() as conn:
        xact_lock(conn, LOCK_HOLDS)
        row = conn.execute(
            text(
                "INSERT INTO legal_holds (id, scope, tenant, session_id, participant_index, "
                "reason, created_by) VALUES (:id, :scope, :tenant, :session_id, :pi, :reason, "
                f":created_by) RETURNING {_HOLD_COLS}"
            ),
            {
                "id": uuid.uuid4(),
                "scope": scope,
                "tenant": tenant,
                "session_id": session_id,
                "pi": participant_index,
                "reason": reason,
                "created_by": created_by,
            },
        ).one()
        hold = _hold(row)
        append_change_on(
            conn,
            signer,
            action="hold.create",
            tenant=tenant,
            subject=hold.id,
            actor=created_by,
            body=hold.body(),
        )
        covered = _covered(
            conn,
            scope=scope,
            tenant=tenant,
            session_id=session_id,
            participant_index=participant_index,
        )
    return replace(hold, sessions_covered=covered)


def get_hold(engine: Engine, hold_id: uuid.UUID) -> Hold | None:
    with engine.connect() as conn:
        row = conn.execute(
            text(f"SELECT {_HOLD_COLS} FROM legal_holds WHERE id = :id"), {"id": hold_id}
        ).first()
    return _hold(row) if row is not None else None


def list_holds(
    engine: Engine, *, tenant: str | None = None, include_released: bool = False
) -> list[Hold]:
    conds: list[str] = []
    params: dict[str, Any] = {}
    if tenant is not None:
        conds.append("tenant = :tenant")
        params["tenant"] = tenant
    if not include_released:
        conds.append("released_at IS NULL")
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT {_HOLD_COLS} FROM legal_holds{where} ORDER BY created_at, id"), params
        )
        return [_hold(r) for r in rows]


def release_hold(
    engine: Engine, signer: Signer, hold_id: uuid.UUID, *, released_by: str, reason: str
) -> Hold | None:
    """Release an active hold (with its signed change-log entry); returns the hold as it is
    now (unchanged if already released), None if there is no such hold."""
    with engine.begin() as conn:
        xact_lock(conn, LOCK_HOLDS)
        row = conn.execute(
            text(
                "UPDATE legal_holds SET released_at = clock_timestamp(), released_by = :by, "
                "release_reason = :reason WHERE id = :id AND released_at IS NULL "
                f"RETURNING {_HOLD_COLS}"
            ),
            {"id": hold_id, "by": released_by, "reason": reason},
        ).first()
        if row is None:
            row = conn.execute(
                text(f"SELECT {_HOLD_COLS} FROM legal_holds WHERE id = :id"), {"id": hold_id}
            ).first()
            return _hold(row) if row is not None else None
        hold = _hold(row)
        append_change_on(
            conn,
            signer,
            action="hold.release",
            tenant=hold.tenant,
            subject=hold.id,
            actor=released_by,
            body=hold.release_body(),
        )
        covered = _covered(
            conn,
            scope=hold.scope,
            tenant=hold.tenant,
            session_id=hold.session_id,
            participant_index=hold.participant_index,
        )
    return replace(hold, sessions_covered=covered)


# An unreleased hold covers session ``s`` when it names the session, its participant's blind
# index, or its whole tenant.
HELD_SQL = """EXISTS (
  SELECT 1 FROM legal_holds h
  WHERE h.released_at IS NULL AND h.tenant = s.tenant AND (
    h.scope = 'tenant'
    OR (h.scope = 'session' AND h.session_id = s.id)
    OR (h.scope = 'participant' AND s.participant_index IS NOT NULL
        AND h.participant_index = s.participant_index)))"""


def holds_blocking_participant(
    engine: Engine, *, tenant: str, participant_index: bytes
) -> list[Hold]:
    """Unreleased holds that cover any session of the participant, or the participant itself
    (even with no session yet), or the tenant."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {_HOLD_COLS} FROM legal_holds h WHERE h.released_at IS NULL "
                "AND h.tenant = :tenant AND (h.scope = 'tenant' "
                "OR (h.scope = 'participant' AND h.participant_index = :pi) "
                "OR (h.scope = 'session' AND h.session_id IN ("
                "  SELECT id FROM sessions WHERE tenant = :tenant AND participant_index = :pi))) "
                "ORDER BY h.created_at, h.id"
            ),
            {"tenant": tenant, "pi": participant_index},
        )
        return [_hold(r) for r in rows]


def all_hold_rows(engine: Engine) -> list[Hold]:
    with engine.connect() as conn:
        return [_hold(r) for r in conn.execute(text(f"SELECT {_HOLD_COLS} FROM legal_holds"))]
