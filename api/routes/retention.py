"""`/v1/retention/policies`, `/v1/retention/runs` and `/v1/erasure` (admins only), plus the 410
answer for an erased session, which carries its deletion record.

Every handler writes its access-log row before it acts; a participant identity is never put in
the log (only that an erasure was requested, its tenant and its run).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from auditagent import retention
from auditagent.review import KeyShredded
from auditagent.settings import Settings
from auditagent.store import retention as store
from auditagent.store.admin import Principal

from ..deps import AccessDep, AdminDep, KeysDep, SettingsDep, scope_tenant
from ..problems import PROBLEM_MEDIA_TYPE, Problem, ProblemError, problem_responses
from ..schemas import SAFE_TEXT

router = APIRouter(tags=["retention"])

_PROBLEM_BASE = "https://auditagent.dev/problems/"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetentionPolicy(_Model):
    id: uuid.UUID
    tenant: str
    agent: str | None = Field(description="Agent label; null: every agent of the tenant")
    keep_days: int
    created_by: str
    created_at: datetime


class RetentionPolicies(_Model):
    default_keep_days: int = Field(description="Applies where no policy matches")
    floor_days: int = Field(description="No policy may keep records for fewer days")
    items: list[RetentionPolicy]


class PolicyIn(_Model):
    tenant: str = Field(min_length=1, max_length=128, pattern=SAFE_TEXT)
    agent: str | None = Field(default=None, min_length=1, max_length=256, pattern=SAFE_TEXT)
    keep_days: int = Field(
        ge=1,
        le=36_500,
        description="Days kept after a session ends; the served schema's minimum is the "
        "configured floor",
    )


class DeletionRecordOut(_Model):
    seq: int
    run_id: uuid.UUID | None
    session_id: uuid.UUID
    tenant: str
    policy: str
    reason: str
    event_count: int
    final_hash: str | None = Field(description="Hex hash of the session's last record")
    deleted_at: datetime
    hash: str = Field(description="Hex hash of this record in the deletion chain")


class PlannedSession(_Model):
    session_id: uuid.UUID
    tenant: str
    status: str
    ended_at: datetime | None
    event_count: int
    policy: str


class RunOut(_Model):
    run_id: uuid.UUID | None
    dry_run: bool
    complete: bool
    sessions_planned: int
    events_planned: int
    sessions_deleted: int
    events_deleted: int
    sessions_skipped_held: int
    errors: int
    sessions: list[PlannedSession] = Field(description="At most 1000 of the planned sessions")
    deletion_records: list[DeletionRecordOut]


class ErasureIn(_Model):
    tenant: str = Field(min_length=1, max_length=128, pattern=SAFE_TEXT)
    participant: str = Field(min_length=1, max_length=256, pattern=SAFE_TEXT)
    reason: str = Field(
        min_length=1,
        max_length=1000,
        pattern=SAFE_TEXT,
        description="Request reference; kept with the run. No personal data.",
    )


def actor(principal: Principal) -> str:
    return f"{principal.name} ({principal.id})"[:256]


def required_tenant(principal: Principal, requested: str | None) -> str:
    tenant = scope_tenant(principal, requested)
    if tenant is None:
        raise ProblemError(422, "a tenant is required", type_="validation")
    return tenant


def deletion_out(r: store.DeletionRecord) -> DeletionRecordOut:
    return DeletionRecordOut(
        seq=r.seq,
        run_id=r.run_id,
        session_id=r.session_id,
        tenant=r.tenant,
        policy=r.policy,
        reason=r.reason,
        event_count=r.event_count,
        final_hash=r.final_hash.hex() if r.final_hash is not None else None,
        deleted_at=r.deleted_at,
        hash=r.hash.hex(),
    )


def _policy_out(p: store.Policy) -> RetentionPolicy:
    return RetentionPolicy(
        id=p.id,
        tenant=p.tenant,
        agent=p.agent,
        keep_days=p.keep_days,
        created_by=p.created_by,
        created_at=p.created_at,
    )


@router.get(
    "/v1/retention/policies",
    response_model=RetentionPolicies,
    responses=problem_responses(401, 403, 422, 503),
)
def list_policies(
    admin: AdminDep,
    access: AccessDep,
    settings: SettingsDep,
    tenant: Annotated[str | None, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)] = None,
) -> RetentionPolicies:
    """Policies of the admin's tenant (or every tenant), with the default and the floor."""
    scope = scope_tenant(admin, tenant)
    access.record("retention.policies.list", tenant=scope)
    return RetentionPolicies(
        default_keep_days=settings.retention_default_days,
        floor_days=settings.retention_floor_days,
        items=[_policy_out(p) for p in store.list_policies(access.engine, tenant=scope)],
    )


