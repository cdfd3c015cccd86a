"""Who is signed in to the review UI, and the access context its reads are logged under.

A page's reads go through the API's own ``AccessContext``: the same access-log rows, written
first and failing closed, with the sign-in's audit reason where the API takes
``X-Audit-Reason``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from ..deps import AccessContext, ConnDep, DbDep, get_settings
from ..problems import correlation_id
from .signins import SignIn, SignInPolicy, resolve_signin

COOKIE = "aa_ui"
LOGIN_COOKIE = "aa_ui_login"
COOKIE_PATH = "/ui"


class SignInRequired(Exception):
    """No live sign-in: the page answers 303 to the sign-in form, which comes back here."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def policy(request: Request) -> SignInPolicy:
    found = getattr(request.app.state, "ui_policy", None)
    return found if isinstance(found, SignInPolicy) else SignInPolicy()


def safe_next(value: str | None) -> str:
    """Only a path of this UI (never another origin) may be returned to after sign-in."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/sessions"


def login_url(next_path: str) -> str:
    return "/ui/login?next=" + quote(safe_next(next_path), safe="/")


def get_signin(request: Request, db: ConnDep) -> SignIn:
    secret = request.cookies.get(COOKIE)
    signin = resolve_signin(db.conn, secret, policy(request)) if secret else None
    if signin is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/ui/sessions")
    # From here a refusal of this principal is access-logged, as in the API (log_denial).
    request.state.principal = signin.principal
    request.state.ui_signin = signin
    return signin


SignInDep = Annotated[SignIn, Depends(get_signin)]


def get_ui_access(request: Request, engine: DbDep, db: ConnDep, signin: SignInDep) -> AccessContext:
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    return AccessContext(
        engine=engine,
        principal=signin.principal,
        reason=signin.reason,
        route=f"{request.method} {path}"[:256],
        correlation_id=correlation_id(request),
        db=db,
        settings=get_settings(request),
    )


UiAccessDep = Annotated[AccessContext, Depends(get_ui_access)]
