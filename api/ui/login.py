"""`/ui/login`, `/ui/logout`, `/ui/reason`: signing in and out of the review UI.

The sign-in form takes an API key (field ``token``) or a one-time sign-in token from
`auditagent demo`, and an optional audit reason, recorded with every read of the sign-in as
``X-Audit-Reason`` is for the API.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from auditagent.store.principals import authenticate_on

from ..deps import AccessContext, ConnDep, DbDep, get_settings
from ..problems import correlation_id
from ..schemas import SAFE_TEXT
from .auth import (
    COOKIE,
    COOKIE_PATH,
    LOGIN_COOKIE,
    SignInDep,
    policy,
    safe_next,
)
from .csrf import FIELD as CSRF_FIELD
from .csrf import matches, new_secret, token_for
from .signins import (
    ONE_TIME_PREFIX,
    end_signin,
    redeem_one_time_token,
    resolve_signin,
    set_reason,
    start_signin,
)
from .templating import render

router = APIRouter(prefix="/ui", include_in_schema=False)

_SAFE = re.compile(SAFE_TEXT)
REASON_MAX = 1000

FormText = Annotated[str, Form(max_length=2000)]


def _clean_reason(value: str) -> str | None:
    """The reason as it will be logged, or ValueError with what is wrong with it."""
    value = value.strip()
    if not value:
        return None
    if len(value) > REASON_MAX or not _SAFE.match(value):
        raise ValueError(f"the reason must be one line of at most {REASON_MAX} characters")
    return value


def _refuse_csrf(request: Request) -> Response:
    return render(
        request,
        "error.html",
        {
            "status": 403,
            "title": "This form has expired",
            "detail": "The form was sent without a valid CSRF token, so nothing was changed. "
            "Go back, reload the page and send it again.",
        },
        status=403,
    )


def _login_form(
    request: Request, *, next_path: str, error: str | None = None, status: int = 200
) -> Response:
    secret = request.cookies.get(LOGIN_COOKIE) or new_secret()
    response = render(
        request,
        "login.html",
        {"next": safe_next(next_path), "error": error, "login_csrf": token_for(secret)},
        status=status,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=COOKIE_PATH,
    )
    return response


@router.get("/login")
def login_page(
    request: Request, db: ConnDep, next: str | None = None, ended: bool = False
) -> Response:
    error = "You are signed out." if ended else None
    secret = request.cookies.get(COOKIE)
    if secret and not ended:
        if resolve_signin(db.conn, secret, policy(request)) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        # a cookie that no longer signs in: it expired, or its key was revoked
        error = "Your sign-in has expired or was revoked. Sign in again."
    return _login_form(request, next_path=next or "", error=error)


@router.post("/login")
def login(
    request: Request,
    engine: DbDep,
    db: ConnDep,
    token: FormText = "",
    reason: FormText = "",
    next: FormText = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
) -> Response:
    if not matches(request.cookies.get(LOGIN_COOKIE), csrf_token):
        return _refuse_csrf(request)
    try:
        why = _clean_reason(reason)
    except ValueError as exc:
        return _login_form(request, next_path=next, error=str(exc), status=422)
    token = token.strip()
    if token.startswith(ONE_TIME_PREFIX):
        principal = redeem_one_time_token(db.conn, token, policy(request))
    else:
        principal = authenticate_on(db.conn, token) if token else None
    if principal is None:
        return _login_form(
            request,
            next_path=next,
            error="That token does not sign in: it is unknown, revoked, expired or was "
            "already used.",
            status=401,
        )
    AccessContext(
        engine=engine,
        principal=principal,
        reason=why,
        route="POST /ui/login",
        correlation_id=correlation_id(request),
        db=db,
        settings=get_settings(request),
    ).record("ui.signin", tenant=principal.tenant)
    secret = start_signin(db.conn, principal.id, reason=why)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=COOKIE_PATH,
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.get("/logout")
def logout_page(request: Request, signin: SignInDep) -> Response:
    return render(request, "logout.html", {})


@router.post("/logout")
def logout(
    request: Request,
    signin: SignInDep,
    db: ConnDep,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
) -> Response:
    if not matches(signin.secret, csrf_token):
        return _refuse_csrf(request)
    end_signin(db.conn, signin.id)
    response = RedirectResponse("/ui/login?ended=1", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


@router.post("/reason")
def change_reason(
    request: Request,
    signin: SignInDep,
    db: ConnDep,
    reason: FormText = "",
    next: FormText = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
) -> Response:
    if not matches(signin.secret, csrf_token):
        return _refuse_csrf(request)
    try:
        why = _clean_reason(reason)
    except ValueError as exc:
        return render(
            request,
            "error.html",
            {"status": 422, "title": "Reason not changed", "detail": str(exc)},
            status=422,
        )
    set_reason(db.conn, signin.id, why)
    return RedirectResponse(safe_next(next), status_code=303)
