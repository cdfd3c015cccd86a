"""`/v1/retention/policies`, `/v1/retention/runs` and `/v1/erasure` (admins only), plus the 410
answer for an erased session, which carries its deletion record, and the verify answer for an
erased session (``erased: true`` with its deletion record, not an integrity failure).

Every handler writes its access-log row before it acts; a participant identity is never put in
the log (only that an erasure was requested, its tenant and its run). Changes run on the
retention engine (``AUDITAGENT_RETENTION_DATABASE_URL`` when the API itself runs as the
application role, which may not change what decides expiry).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from auditagent import retention
from auditagent.checkpoints import CheckpointSink, default_sink
from auditagent.keys import KeyProvider
from auditagent.period import RetentionPeriod
from auditagent.retention_proof import record_problems, verify_changes
from auditagent.review import KeyShredded
from auditagent.settings import Settings
from auditagent.store import retention as store
from auditagent.store.admin import Principal

from ..deps import AccessDep, AdminDep, KeysDep, SettingsDep, scope_tenant
from ..problems import PROBLEM_MEDIA_TYPE, Problem, ProblemError, problem_responses
from ..schemas import SAFE_TEXT, DeletionRecordOut, VerifyReport

router = APIRouter(tags=["retention"])

_PROBLEM_BASE = "https://auditagent.dev/problems/"

__all__ = ["DeletionRecordOut", "deletion_out", "erased_verify_report", "install", "router"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def get_retention_engine(request: Request) -> Engine:
    engine: Engine | None = getattr(request.app.state, "retention_engine", None)
    if engine is None:
        engine = request.app.state.engine
    assert engine is not None
    return engine


RetentionDbDep = Annotated[Engine, Depends(get_retention_engine)]


def get_sink(settings: SettingsDep) -> CheckpointSink:
    return default_sink(settings)


SinkDep = Annotated[CheckpointSink, Depends(get_sink)]


class Period(_Model):
    years: int
    months: int
    days: int


def _period_out(p: RetentionPeriod) -> Period:
    return Period(years=p.years, months=p.months, days=p.days)


class RetentionPolicy(_Model):
    id: uuid.UUID
    tenant: str
    agent: str | None = Field(description="Agent label; null: every agent of the tenant")
    keep_days: int
    keep_months: int = 0
    keep_years: int = 0
    version: int = Field(default=1, description="Policies are versioned, never overwritten")
    created_by: str
    created_at: datetime


class RetentionPolicies(_Model):
    default_keep_days: int = Field(
        description="Applies where no policy matches: its shortest length in days"
    )
    floor_days: int = Field(
        description="No policy keeps records for less: the floor's shortest length in days"
    )
    default: Period = Field(description="The default in calendar terms")
    floor: Period = Field(description="The floor in calendar terms, enforced at run time too")
    items: list[RetentionPolicy]


class PolicyIn(BaseModel):
    """A period of at least one day, in calendar terms; under the server's floor is 409."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"minimum": 1}}}
                for name in ("keep_years", "keep_months", "keep_days")
            ]
        },
    )

    tenant: str = Field(min_length=1, max_length=128, pattern=SAFE_TEXT)
    agent: str | None = Field(default=None, min_length=1, max_length=256, pattern=SAFE_TEXT)
    keep_days: int = Field(
        default=0,
        ge=0,
        le=36_500,
        description="Days kept after a session ends (added to years and months)",
    )
    keep_months: int = Field(default=0, ge=0, le=1_200, description="Calendar months")
    keep_years: int = Field(default=0, ge=0, le=100, description="Calendar years")


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
    sessions_planned: int = Field(description="Sessions the run covers: it deletes no others")
    events_planned: int
    sessions_deleted: int
    events_deleted: int
    sessions_skipped_held: int
    sessions_not_due: int = 0
    errors: int
    checkpoint_written: bool = False
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
    allow_empty: bool = Field(
        default=False,
        description="Succeed when the participant has no session (otherwise 404)",
    )


def actor(principal: Principal) -> str:
    return f"{principal.name} ({principal.id})"[:256]


def required_tenant(principal: Principal, requested: str | None) -> str:
    tenant = scope_tenant(principal, requested)
    if tenant is None:
        raise ProblemError(422, "a tenant is required", type_="validation")
    return tenant


def deletion_out(r: store.DeletionRecord, problems: list[str] | None = None) -> DeletionRecordOut:
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
        prev_hash=r.prev_hash.hex(),
        basis=r.basis,
        signature=base64.b64encode(r.signature).decode() if r.signature else None,
        valid=None if problems is None else not problems,
        problems=problems or [],
    )


def _policy_out(p: store.Policy) -> RetentionPolicy:
    return RetentionPolicy(
        id=p.id,
        tenant=p.tenant,
        agent=p.agent,
        keep_days=p.keep_days,
        keep_months=p.keep_months,
        keep_years=p.keep_years,
        version=p.version,
        created_by=p.created_by,
        created_at=p.created_at,
    )


def _floor_problem(exc: retention.PolicyBelowFloor) -> ProblemError:
    # 409, not 422: the request is well formed; it conflicts with the server's floor setting.
    return ProblemError(409, str(exc), type_="below-retention-floor")


