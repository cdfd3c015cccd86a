"""RFC 9457 problem details for every error the API returns, and their OpenAPI declarations.

Expected failures (bad input, auth, scope, missing, erased, tampered, database down) map to a
specific 4xx/503; only a genuine bug reaches the catch-all 500, and even that carries no trace.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from auditagent.errors import (
    AuditagentError,
    Conflict,
    DatabaseUnavailable,
    IntegrityError,
    KeyringError,
    NotFound,
    SchemaOutOfDate,
)
from auditagent.reading.decrypt import KeyShredded, RecordUnreadable
from auditagent.store.access_log import AccessLogUnavailable
from auditagent.store.principals import InvalidPrincipal
from auditagent.store.reader import InvalidCursor

from .schemas import Problem

log = logging.getLogger("auditagent.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://auditagent.dev/problems/"


class ProblemError(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        type_: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        audit: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or "")
        self.audit = dict(audit) if audit else None
        """Set on a refusal of an authenticated principal: the refusal is access-logged."""
        self.status = status
        self.detail = detail
        self.type = type_
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})


def problem_response(
    request: Request,
    status: int,
    *,
    detail: str | None = None,
    type_: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_TYPE_BASE + type_ if type_ else "about:blank",
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


# Which expected errors mean what to a client. Order matters: subclasses first.
_ERROR_STATUS: tuple[tuple[type[AuditagentError], int, str], ...] = (
    (AccessLogUnavailable, 503, "access-log-unavailable"),
    (KeyShredded, 410, "erased"),
    (RecordUnreadable, 409, "integrity"),
    (IntegrityError, 409, "integrity"),
    (NotFound, 404, "not-found"),
    (Conflict, 409, "conflict"),
    (InvalidPrincipal, 422, "invalid-principal"),
    (DatabaseUnavailable, 503, "database-unavailable"),
    (SchemaOutOfDate, 503, "schema-out-of-date"),
    (KeyringError, 503, "keyring-unavailable"),
)


def _status_for(exc: AuditagentError) -> tuple[int, str]:
    for cls, status, kind in _ERROR_STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 500, "internal"


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    # Validation errors may echo the input (ctx, input); keep only location, message and type so
    # a problem document never reflects arbitrary bytes back.
    out: list[dict[str, Any]] = []
    for err in errors:
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return out


def correlation_id(request: Request) -> str:
    """The caller's ``X-Request-ID`` when it is plain printable ASCII (it goes into the access
    log), else a new one; at most 64 characters."""
    given = request.headers.get("x-request-id", "")
    ok = given and given.isascii() and given.isprintable()
    return (given if ok else uuid.uuid4().hex)[:64]


def log_denial(request: Request, exc: ProblemError) -> None:
    """Access-log a refused attempt by an authenticated principal: the data owner's tenant sees
    that it happened, only admins see who made it (``store.admin.append_refusal``). Best
    effort: the answer is a refusal either way, so a failing write must not turn it into a
    503."""
    from auditagent.store import access_log as access_store

    principal = getattr(request.state, "principal", None)
    engine = getattr(request.app.state, "engine", None)
    if principal is None or engine is None or exc.audit is None:
        return
    audit = exc.audit
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    try:
        access_store.append_refusal(
            engine,
            access_store.AccessEntry(
                action=str(audit.get("action", "denied")),
                principal_id=principal.id,
                principal_name=principal.name,
                role=principal.role,
                tenant=audit.get("tenant"),
                session_id=audit.get("session_id"),
                route=f"{request.method} {path}"[:256],
                reason=request.headers.get("x-audit-reason") or None,
                correlation_id=correlation_id(request),
                detail={"denied": True, "status": exc.status, "why": exc.detail or ""},
            ),
            caller_tenant=principal.tenant,
        )
    except Exception as err:  # the refusal stands; say so without request content
        logging.getLogger("auditagent.api").warning(
            "could not access-log a refused request: %s", type(err).__name__
        )


def install_problem_handlers(app: FastAPI) -> None:
    async def http_exc(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(
            request, exc.status_code, detail=detail, headers=getattr(exc, "headers", None)
        )

    async def problem_exc(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        if exc.audit is not None:
            await run_in_threadpool(log_denial, request, exc)
        return problem_response(
            request,
            exc.status,
            detail=exc.detail,
            type_=exc.type,
            title=exc.title,
            headers=exc.headers,
        )

    async def validation_exc(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(
            request,
            422,
            detail="the request is not valid",
            type_="validation",
            errors=_clean_errors(exc.errors()),
        )

    async def cursor_exc(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(request, 422, detail=str(exc), type_="validation")

    async def auditagent_exc(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuditagentError)
        status, kind = _status_for(exc)
        if status >= 500:
            log.warning("%s on %s: %s", type(exc).__name__, request.url.path, exc)
        return problem_response(request, status, detail=str(exc), type_=kind)

    async def db_exc(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database error on %s: %s", request.url.path, type(exc).__name__)
        return problem_response(
            request, 503, detail="the database is unavailable", type_="database-unavailable"
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return problem_response(request, 500, detail="internal error", type_="internal")

    handlers: dict[type[Exception], Callable[[Request, Exception], Any]] = {
        StarletteHTTPException: http_exc,
        ProblemError: problem_exc,
        RequestValidationError: validation_exc,
        InvalidCursor: cursor_exc,
        AuditagentError: auditagent_exc,
        OperationalError: db_exc,
        DBAPIError: db_exc,
        Exception: unexpected,
    }
    for cls, handler in handlers.items():
        app.add_exception_handler(cls, handler)


# --- OpenAPI --------------------------------------------------------------------------------

_DESCRIPTIONS = {
    401: "Missing, malformed, unknown or revoked bearer token",
    403: "Outside the caller's role or tenant",
    404: "No such resource visible to the caller",
    409: "A sealed record failed its integrity check",
    410: "The session's content was erased (data key destroyed)",
    422: "Invalid parameters",
    503: "Database or access log unavailable (reads fail closed)",
}

_REF = {"$ref": "#/components/schemas/Problem"}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry declaring problem+json bodies for ``statuses``."""
    return {
        s: {
            "description": _DESCRIPTIONS.get(s, HTTPStatus(s).phrase),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _REF}},
        }
        for s in statuses
    }


def install_openapi(app: FastAPI) -> None:
    """Make the generated document match what the handlers send: every 422 is a Problem in
    problem+json (not FastAPI's HTTPValidationError) and the Problem schema is a component."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for path_item in schema.get("paths", {}).values():
            for op in path_item.values():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                responses = op["responses"]
                if "422" in responses:
                    responses["422"] = problem_responses(422)[422]
                for status, spec in responses.items():
                    content = spec.get("content", {})
                    if status.startswith(("4", "5")) and "application/json" in content:
                        # FastAPI adds an application/json body next to ours; it never sends it.
                        del content["application/json"]
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
