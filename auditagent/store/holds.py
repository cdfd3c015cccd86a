"""Legal holds (``legal_holds``): placed and released with a signed change-log entry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)

from ..integrity.encoding import ts
from ..integrity.ledgers import Signer
from .changes import append_change_on
from .locks import LOCK_HOLDS, xact_lock
from .models import LegalHoldRow, SessionRow


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


_HOLDS = LegalHoldRow.__table__
_SESSIONS = SessionRow.__table__


def _covered(
    conn: Connection,
    *,
    scope: str,
    tenant: str,
    session_id: uuid.UUID | None,
    participant_index: bytes | None,
) -> int:
    # Sessions a hold (or a would-be hold) covers: not purged, so there is still something to
    # keep. A session or participant scope without its id covers nothing.
    sc = _SESSIONS.c
    which: ColumnElement[bool]
    if scope == "tenant":
        which = true()
    elif scope == "session" and session_id is not None:
        which = sc.id == session_id
    elif scope == "participant" and participant_index is not None:
        which = sc.participant_index == participant_index
    else:
        which = false()
    stmt = select(func.count()).where(sc.tenant == tenant, sc.status != "purged", which)
    return int(conn.execute(stmt).scalar_one())


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
            insert(LegalHoldRow)
            .values(
                id=uuid.uuid4(),
                scope=scope,
                tenant=tenant,
                session_id=session_id,
                participant_index=participant_index,
                reason=reason,
                created_by=created_by,
            )
            .returning(*_HOLDS.c)
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
        row = conn.execute(select(_HOLDS).where(_HOLDS.c.id == hold_id)).first()
    return _hold(row) if row is not None else None


def list_holds(
    engine: Engine, *, tenant: str | None = None, include_released: bool = False
) -> list[Hold]:
    stmt = select(_HOLDS)
    if tenant is not None:
        stmt = stmt.where(_HOLDS.c.tenant == tenant)
    if not include_released:
        stmt = stmt.where(_HOLDS.c.released_at.is_(None))
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(_HOLDS.c.created_at, _HOLDS.c.id))
        return [_hold(r) for r in rows]


def release_hold(
    engine: Engine, signer: Signer, hold_id: uuid.UUID, *, released_by: str, reason: str
) -> Hold | None:
    """Release an active hold (with its signed change-log entry); returns the hold as it is
    now (unchanged if already released), None if there is no such hold."""
    with engine.begin() as conn:
        xact_lock(conn, LOCK_HOLDS)
        row = conn.execute(
            update(LegalHoldRow)
            .where(LegalHoldRow.id == hold_id, LegalHoldRow.released_at.is_(None))
            .values(
                released_at=func.clock_timestamp(), released_by=released_by, release_reason=reason
            )
            .returning(*_HOLDS.c)
        ).first()
        if row is None:
            row = conn.execute(select(_HOLDS).where(_HOLDS.c.id == hold_id)).first()
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


def holds_blocking_participant(
    engine: Engine, *, tenant: str, participant_index: bytes
) -> list[Hold]:
    """Unreleased holds that cover any session of the participant, or the participant itself
    (even with no session yet), or the tenant."""
    with engine.connect() as conn:
        h, sc = _HOLDS.c, _SESSIONS.c
        theirs = select(sc.id).where(sc.tenant == tenant, sc.participant_index == participant_index)
        rows = conn.execute(
            select(_HOLDS)
            .where(
                h.released_at.is_(None),
                h.tenant == tenant,
                or_(
                    h.scope == "tenant",
                    and_(h.scope == "participant", h.participant_index == participant_index),
                    and_(h.scope == "session", h.session_id.in_(theirs)),
                ),
            )
            .order_by(h.created_at, h.id)
        )
        return [_hold(r) for r in rows]


def all_hold_rows(engine: Engine) -> list[Hold]:
    with engine.connect() as conn:
        return [_hold(r) for r in conn.execute(select(_HOLDS))]
