"""`create_app(settings)`: the review service. Nothing is built at import time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from auditagent.keys import KeyProvider, load_key_provider
from auditagent.metrics import metrics
from auditagent.settings import Settings
from auditagent.store.db import ensure_schema_current, make_engine

from .docs import install_docs
from .problems import install_openapi, install_problem_handlers
from .routes import (
    access_log,
    admin,
    analytics,
    audio,
    deletions,
    erased,
    health,
    holds,
    policies,
    runs,
    search,
    sessions,
)
from .ui import install_ui

API_DESCRIPTION = """\
Review service for auditagent records.

**Auth**: `Authorization: Bearer <token>` (from `auditagent apikey create`). An auditor reads its
tenant; an admin without a tenant spans every tenant. A filter naming a tenant outside the key's
scope is **403**; a session id belonging to another tenant is **404**, the same as a missing one,
so ids cannot be used to probe for sessions elsewhere.

**Access log**: every read is recorded (who, what, when, `X-Audit-Reason`) before any content is
returned; when that record cannot be written the read is refused with **503** (fail closed).

Errors are RFC 9457 `application/problem+json`.
"""


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    key_provider: KeyProvider | None = None,
) -> FastAPI:
    """The FastAPI app. Given an ``engine`` or ``key_provider`` it uses them (and does not
    dispose the engine); otherwise the lifespan builds them from ``settings``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        eng = engine if engine is not None else await run_in_threadpool(make_engine, settings)
        try:
            await run_in_threadpool(ensure_schema_current, eng)
            provider = key_provider
            if provider is None:
                provider = await run_in_threadpool(load_key_provider, settings)
            app.state.engine = eng
            app.state.key_provider = provider
            app.state.settings = settings
            yield
        finally:
            if own_engine:
                eng.dispose()

    app = FastAPI(
        title="auditagent review API",
        version="1",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by docs.install_docs from local assets
        redoc_url=None,
    )
    # Injected dependencies are usable even by a client that never runs the lifespan (an
    # ASGI test transport); the lifespan still checks the schema when it does run.
    app.state.settings = settings
    if engine is not None:
        app.state.engine = engine
    if key_provider is not None:
        app.state.key_provider = key_provider
    install_problem_handlers(app)

    @app.middleware("http")
    async def observe_latency(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            # The route template, not the raw path, keeps label cardinality bounded.
            route = request.scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            metrics().api_seconds.labels(
                route=label, method=request.method, status=str(status)
            ).observe(time.perf_counter() - start)

    for module in (sessions, search, audio, access_log, analytics, admin, health):
        app.include_router(module.router)
    app.include_router(policies.router)
    app.include_router(runs.router)
    app.include_router(holds.router)
    app.include_router(deletions.router)
    erased.install(app, settings)  # 410 with the deletion record; the retention engine
    install_openapi(app)
    install_docs(app)
    install_ui(app)  # the review UI: after the problem handlers, which it renders as pages
    return app
