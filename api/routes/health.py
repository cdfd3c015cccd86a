"""`/healthz` and `/metrics`: unauthenticated, content-free."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from auditagent.metrics import metrics
from auditagent.store.db import check_reachable

from ..deps import DbDep
from ..problems import problem_responses
from ..schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, responses=problem_responses(503))
def healthz(db: DbDep) -> Health:
    """200 when the database answers; a 503 problem otherwise."""
    check_reachable(db)
    return Health(status="ok", database="ok")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition",
        }
    },
)
def prometheus_metrics() -> Response:
    """Records written, spool depth, flush latency, API latency, access-log writes."""
    return Response(generate_latest(metrics().registry), media_type=CONTENT_TYPE_LATEST)