_PUT_POLICY_ERRORS = {
    **problem_responses(400, 401, 403, 409, 422, 503),
    409: {
        **problem_responses(409)[409],
        "description": "The period is under the configured retention floor",
    },
}


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
    """Policies in force for the admin's tenant (or every tenant), with the default and the
    floor."""
    scope = scope_tenant(admin, tenant)
    access.record("retention.policies.list", tenant=scope)
    return RetentionPolicies(
        default_keep_days=settings.retention_default.min_days,
        floor_days=settings.retention_floor.min_days,
        default=_period_out(settings.retention_default),
        floor=_period_out(settings.retention_floor),
        items=[_policy_out(p) for p in store.list_policies(access.engine, tenant=scope)],
    )


@router.put(
    "/v1/retention/policies",
    response_model=RetentionPolicy,
    responses=_PUT_POLICY_ERRORS,
)
def put_policy(
    body: PolicyIn,
    admin: AdminDep,
    access: AccessDep,
    settings: SettingsDep,
    keys: KeysDep,
    engine: RetentionDbDep,
    sink: SinkDep,
) -> RetentionPolicy:
    """Write a new version of the policy for (tenant, agent), in calendar terms (years, months,
    days). A period under the configured floor (`GET` shows it) is refused with **409** naming
    the floor; the floor holds for every start date (365 days do not cover one year)."""
    tenant = required_tenant(admin, body.tenant)
    period = RetentionPeriod(body.keep_years, body.keep_months, body.keep_days)
    if period.empty:
        raise ProblemError(
            422,
            "a policy must keep records for at least a day: set keep_years, keep_months or "
            "keep_days",
            type_="validation",
        )
    if not period.covers(settings.retention_floor):
        raise _floor_problem(retention.PolicyBelowFloor(period, settings.retention_floor))
    access.record(
        "retention.policies.put",
        tenant=tenant,
        detail={"agent": body.agent, **period.to_json()},
    )
    policy = retention.set_policy(
        engine,
        settings,
        tenant=tenant,
        agent=body.agent,
        keep_days=body.keep_days,
        keep_months=body.keep_months,
        keep_years=body.keep_years,
        created_by=actor(admin),
        key_provider=keys,
        sink=sink,
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
    settings: SettingsDep,
    keys: KeysDep,
    engine: RetentionDbDep,
    sink: SinkDep,
    tenant: Annotated[str, Query(min_length=1, max_length=128, pattern=SAFE_TEXT)],
    agent: Annotated[str | None, Query(min_length=1, max_length=256, pattern=SAFE_TEXT)] = None,
) -> Response:
    """Remove a policy (a new, removed version); the tenant-wide policy or the default then
    applies."""
    scope = required_tenant(admin, tenant)
    access.record("retention.policies.delete", tenant=scope, detail={"agent": agent})
    retention.remove_policy(
        engine,
        settings,
        tenant=scope,
        agent=agent,
        removed_by=actor(admin),
        key_provider=keys,
        sink=sink,
    )
    return Response(status_code=204)


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


def erased_verify_report(
    engine: Engine, conn: Connection, keys: KeyProvider, session: Any
) -> VerifyReport | None:
    """For a session whose data key is destroyed: ``ok`` when a valid signed deletion record
    accounts for it (an erased session is not an integrity failure), not ok when there is no
    record (the key was destroyed outside auditagent) or the record does not verify. None for
    a session that was not erased: verify its chain instead."""
    if session.status not in ("shredded", "purged") and not store.data_key_destroyed(
        conn, session.id
    ):
        return None
    records = store.deletion_records_on(conn, session.id)
    if not records:
        return VerifyReport(
            session_id=session.id,
            ok=False,
            events=0,
            first_bad_seq=None,
            reason="erased without a deletion record: its data key was destroyed outside "
            "auditagent",
            head_hash="",
            erased=True,
        )
    record = records[-1]
    public = keys.signing_public_key()
    problems = record_problems(
        record, verify_changes(engine, public_key=public, compare_tables=False), public
    )
    count = int(session.event_count or 0)
    if record.event_count < count:
        problems.append(
            f"the session had {count} records, its deletion record accounts for "
            f"{record.event_count}"
        )
    elif (
        record.event_count == count
        and count > 0
        and session.head_hash is not None
        and record.final_hash != bytes(session.head_hash)
    ):
        problems.append("its deletion record's final hash differs from the session's head")
    return VerifyReport(
        session_id=session.id,
        ok=not problems,
        events=record.event_count,
        first_bad_seq=None,
        reason="; ".join(problems) or None,
        head_hash=record.final_hash.hex() if record.final_hash else "",
        erased=True,
        deletion_record=deletion_out(record, problems),
    )


def install(app: FastAPI, settings: Settings) -> None:
    """An erased session answers 410 with its deletion record (``deletion_record``: null when
    the key was destroyed some other way); a separate retention engine is built when
    ``AUDITAGENT_RETENTION_DATABASE_URL`` is set."""
    previous_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        async with previous_lifespan(app_) as state:
            own: Engine | None = None
            if settings.retention_database_url:
                from auditagent.store.db import make_engine, sqlalchemy_url

                own = await run_in_threadpool(
                    make_engine, settings, url=sqlalchemy_url(settings.retention_database_url)
                )
                app_.state.retention_engine = own
            try:
                yield state
            finally:
                if own is not None:
                    own.dispose()

    app.router.lifespan_context = lifespan

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
