"""Retention policies: versioned, kept in calendar terms, never under the floor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ..errors import AuditagentError, NotFound
from ..keys import KeyProvider
from ..period import RetentionPeriod
from ..settings import Settings
from ..store import policies as policy_store
from ..store.policies import Policy
from .guards import PolicyBelowFloor, load_keys, note_changes, signer_for

if TYPE_CHECKING:
    from ..integrity.checkpoints import CheckpointSink


def _period(
    keep_days: int | None, keep_months: int | None, keep_years: int | None
) -> RetentionPeriod:
    for name, v in (
        ("keep_days", keep_days),
        ("keep_months", keep_months),
        ("keep_years", keep_years),
    ):
        if v is not None and v < 0:
            raise AuditagentError(f"{name} cannot be negative", fix="pass a positive number")
    period = RetentionPeriod.of(years=keep_years, months=keep_months, days=keep_days)
    if period.empty:
        raise AuditagentError(
            "a policy must keep records for at least a day",
            fix="pass --keep-years, --keep-months and/or --keep-days",
        )
    return period


def set_policy(
    engine: Engine,
    settings: Settings,
    *,
    tenant: str,
    agent: str | None,
    keep_days: int | None = None,
    keep_months: int | None = None,
    keep_years: int | None = None,
    created_by: str,
    key_provider: KeyProvider | None = None,
    sink: CheckpointSink | None = None,
) -> Policy:
    """Write a new version of the policy of (tenant, agent), kept in calendar terms. The floor
    is never undercut: a regulated user who needs a shorter period changes the floor setting
    deliberately."""
    period = _period(keep_days, keep_months, keep_years)
    if not period.covers(settings.retention_floor):
        raise PolicyBelowFloor(period, settings.retention_floor)
    keys = key_provider or load_keys(settings)
    policy = policy_store.put_policy(
        engine,
        signer_for(keys),
        tenant=tenant,
        agent=agent,
        period=period,
        created_by=created_by,
        floor=settings.retention_floor,
    )
    note_changes(engine, keys, sink)
    return policy


def remove_policy(
    engine: Engine,
    settings: Settings,
    *,
    tenant: str,
    agent: str | None,
    removed_by: str,
    key_provider: KeyProvider | None = None,
    sink: CheckpointSink | None = None,
) -> Policy:
    """Remove the policy of (tenant, agent) (a ``deleted`` version); the tenant-wide policy or
    the default then applies. Returns the version that was in force."""
    keys = key_provider or load_keys(settings)
    removed = policy_store.delete_policy(
        engine,
        signer_for(keys),
        tenant=tenant,
        agent=agent,
        deleted_by=removed_by,
        floor=settings.retention_floor,
    )
    if removed is None:
        what = f"tenant {tenant!r}" + (f" agent {agent!r}" if agent else "")
        raise NotFound(
            f"no retention policy for {what}",
            fix="list them with `auditagent retention policy list` or GET /v1/retention/policies",
        )
    note_changes(engine, keys, sink)
    return removed
