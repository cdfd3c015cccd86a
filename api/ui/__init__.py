"""The review UI: server-rendered pages for auditors, served by the review service itself.

Same rules as the API, by construction: every page reads through the API's handlers (access
log first and fail closed, tenant scoping, one decrypt path), and every error the API would
answer with a problem document is answered here with a page of the same status.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from . import admin_pages, audio_pages, login, session_pages
from .auth import SignInRequired, login_url
from .signins import SignInPolicy, create_one_time_token
from .templating import HERE, SECURITY_HEADERS, render

__all__ = ["SignInPolicy", "create_one_time_token", "install_ui"]

_TITLES = {
    403: "Not allowed",
    404: "Not found",
    409: "Integrity check failed",
    410: "Erased",
    422: "Not understood",
    503: "Unavailable",
}

Handler = Callable[[Request, Exception], Any]


def _is_ui(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def _as_page(original: Handler) -> Handler:
    """The API's own handler runs first (it access-logs refusals); a UI request then gets
    the same status as a page instead of problem+json."""

    async def handler(request: Request, exc: Exception) -> Response:
        result = original(request, exc)
        response: Response = await result if isinstance(result, Awaitable) else result
        if not _is_ui(request):
            return response
        try:
            body = json.loads(bytes(response.body))
        except (ValueError, TypeError):
            body = {}
        status = response.status_code
        if status == 401:  # cannot happen behind the UI's sign-in, but never show a challenge
            return RedirectResponse(login_url(request.url.path), status_code=303)
        page = render(
            request,
            "error.html",
            {
                "status": status,
                "title": _TITLES.get(status, body.get("title") or "Error"),
                "detail": body.get("detail") if status < 500 else "Something went wrong.",
            },
            status=status,
        )
        # a 416 tells the player the recording's size
        if "content-range" in response.headers:
            page.headers["Content-Range"] = response.headers["content-range"]
        return page

    return handler


def install_ui(app: FastAPI, *, policy: SignInPolicy | None = None) -> None:
    """Mount the UI on ``app``: call after the API's problem handlers are installed."""
    app.state.ui_policy = policy or SignInPolicy()
    for cls, original in list(app.exception_handlers.items()):
        app.exception_handlers[cls] = _as_page(original)

    async def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    app.add_exception_handler(SignInRequired, to_login)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if _is_ui(request):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/ui/", status_code=303)

    @app.get("/ui", include_in_schema=False)
    @app.get("/ui/", include_in_schema=False)
    def ui_root() -> Response:
        return RedirectResponse("/ui/sessions", status_code=303)

    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    for module in (login, session_pages, audio_pages, admin_pages):
        app.include_router(module.router)
