"""Request dependencies: database, key provider, the authenticated principal and its scope.

Scope rule (documented in docs/api.md and the OpenAPI text): a principal with a tenant sees only
that tenant. Naming another tenant explicitly in a filter is 403; a session id of another tenant
is 404, so that ids cannot be used to probe which sessions exist elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine

from auditagent.integrity.checkpoints import CheckpointSink, default_sink
from auditagent.keys import KeyProvider
from auditagent.settings import Settings
from auditagent.store import access_log, principals
from auditagent.store.access_log import AccessEntry, LoggedAccess
from auditagent.store.principals import Principal

from .problems import ProblemError, correlation_id
from .schemas import SAFE_TEXT

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key from `auditagent apikey create` (prefix `aa_`).",
)

_CHALLENGE = 'Bearer realm="auditagent"'


# The dependencies that only read the app's state or the request are coroutines: FastAPI runs
# a plain function in its thread pool, and each hop there and back costs every request a
# couple of context switches (most of a millisecond on a loaded box) for nothing.


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_key_provider(request: Request) -> KeyProvider:
    provider: KeyProvider = request.app.state.key_provider
    return provider


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DbDep = Annotated[Engine, Depends(get_engine)]
KeysDep = Annotated[KeyProvider, Depends(get_key_provider)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


class RequestConnection:
    """One pooled connection for the whole request (authentication, the access-log commit and
    the read), checked out on first use so a request refused before touching the database
    never takes one. Each step runs in its own transaction; see ``AccessContext.record``."""

    __slots__ = ("_conn", "engine")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    @property
    def checked_out(self) -> bool:
        return self._conn is not None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


async def get_request_connection(engine: DbDep) -> AsyncIterator[RequestConnection]:
    # Nothing to do before the handler (the connection is checked out on first use); only
    # returning it to the pool can touch the network, so only that goes to the thread pool.
    holder = RequestConnection(engine)
    try:
        yield holder
    finally:
        if holder.checked_out:
            await run_in_threadpool(holder.close)


# "function": returned to the pool when the handler returns, not after the body is sent.
ConnDep = Annotated[RequestConnection, Depends(get_request_connection, scope="function")]


def get_principal(
    request: Request,
    db: ConnDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise ProblemError(
            401,
            "a bearer token is required",
            type_="unauthenticated",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    principal = principals.authenticate_on(db.conn, credentials.credentials)
    if principal is None:
        raise ProblemError(
            401,
            "the token is not valid (unknown or revoked)",
            type_="unauthenticated",
            headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'},
        )
    # Known from here on: a refusal of this principal is access-logged (problems.log_denial).
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise ProblemError(
            403,
            "this needs an admin key",
            type_="forbidden",
            audit={"action": "admin.denied", "tenant": principal.tenant},
        )
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def scope_tenant(principal: Principal, requested: str | None) -> str | None:
    """The tenant a query is limited to; None means every tenant (tenantless admins only)."""
    if principal.tenant is None:
        return requested
    if requested is not None and requested != principal.tenant:
        raise ProblemError(
            403,
            "that tenant is outside this key's scope",
            type_="forbidden",
            audit={"action": "tenant.denied", "tenant": requested},
        )
    return principal.tenant


def can_see(principal: Principal, tenant: str) -> bool:
    return principal.tenant is None or principal.tenant == tenant


def required_tenant(principal: Principal, requested: str | None) -> str:
    """A change (policy, hold, erasure) names its tenant; a tenant-bound admin's is its own."""
    tenant = scope_tenant(principal, requested)
    if tenant is None:
        raise ProblemError(422, "a tenant is required", type_="validation")
    return tenant


def actor(principal: Principal) -> str:
    """Who made a change, as the signed change log and the runs record it."""
    return f"{principal.name} ({principal.id})"[:256]


def get_retention_engine(request: Request) -> Engine:
    """Changes run on the retention engine (``AUDITAGENT_RETENTION_DATABASE_URL`` when the API
    itself runs as the application role, which may not change what decides expiry)."""
    engine: Engine | None = getattr(request.app.state, "retention_engine", None)
    if engine is None:
        engine = request.app.state.engine
    assert engine is not None
    return engine


RetentionDbDep = Annotated[Engine, Depends(get_retention_engine)]


def get_sink(settings: SettingsDep) -> CheckpointSink:
    return default_sink(settings)


SinkDep = Annotated[CheckpointSink, Depends(get_sink)]


ReasonHeader = Annotated[
    str | None,
    Header(
        alias="X-Audit-Reason",
        max_length=1000,
        pattern=SAFE_TEXT,
        description="Why this read is made (ticket, case number); kept in the access log.",
    ),
]


@dataclass(frozen=True)
class AccessContext:
    """Everything needed to write the access-log row for this request."""

    engine: Engine
    principal: Principal
    reason: str | None
    route: str
    correlation_id: str
    db: RequestConnection | None = None
    """The request's connection: the row is committed on it (in a transaction of its own)."""
    settings: Settings | None = None
    """The service's settings (where its checkpoints are, for instance)."""

    @property
    def conn(self) -> Connection:
        """The request's connection, for reads after ``record`` (no extra pool checkout)."""
        if self.db is None:
            raise RuntimeError("no request connection")
        return self.db.conn

    def entry(
        self,
        action: str,
        *,
        tenant: str | None,
        session_id: uuid.UUID | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AccessEntry:
        """The access-log row this request writes for ``action``."""
        return AccessEntry(
            action=action,
            principal_id=self.principal.id,
            principal_name=self.principal.name,
            role=self.principal.role,
            tenant=tenant,
            session_id=session_id,
            route=self.route,
            reason=self.reason,
            correlation_id=self.correlation_id,
            detail=detail or {},
        )

    def record(
        self,
        action: str,
        *,
        tenant: str | None,
        session_id: uuid.UUID | None = None,
        detail: dict[str, Any] | None = None,
    ) -> LoggedAccess:
        """Commit the access-log row; raises (-> 503) when it cannot, so nothing is returned.

        On the request's connection, anything it had begun implicitly is rolled back first:
        the commit carries the access-log row and nothing else."""
        entry = self.entry(action, tenant=tenant, session_id=session_id, detail=detail)
        if self.db is None:
            return access_log.append_access(self.engine, entry)
        return access_log.append_access_on(self.db.conn, entry)


async def get_access(
    request: Request,
    engine: DbDep,
    db: ConnDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> AccessContext:
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    return AccessContext(
        engine=engine,
        principal=principal,
        reason=reason or None,
        route=f"{request.method} {path}"[:256],
        correlation_id=correlation_id(request),
        db=db,
        settings=getattr(request.app.state, "settings", None),
    )


AccessDep = Annotated[AccessContext, Depends(get_access)]
