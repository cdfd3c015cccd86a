"""`/v1/holds`: place, list and release legal holds (admins only).

A hold covers one session, one participant (matched through the keyed blind index, so the
identity itself is never stored) or a whole tenant. Held sessions survive retention runs and
erasure; placing and releasing are recorded with who, when and why, as signed entries of the
retention change log. Placing and releasing say how many sessions the hold covers; a hold that
would cover none is 404 unless ``allow_empty``, and so is one on a tenant that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from auditagent import retention
from auditagent.store import holds as hold_store

from ..deps import (
    AccessDep,
    AdminDep,
    KeysDep,
    RetentionDbDep,
    SinkDep,
    actor,
    required_tenant,
    scope_tenant,
)
from ..problems import problem_responses
from ..schemas import (
    SAFE_TEXT,
    HoldIn,
    HoldList,
    HoldOut,
    ParticipantHoldIn,
    ReleaseIn,
    SessionHoldIn,
)

router = APIRouter(prefix="/v1/holds", tags=["holds"])


def _out(h: hold_store.Hold) -> HoldOut:
    scope: Literal["session", "participant", "tenant"] = (
        "session"
        if h.scope == "session"
        else "participant"
        if h.scope == "participant"
        else "tenant"
    )
    return HoldOut(
        id=h.id,
        scope=scope,
        tenant=h.tenant,
        session_id=h.session_id,
        reason=h.reason,
        created_by=h.created_by,
        created_at=h.created_at,
        active=h.active,
        released_at=h.released_at,
        released_by=h.released_by,
        release_reason=h.release_reason,
        sessions_covered=h.sessions_covered,
    )


@router.post(
    "",
    status_code=201,
    response_model=HoldOut,
    responses=problem_responses(400, 401, 403, 404, 422, 503),
)
def create_hold(
    body: HoldIn,
    admin: AdminDep,
    access: AccessDep,
    keys: KeysDep,
    engine: RetentionDbDep,
    sink: SinkDep,
) -> HoldOut:
    """Place a legal hold; `sessions_covered` says how many sessions it covers."""
    tenant = required_tenant(admin, body.tenant)
    session_id = body.session_id if isinstance(body, SessionHoldIn) else None
    participant = body.participant if isinstance(body, ParticipantHoldIn) else None
    access.record(
        "holds.create",
        tenant=tenant,
        session_id=session_id,
        detail={"scope": body.scope, "allow_empty": body.allow_empty},
    )
    hold = retention.create_hold(
        engine,
        keys,
        scope=body.scope,
        tenant=tenant,
        reason=body.reason,
        created_by=actor(admin),
        session_id=session_id,
        participant=participant,
        allow_empty=body.allow_empty,
        sink=sink,
    )
    return _out(hold)


@router.get("", response_model=HoldList, responses=problem_responses(401, 403, 422, 503))
def list_holds(
    admin: AdminDep,
    access: AccessDep,
    tenant: Annotated[str | None, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)] = None,
    include_released: bool = False,
) -> HoldList:
    """Active holds (and released ones with `include_released=true`)."""
    scope = scope_tenant(admin, tenant)
    access.record("holds.list", tenant=scope)
    holds = hold_store.list_holds(access.engine, tenant=scope, include_released=include_released)
    return HoldList(items=[_out(h) for h in holds])


@router.post(
    "/{hold_id}/release",
    response_model=HoldOut,
    responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
)
def release_hold(
    hold_id: uuid.UUID,
    body: ReleaseIn,
    admin: AdminDep,
    access: AccessDep,
    keys: KeysDep,
    engine: RetentionDbDep,
    sink: SinkDep,
) -> HoldOut:
    """Release a hold; 409 if it was already released. Another tenant's hold is 404.
    `sessions_covered` says how many sessions it covered."""
    access.record("holds.release", tenant=admin.tenant, detail={"hold_id": str(hold_id)})
    hold = retention.release_hold(
        engine,
        hold_id,
        released_by=actor(admin),
        reason=body.reason,
        tenant=admin.tenant,
        key_provider=keys,
        sink=sink,
    )
    return _out(hold)
