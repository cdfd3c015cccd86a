"""`/v1/retention/runs` and `/v1/erasure` (admins only): a retention run now (a dry run by
default) and a participant's erasure, both answered with what the run covered and deleted.

Every handler writes its access-log row before it acts; a participant identity is never put in
the log (only that an erasure was requested, its tenant and its run).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from auditagent import retention

from ..deps import (
    AccessDep,
    AdminDep,
    KeysDep,
    RetentionDbDep,
    SettingsDep,
    SinkDep,
    actor,
    required_tenant,
    scope_tenant,
)
from ..problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, problem_responses
from ..schemas import SAFE_TEXT, ErasureIn, PlannedSession, Problem, RunOut
from .erased import deletion_out

router = APIRouter(tags=["retention"])


def _run_out(report: retention.RunReport) -> RunOut:
    return RunOut(
        run_id=report.run_id,
        dry_run=report.dry_run,
        complete=report.complete,
        sessions_planned=report.matched,
        events_planned=report.events_planned,
        sessions_deleted=report.sessions_deleted,
        events_deleted=report.events_deleted,
        sessions_skipped_held=report.sessions_skipped_held,
        sessions_not_due=report.sessions_not_due,
        errors=report.errors,
        checkpoint_written=report.checkpoint is not None,
        sessions=[
            PlannedSession(
                session_id=c.session_id,
                tenant=c.tenant,
                status=c.status,
                ended_at=c.ended_at,
                event_count=c.event_count,
                policy=c.policy,
            )
            for c in report.candidates[:1000]
        ],
        deletion_records=[deletion_out(r) for r in report.deletion_records],
    )


@router.post(
    "/v1/retention/runs",
    response_model=RunOut,
    responses=problem_responses(401, 403, 409, 422, 503),
)
def run_retention(
    admin: AdminDep,
    access: AccessDep,
    settings: SettingsDep,
    keys: KeysDep,
    engine: RetentionDbDep,
    sink: SinkDep,
    dry_run: bool = True,
    tenant: Annotated[str | None, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)] = None,
) -> RunOut:
    """Run retention now, on the database's clock (`dry_run=true` by default: only report what
    would be deleted). Held sessions are kept; an admin bound to a tenant runs only that
    tenant. **409** when the signed policy/hold log or the deletion chain does not verify."""
    scope = scope_tenant(admin, tenant)
    plan = retention.plan_retention(engine, settings, tenant=scope)
    access.record(
        "retention.run",
        tenant=scope,
        detail={"dry_run": dry_run, "sessions_matched": plan.matched},
    )
    if dry_run:
        return _run_out(plan)
    report = retention.execute_plan(
        engine,
        settings,
        plan,
        key_provider=keys,
        trigger="api",
        requested_by=actor(admin),
        sink=sink,
    )
    return _run_out(report)


def _hold_problem(request: Request, exc: retention.ErasureBlocked) -> JSONResponse:
    body = Problem(
        type=PROBLEM_TYPE_BASE + "legal-hold",
        title=HTTPStatus(409).phrase,
        status=409,
        detail=str(exc),
        instance=request.url.path,
    ).model_dump(exclude_none=True)
    body["legal_holds"] = [
        {
            "id": str(h.id),
            "scope": h.scope,
            "reason": h.reason,
            "created_by": h.created_by,
            "created_at": h.created_at.isoformat(),
        }
        for h in exc.holds
    ]
    return JSONResponse(body, status_code=409, media_type=PROBLEM_MEDIA_TYPE)


@router.post(
    "/v1/erasure",
    response_model=RunOut,
    responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
)
def erase(
    body: ErasureIn,
    request: Request,
    admin: AdminDep,
    access: AccessDep,
    keys: KeysDep,
    settings: SettingsDep,
    engine: RetentionDbDep,
    sink: SinkDep,
) -> Any:
    """Erase a participant (GDPR Art. 17): every session of theirs in the tenant is
    crypto-shredded (its data key destroyed), then its records are deleted, each with a
    signed deletion record. `sessions_planned` says how many it matched. **404** when it
    matches no session (unless `allow_empty`) or the tenant is unknown; **409** naming the
    hold when a legal hold covers any of it."""
    tenant = required_tenant(admin, body.tenant)
    access.record("erasure.request", tenant=tenant, detail={"allow_empty": body.allow_empty})
    try:
        report = retention.erase_participant(
            engine,
            keys,
            settings=settings,
            tenant=tenant,
            participant=body.participant,
            reason=body.reason,
            requested_by=actor(admin),
            allow_empty=body.allow_empty,
            sink=sink,
        )
    except retention.ErasureBlocked as exc:
        return _hold_problem(request, exc)
    return _run_out(report)
