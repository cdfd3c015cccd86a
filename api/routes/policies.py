"""`/v1/retention/policies` (admins only): the policies in force with the default and the
floor, a new policy version, a policy's removal.

Every handler writes its access-log row before it acts. Changes run on the retention engine
and are signed entries of the retention change log.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from auditagent import retention
from auditagent.period import RetentionPeriod
from auditagent.store import policies as policy_store

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
from ..problems import ProblemError, problem_responses
from ..schemas import SAFE_TEXT, Period, PolicyIn, RetentionPolicies, RetentionPolicy

router = APIRouter(tags=["retention"])


def _period_out(p: RetentionPeriod) -> Period:
    return Period(years=p.years, months=p.months, days=p.days)


def _policy_out(p: policy_store.Policy) -> RetentionPolicy:
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
        items=[_policy_out(p) for p in policy_store.list_policies(access.engine, tenant=scope)],
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
