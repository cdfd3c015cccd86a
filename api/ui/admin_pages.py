"""`/ui/access-log` and `/ui/holds`: the API's access-log and holds reads, drawn."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ..deps import require_admin
from ..routes import access_log as api_access_log
from ..routes import holds as api_holds
from ..schemas import SAFE_TEXT
from .auth import UiAccessDep
from .templating import render

router = APIRouter(prefix="/ui", include_in_schema=False)

_UUID = re.compile(r"^[0-9a-fA-F-]{32,36}$")


@router.get("/access-log")
def access_log_page(
    request: Request,
    access: UiAccessDep,
    tenant: Annotated[str | None, Query(max_length=128, pattern=SAFE_TEXT)] = None,
    session_id: Annotated[str | None, Query(max_length=36)] = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{0,18}$")] = None,
) -> Response:
    """Admins see every tenant (or their own); auditors their own tenant's entries, exactly
    as `GET /v1/access-log` answers them."""
    sid: uuid.UUID | None = None
    errors: list[str] = []
    if session_id:
        try:
            sid = uuid.UUID(session_id) if _UUID.match(session_id) else None
        except ValueError:
            sid = None
        if sid is None:
            errors.append("Session: expected a session id (UUID)")
    items: Any = []
    nxt = None
    if not errors:
        page = api_access_log.list_access_log(
            access,
            tenant=tenant or None,
            session_id=sid,
            principal_id=None,
            cursor=cursor or None,
            limit=50,
        )
        items, nxt = page.items, page.next_cursor
    return render(
        request,
        "access_log.html",
        {
            "items": items,
            "next": nxt,
            "errors": errors,
            "form": {"tenant": tenant or "", "session_id": session_id or ""},
        },
        status=422 if errors else 200,
    )


@router.get("/holds")
def holds_page(
    request: Request,
    access: UiAccessDep,
    tenant: Annotated[str | None, Query(max_length=128, pattern=SAFE_TEXT)] = None,
    released: bool = False,
) -> Response:
    """Legal holds, as `GET /v1/holds` lists them (admins only, as there)."""
    admin = require_admin(access.principal)
    result = api_holds.list_holds(admin, access, tenant=tenant or None, include_released=released)
    return render(
        request,
        "holds.html",
        {"items": result.items, "form": {"tenant": tenant or "", "released": released}},
    )
