"""`/v1/access-log`: who read what, when and why. Reading it is itself logged."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from auditagent.store import access_log as access_store

from ..deps import AccessDep, scope_tenant
from ..problems import problem_responses
from ..schemas import SAFE_TEXT, AccessLogEntry, AccessLogPage

router = APIRouter(prefix="/v1/access-log", tags=["access log"])


@router.get("", response_model=AccessLogPage, responses=problem_responses(401, 403, 422, 503))
def list_access_log(
    access: AccessDep,
    tenant: Annotated[str | None, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)] = None,
    session_id: uuid.UUID | None = None,
    principal_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AccessLogPage:
    """Newest first. Admins see every tenant (or their own, for a tenant-bound admin key);
    auditors see their own tenant's entries only."""
    scope = scope_tenant(access.principal, tenant)
    before: int | None = None
    if cursor:
        before = int(cursor)
    access.record(
        "access_log.list",
        tenant=scope,
        session_id=session_id,
        detail={"principal_id": str(principal_id)} if principal_id else {},
    )
    rows = access_store.list_access_log(
        access.engine,
        tenant=scope,
        session_id=session_id,
        principal_id=principal_id,
        before_seq=before,
        limit=limit,
    )
    items = [
        AccessLogEntry(
            seq=r.seq,
            at=r.at,
            principal_id=r.entry.principal_id,
            principal_name=r.entry.principal_name,
            role=r.entry.role,
            tenant=r.entry.tenant,
            action=r.entry.action,
            session_id=r.entry.session_id,
            route=r.entry.route,
            reason=r.entry.reason,
            correlation_id=r.entry.correlation_id,
            detail=dict(r.entry.detail),
            hash=r.hash.hex(),
        )
        for r in rows
    ]
    nxt = str(items[-1].seq) if len(items) == limit and items else None
    return AccessLogPage(items=items, next_cursor=nxt)
