"""Reads of ``sessions`` and ``data_keys`` the retention path and its verifier make."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text


def session_tenant(engine: Engine, session_id: uuid.UUID) -> str | None:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT tenant FROM sessions WHERE id = :id"), {"id": session_id}
        ).scalar()
    return str(value) if value is not None else None


def tenant_known(engine: Engine, tenant: str) -> bool:
    """A tenant is known when it has a session (any state), a policy or an API key."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM sessions WHERE tenant = :t) "
                    "OR EXISTS (SELECT 1 FROM retention_policies WHERE tenant = :t) "
                    "OR EXISTS (SELECT 1 FROM principals WHERE tenant = :t)"
                ),
                {"t": tenant},
            ).scalar_one()
        )


def iter_session_events(conn: Connection, session_id: uuid.UUID) -> Iterator[Any]:
    yield from conn.execution_options(yield_per=1000).execute(
        text(
            "SELECT session_id, seq, tenant, kind, at, key_id, nonce, ciphertext, prev_hash, "
            "hash FROM events WHERE session_id = :id ORDER BY seq"
        ),
        {"id": session_id},
    )


@dataclass(frozen=True)
class KeyState:
    session_id: uuid.UUID
    status: str
    key: str
    """``missing`` (no data_keys row), ``destroyed`` or ``wrapped``."""
    has_record: bool


def key_anomalies(engine: Engine) -> list[KeyState]:
    """Sessions whose data key is gone without a deletion record, or is still there (or back)
    although a deletion record says it was destroyed."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.id, s.status, CASE WHEN k.session_id IS NULL THEN 'missing' "
                "WHEN k.wrapped IS NULL OR k.shredded_at IS NOT NULL THEN 'destroyed' "
                "ELSE 'wrapped' END AS key, "
                "EXISTS (SELECT 1 FROM deletion_records d WHERE d.session_id = s.id) AS has_record "
                "FROM sessions s LEFT JOIN data_keys k ON k.session_id = s.id"
            )
        )
        return [
            KeyState(r.id, r.status, r.key, bool(r.has_record))
            for r in rows
            if (r.key != "wrapped") != bool(r.has_record)
        ]


def purged_with_rows(engine: Engine) -> list[tuple[uuid.UUID, int]]:
    """Purged sessions that still have rows: written after the erasure, not deleted yet."""
    with engine.connect() as conn:
        return [
            (r[0], int(r[1]))
            for r in conn.execute(
                text(
                    "SELECT e.session_id, count(*) FROM events e JOIN sessions s "
                    "ON s.id = e.session_id WHERE s.status = 'purged' GROUP BY e.session_id"
                )
            )
        ]


def end_time_anomalies(engine: Engine) -> list[tuple[uuid.UUID, datetime | None, datetime | None]]:
    """Closed sessions whose ``ended_at`` is missing, has no chained close record to confirm
    it, or is earlier than that record (what a rewrite to expire it early looks like)."""
    with engine.connect() as conn:
        return [
            (r.id, r.ended_at, r.closed_at)
            for r in conn.execute(
                text(
                    "SELECT s.id, s.ended_at, c.closed_at FROM sessions s LEFT JOIN LATERAL ("
                    "  SELECT min(e.at) AS closed_at FROM events e "
                    "  WHERE e.session_id = s.id AND e.kind = 'closed') c ON true "
                    "WHERE s.status = 'closed' AND (s.ended_at IS NULL OR c.closed_at IS NULL "
                    "OR s.ended_at < c.closed_at)"
                )
            )
        ]


def session_ended_at(engine: Engine, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    if not ids:
        return {}
    with engine.connect() as conn:
        return {
            r.id: r
            for r in conn.execute(
                text("SELECT id, tenant, ended_at, status FROM sessions WHERE id = ANY(:ids)"),
                {"ids": list(ids)},
            )
        }


def data_key_destroyed(conn: Connection, session_id: uuid.UUID) -> bool:
    row = conn.execute(
        text(
            "SELECT wrapped IS NULL OR shredded_at IS NOT NULL FROM data_keys "
            "WHERE session_id = :id"
        ),
        {"id": session_id},
    ).first()
    return row is None or bool(row[0])