@router.put(
    "/v1/retention/policies",
    response_model=RetentionPolicy,
    responses=problem_responses(400, 401, 403, 422, 503),
)
def put_policy(
    body: PolicyIn, admin: AdminDep, access: AccessDep, settings: SettingsDep
) -> RetentionPolicy:
    """Create or replace the policy for (tenant, agent). A `keep_days` below the configured
    floor is refused with 422 naming the floor."""
    tenant = required_tenant(admin, body.tenant)
    if body.keep_days < settings.retention_floor_days:
        raise ProblemError(
            422,
            str(retention.PolicyBelowFloor(body.keep_days, settings.retention_floor_days)),
            type_="below-retention-floor",
        )
    access.record(
        "retention.policies.put",
        tenant=tenant,
        detail={"agent": body.agent, "keep_days": body.keep_days},
    )
    policy = retention.set_policy(
        access.engine,
        settings,
        tenant=tenant,
        agent=body.agent,
        keep_days=body.keep_days,
        created_by=actor(admin),
    )
    return _policy_out(policy)


@router.delete(
    "/v1/retention/policies",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422, 503),
)
def delete_policy(
    admin: AdminDep,
    access: AccessDep,
    tenant: Annotated[str, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)],
    agent: Annotated[str | None, Query(min_length=1, max_length=256, pattern=SAFE_TEXT)] = None,
) -> Response:
    """Remove a policy; the tenant-wide policy or the default then applies."""
    scope = required_tenant(admin, tenant)
    access.record("retention.policies.delete", tenant=scope, detail={"agent": agent})
    retention.remove_policy(access.engine, tenant=scope, agent=agent)
    return Response(status_code=204)


def _run_out(report: retention.RunReport) -> RunOut:
    return RunOut(
        run_id=report.run_id,
        dry_run=report.dry_run,
        complete=report.complete,
        sessions_planned=len(report.candidates),
        events_planned=report.events_planned,
        sessions_deleted=report.sessions_deleted,
        events_deleted=report.events_deleted,
        sessions_skipped_held=report.sessions_skipped_held,
        errors=report.errors,
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
    "/v1/retention/runs", response_model=RunOut, responses=problem_responses(401, 403, 422, 503)
)
def run_retention(
    admin: AdminDep,
    access: AccessDep,
    settings: SettingsDep,
    dry_run: bool = True,
    tenant: Annotated[str | None, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)] = None,
) -> RunOut:
    """Run retention now (`dry_run=true` by default: only report what would be deleted).
    Held sessions are kept; an admin bound to a tenant runs only that tenant."""
    scope = scope_tenant(admin, tenant)
    access.record("retention.run", tenant=scope, detail={"dry_run": dry_run})
    report = retention.run_retention(
        access.engine,
        settings,
        tenant=scope,
        dry_run=dry_run,
        trigger="api",
        requested_by=actor(admin),
    )
    return _run_out(report)


def _hold_problem(request: Request, exc: retention.ErasureBlocked) -> JSONResponse:
    body = Problem(
        type=_PROBLEM_BASE + "legal-hold",
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
    responses=problem_responses(400, 401, 403, 409, 422, 503),
)
def erase(
    body: ErasureIn, request: Request, admin: AdminDep, access: AccessDep, keys: KeysDep
) -> Any:
    """Erase a participant (GDPR Art. 17): every session of theirs in the tenant is
    crypto-shredded (its data key destroyed), then its records are deleted, each with a
    deletion record. **409** naming the hold when a legal hold covers any of it."""
    tenant = required_tenant(admin, body.tenant)
    access.record("erasure.request", tenant=tenant)
    try:
        report = retention.erase_participant(
            access.engine,
            keys,
            tenant=tenant,
            participant=body.participant,
            reason=body.reason,
            requested_by=actor(admin),
        )
    except retention.ErasureBlocked as exc:
        return _hold_problem(request, exc)
    return _run_out(report)


def install(app: FastAPI, settings: Settings) -> None:
    """An erased session answers 410 with its deletion record (``deletion_record``: null when
    the key was destroyed some other way); the served schema states the retention floor as
    the minimum ``keep_days``."""
    previous = app.openapi

    def openapi() -> dict[str, Any]:
        schema = previous()
        props = (
            schema.get("components", {}).get("schemas", {}).get("PolicyIn", {}).get("properties")
        )
        if props and "keep_days" in props:
            props["keep_days"]["minimum"] = max(1, settings.retention_floor_days)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    async def erased(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KeyShredded)
        record: dict[str, Any] | None = None
        raw = request.path_params.get("session_id")
        engine = getattr(request.app.state, "engine", None)
        if raw is not None and engine is not None:
            try:
                sid = uuid.UUID(str(raw))
            except ValueError:
                sid = None
            if sid is not None:
                found = await run_in_threadpool(store.deletion_records_for, engine, sid)
                if found:
                    record = deletion_out(found[-1]).model_dump(mode="json")
        body = Problem(
            type=_PROBLEM_BASE + "erased",
            title=HTTPStatus(410).phrase,
            status=410,
            detail=str(exc),
            instance=request.url.path,
        ).model_dump(exclude_none=True)
        body["deletion_record"] = record
        return JSONResponse(body, status_code=410, media_type=PROBLEM_MEDIA_TYPE)

    app.add_exception_handler(KeyShredded, erased)
