"""Jinja templates of the review UI and the headers every UI answer carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from .csrf import FIELD as CSRF_FIELD
from .csrf import token_for
from .view import TIMING_LABELS, fmt_clock, fmt_duration, fmt_time, pretty_json

HERE = Path(__file__).parent

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["duration"] = fmt_duration
templates.env.filters["utc"] = fmt_time
templates.env.filters["clock"] = fmt_clock
templates.env.filters["pretty_json"] = pretty_json
templates.env.globals["timing_labels"] = TIMING_LABELS


def _pager_query(params: Any, cursor: str | None) -> str:
    """The current filters with the page position replaced (``None``: the first page)."""
    kept = [(k, v) for k, v in params.multi_items() if k != "cursor"]
    if cursor:
        kept.append(("cursor", cursor))
    return urlencode(kept)


templates.env.filters["pager_query"] = _pager_query

_NAV = (("/ui/sessions", "sessions"), ("/ui/access-log", "access"), ("/ui/holds", "holds"))

# No inline script or style anywhere: everything the page needs is a file of this service.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # decrypted content must not linger in a shared machine's browser cache
    "Cache-Control": "no-store",
}


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    signin = getattr(request.state, "ui_signin", None)
    ctx: dict[str, Any] = {
        "signin": signin,
        "principal": signin.principal if signin is not None else None,
        "csrf_field": CSRF_FIELD,
        "csrf": token_for(signin.secret) if signin is not None else "",
        "nav": next((n for p, n in _NAV if request.url.path.startswith(p)), None),
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request=request, name=name, context=ctx, status_code=status)
