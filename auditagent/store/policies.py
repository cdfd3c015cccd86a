"""Retention policies (``retention_policies``): versioned, never overwritten."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from ..integrity.ledger_format import Signer
from ..period import RetentionPeriod
from .changes import append_change_on
from .locks import LOCK_CHANGES, xact_lock


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


_POLICY_COLS = (
    "id, tenant, agent, keep_days, created_by, created_at, version, keep_months, keep_years, "
    "deleted"
)


def list_policies(
    engine: Engine, *, tenant: str | None = None, history: bool = False
) -> list[Policy]:
    """The policies in force (newest version of each (tenant, agent), removed ones left out);
    with ``history`` every version, oldest first."""
    params: dict[str, Any] = {}
    where = ""
    if tenant is not None:
        where = " WHERE tenant = :tenant"
        params["tenant"] = tenant
    if history:
        sql = (
            f"SELECT {_POLICY_COLS} FROM retention_policies{where} "
            "ORDER BY tenant, agent NULLS FIRST, version"
        )
    else:
        sql = (
            f"SELECT * FROM (SELECT DISTINCT ON (tenant, agent) {_POLICY_COLS} "
            f"FROM retention_policies{where} ORDER BY tenant, agent NULLS FIRST, version DESC) p "
            "WHERE NOT deleted ORDER BY tenant, agent NULLS FIRST"
        )
    with engine.connect() as conn:
        return [_policy(r) for r in conn.execute(text(sql), params)]


def _latest_policy(conn: Connection, tenant: str, agent: str | None) -> Policy | None:
    cond = "agent IS NULL" if agent is None else "agent = :agent"
    row = conn.execute(
        text(
            f"SELECT {_POLICY_COLS} FROM retention_policies WHERE tenant = :tenant AND {cond} "
            "ORDER BY version DESC LIMIT 1"
        ),
        {"tenant": tenant, "agent": agent},
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
        text(
            "INSERT INTO retention_policies (id, tenant, agent, version, keep_years, keep_months, "
            "keep_days, deleted, created_by) VALUES (:id, :tenant, :agent, :version, :y, :m, :d, "
            f":deleted, :created_by) RETURNING {_POLICY_COLS}"
        ),
        {
            "id": uuid.uuid4(),
            "tenant": tenant,
            "agent": agent,
            "version": (latest.version + 1) if latest is not None else 1,
            "y": period.years,
            "m": period.months,
            "d": period.days,
            "deleted": deleted,
            "created_by": created_by,
        },
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
        return [
            _policy(r) for r in conn.execute(text(f"SELECT {_POLICY_COLS} FROM retention_policies"))
        ]
