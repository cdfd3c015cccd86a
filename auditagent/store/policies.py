"""Retention policies (``retention_policies``): versioned, never overwritten."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from ..integrity.ledgers import Signer
from ..period import RetentionPeriod
from .changes import append_change_on
from .locks import LOCK_CHANGES, xact_lock
from .models import RetentionPolicyRow


@dataclass(frozen=True)
class Policy:
    """One version of the policy of (tenant, agent); ``deleted`` marks a removal."""

    id: uuid.UUID
    tenant: str
    agent: str | None
    keep_days: int
    created_by: str
    created_at: datetime
    version: int = 1
    keep_months: int = 0
    keep_years: int = 0
    deleted: bool = False

    @property
    def period(self) -> RetentionPeriod:
        return RetentionPeriod(years=self.keep_years, months=self.keep_months, days=self.keep_days)

    def body(self) -> dict[str, Any]:
        """What the change log holds for this version."""
        return {
            "id": str(self.id),
            "tenant": self.tenant,
            "agent": self.agent,
            "version": self.version,
            "keep_years": self.keep_years,
            "keep_months": self.keep_months,
            "keep_days": self.keep_days,
            "deleted": self.deleted,
            "created_by": self.created_by,
        }


def _policy(row: Any) -> Policy:
    return Policy(
        id=row.id,
        tenant=row.tenant,
        agent=row.agent,
        keep_days=row.keep_days,
        created_by=row.created_by,
        created_at=row.created_at,
        version=row.version,
        keep_months=row.keep_months,
        keep_years=row.keep_years,
        deleted=bool(row.deleted),
    )


_POLICIES = RetentionPolicyRow.__table__


def list_policies(
    engine: Engine, *, tenant: str | None = None, history: bool = False
) -> list[Policy]:
    """The policies in force (newest version of each (tenant, agent), removed ones left out);
    with ``history`` every version, oldest first."""
    p = _POLICIES.c
    stmt = select(_POLICIES)
    if tenant is not None:
        stmt = stmt.where(p.tenant == tenant)
    if history:
        stmt = stmt.order_by(p.tenant, p.agent.nulls_first(), p.version)
    else:
        rank = func.row_number().over(partition_by=(p.tenant, p.agent), order_by=p.version.desc())
        newest = stmt.add_columns(rank.label("rank")).subquery("p")
        stmt = (
            select(*(newest.c[c.name] for c in _POLICIES.c))
            .where(newest.c.rank == 1, ~newest.c.deleted)
            .order_by(newest.c.tenant, newest.c.agent.nulls_first())
        )
    with engine.connect() as conn:
        return [_policy(r) for r in conn.execute(stmt)]


def _latest_policy(conn: Connection, tenant: str, agent: str | None) -> Policy | None:
    p = _POLICIES.c
    row = conn.execute(
        select(_POLICIES)
        .where(p.tenant == tenant, p.agent.is_(None) if agent is None else p.agent == agent)
        .order_by(p.version.desc())
        .limit(1)
    ).first()
    return _policy(row) if row is not None else None


def _insert_policy_version(
    conn: Connection,
    signer: Signer,
    *,
    tenant: str,
    agent: str | None,
    period: RetentionPeriod,
    deleted: bool,
    created_by: str,
    floor: RetentionPeriod,
) -> Policy:
    # The change-log lock also serialises versions of one (tenant, agent).
    xact_lock(conn, LOCK_CHANGES)
    latest = _latest_policy(conn, tenant, agent)
    row = conn.execute(
        insert(RetentionPolicyRow)
        .values(
            id=uuid.uuid4(),
            tenant=tenant,
            agent=agent,
            version=(latest.version + 1) if latest is not None else 1,
            keep_years=period.years,
            keep_months=period.months,
            keep_days=period.days,
            deleted=deleted,
            created_by=created_by,
        )
        .returning(*_POLICIES.c)
    ).one()
    policy = _policy(row)
    append_change_on(
        conn,
        signer,
        action="policy.delete" if deleted else "policy.set",
        tenant=tenant,
        subject=policy.id,
        actor=created_by,
        body={**policy.body(), "floor": floor.to_json()},
    )
    return policy


def put_policy(
    engine: Engine,
    signer: Signer,
    *,
    tenant: str,
    agent: str | None,
    period: RetentionPeriod,
    created_by: str,
    floor: RetentionPeriod,
) -> Policy:
    """A new version of the policy for (tenant, agent); ``agent=None`` is tenant-wide. Earlier
    versions stay (deletion records name the version they applied)."""
    with engine.begin() as conn:
        return _insert_policy_version(
            conn,
            signer,
            tenant=tenant,
            agent=agent,
            period=period,
            deleted=False,
            created_by=created_by,
            floor=floor,
        )


def delete_policy(
    engine: Engine,
    signer: Signer,
    *,
    tenant: str,
    agent: str | None,
    deleted_by: str,
    floor: RetentionPeriod,
) -> Policy | None:
    """Remove the policy in force for (tenant, agent) by writing a ``deleted`` version;
    returns the version that was in force, None when there was none."""
    with engine.begin() as conn:
        xact_lock(conn, LOCK_CHANGES)
        latest = _latest_policy(conn, tenant, agent)
        if latest is None or latest.deleted:
            return None
        _insert_policy_version(
            conn,
            signer,
            tenant=tenant,
            agent=agent,
            period=RetentionPeriod(),
            deleted=True,
            created_by=deleted_by,
            floor=floor,
        )
    return latest


def all_policy_rows(engine: Engine) -> list[Policy]:
    with engine.connect() as conn:
        return [_policy(r) for r in conn.execute(select(_POLICIES))]
