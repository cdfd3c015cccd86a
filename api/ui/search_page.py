"""`/ui/search`: the search box's results, each opening its session at the matching turn.

The read is the API's own (`api/routes/search.py`): the access-log row first (the query only
as a keyed MAC), tenant scoping, candidates from the keyed index, decrypt and confirm. This
module only draws what it returns. A GET form: nothing changes, so no CSRF token.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from auditagent.store import reader

from ..deps import KeysDep
from ..problems import ProblemError
from ..routes.search import search_sessions
from .auth import UiAccessDep
from .templating import render

router = APIRouter(prefix="/ui", include_in_schema=False)

ROLES = ("user", "agent", "tool")
PAGE = 20


@router.get("/search")
def search_page(
    request: Request,
    access: UiAccessDep,
    keys: KeysDep,
    q: Annotated[str, Query(max_length=65_536)] = "",
    role: Annotated[str, Query(max_length=16)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    form = {"q": q, "role": role}
    ctx: dict[str, Any] = {"form": form, "roles": ROLES, "errors": [], "results": None}
    errors: list[str] = ctx["errors"]
    if role and role not in ROLES:
        errors.append(f"Said by: one of {', '.join(ROLES)}")
    if cursor and not re.match(reader.CURSOR_PATTERN, cursor):
        errors.append("the page position (cursor) is not valid; start from the first page")
    if errors:
        return render(request, "search.html", ctx, status=422)
    if not q.strip():
        return render(request, "search.html", ctx)
    try:
        page = search_sessions(
            access,
            keys,
            q=q,
            tenant=None,
            role=role or None,  # type: ignore[arg-type]
            started_from=None,
            started_to=None,
            agent=None,
            architecture=None,
            participant=None,
            tool=None,
            close_reason=None,
            cursor=cursor or None,
            limit=PAGE,
        )
    except ProblemError as exc:
        if exc.status != 422:
            raise
        errors.append(exc.detail or "the search was not accepted")
        return render(request, "search.html", ctx, status=422)
    ctx.update(results=page.items, next=page.next_cursor, examined=page.examined)
    return render(request, "search.html", ctx)
