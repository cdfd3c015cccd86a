"""Every SQL statement of retention, legal hold, erasure and checkpoints.

This is the only module that runs ``SET LOCAL auditagent.allow_purge = 'on'``, and it does so
only in the transaction that deletes one batch of a shredded session's events. Order per
session, each step its own committed transaction so an interrupted run resumes where it
stopped:

1. shred: destroy the wrapped data key, mark the session ``shredded`` and append its deletion
   record (hash-chained) — all in one transaction, after re-checking legal holds under a lock;
2. delete events in batches of ``batch_size`` rows;
3. mark the session ``purged`` once no event of it is left.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, text

from ..chain import GENESIS, at_microseconds

__all__ = [
    "Candidate",
    "DeletionRecord",
    "Hold",
    "Policy",
    "deletion_record_hash",
]

_DELETION_LABEL = b"auditagent/deletion/v1\0"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")

# Advisory lock keys (pg_advisory_xact_lock): one serialises the deletion-record chain, the
# other orders hold creation against shredding so a hold placed "at the same time" wins.
_LOCK_DELETION_CHAIN = 0x6175_6469_7464_656C  # "auditdel"
_LOCK_HOLDS = 0x6175_6469_7468_6F6C  # "audithol"


def _lp(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def deletion_record_hash(
    *,
    prev_hash: bytes,
    seq: int,
    run_id: uuid.UUID | None,
    session_id: uuid.UUID,
    tenant: str,
    policy: str,
    reason: str,
    event_count: int,
    final_hash: bytes | None,
    deleted_at: datetime,
) -> bytes:
    """``SHA-256("auditagent/deletion/v1\\0" || prev_hash || len-prefixed(seq, run_id,
    session_id, tenant, policy, reason, event_count, final_hash, deleted_at_us))``.

    An absent run id or final hash is encoded as an empty field (length 0)."""
    if len(prev_hash) != 32:
        raise ValueError("prev_hash must be 32 bytes")
    h = hashlib.sha256(_DELETION_LABEL)
    h.update(prev_hash)
    h.update(_lp(_U64.pack(seq)))
    h.update(_lp(run_id.bytes if run_id is not None else b""))
    h.update(_lp(session_id.bytes))
    h.update(_lp(tenant.encode()))
    h.update(_lp(policy.encode()))
    h.update(_lp(reason.encode()))
    h.update(_lp(_U64.pack(event_count)))
    h.update(_lp(final_hash or b""))
    h.update(_lp(_I64.pack(at_microseconds(deleted_at))))
    return h.digest()


# --- policies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    id: uuid.UUID
    tenant: str
    agent: str | None
    keep_days: int
    created_by: str
    created_at: datetime


def _policy(row: Any) -> Policy:
    return Policy(
        id=row.id,
        tenant=row.tenant,
        agent=row.agent,
        keep_days=row.keep_days,
        created_by=row.created_by,
        created_at=row.created_at,
    )


_POLICY_COLS = "id, tenant, agent, keep_days, created_by, created_at"


def list_policies(engine: Engine, *, tenant: str | None = None) -> list[Policy]:
    sql = f"SELECT {_POLICY_COLS} FROM retention_policies"
    params: dict[str, Any] = {}
    if tenant is not None:
        sql += " WHERE tenant = :tenant"
        params["tenant"] = tenant
    sql += " ORDER BY tenant, agent NULLS FIRST"
    with engine.connect() as conn:
        return [_policy(r) for r in conn.execute(text(sql), params)]


def put_policy(
    engine: Engine, *, tenant: str, agent: str | None, keep_days: int, created_by: str
) -> Policy:
    """Create or replace the policy for (tenant, agent); ``agent=None`` is tenant-wide."""
    conflict = (
        "ON CONFLICT (tenant) WHERE agent IS NULL"
        if agent is None
        else "ON CONFLICT (tenant, agent)"
    )
    sql = text(
        f"INSERT INTO retention_policies (id, tenant, agent, keep_days, created_by) "
        f"VALUES (:id, :tenant, :agent, :keep_days, :created_by) {conflict} DO UPDATE SET "
        "keep_days = EXCLUDED.keep_days, created_by = EXCLUDED.created_by, created_at = now() "
        f"RETURNING {_POLICY_COLS}"
    )
    with engine.begin() as conn:
        row = conn.execute(
            sql,
            {
                "id": uuid.uuid4(),
                "tenant": tenant,
                "agent": agent,
                "keep_days": keep_days,
                "created_by": created_by,
            },
        ).one()
    return _policy(row)


def delete_policy(engine: Engine, *, tenant: str, agent: str | None) -> Policy | None:
    cond = "agent IS NULL" if agent is None else "agent = :agent"
    with engine.begin() as conn:
        row = conn.execute(
            text(
                f"DELETE FROM retention_policies WHERE tenant = :tenant AND {cond} "
                f"RETURNING {_POLICY_COLS}"
            ),
            {"tenant": tenant, "agent": agent},
        ).first()
    return _policy(row) if row is not None else None


# --- legal holds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hold:
    id: uuid.UUID
    scope: str
    tenant: str
    session_id: uuid.UUID | None
    participant_index: bytes | None
    reason: str
    created_by: str
    created_at: datetime
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None

    @property
    def active(self) -> bool:
        return self.released_at is None


_HOLD_COLS = (
    "id, scope, tenant, session_id, participant_index, reason, created_by, created_at, "
    "released_at, released_by, release_reason"
)


def _hold(row: Any) -> Hold:
    return Hold(
        id=row.id,
        scope=row.scope,
        tenant=row.tenant,
        session_id=row.session_id,
        participant_index=bytes(row.participant_index) if row.participant_index else None,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        released_at=row.released_at,
        released_by=row.released_by,
        release_reason=row.release_reason,
    )


def session_tenant(engine: Engine, session_id: uuid.UUID) -> str | None:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT tenant FROM sessions WHERE id = :id"), {"id": session_id}
        ).scalar()
    return str(value) if value is not None else None


def create_hold(
    engine: Engine,
    *,
    scope: str,
    tenant: str,
    session_id: uuid.UUID | None,
    participant_index: bytes | None,
    reason: str,
    created_by: str,
) -> Hold:
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_HOLDS})
        row = conn.execute(
            text(
                "INSERT INTO legal_holds (id, scope, tenant, session_id, participant_index, "
                "reason, created_by) VALUES (:id, :scope, :tenant, :session_id, :pi, :reason, "
                f":created_by) RETURNING {_HOLD_COLS}"
            ),
            {
                "id": uuid.uuid4(),
                "scope": scope,
                "tenant": tenant,
                "session_id": session_id,
                "pi": participant_index,
                "reason": reason,
                "created_by": created_by,
            },
        ).one()
    return _hold(row)


def get_hold(engine: Engine, hold_id: uuid.UUID) -> Hold | None:
    with engine.connect() as conn:
        row = conn.execute(
            text(f"SELECT {_HOLD_COLS} FROM legal_holds WHERE id = :id"), {"id": hold_id}
        ).first()
    return _hold(row) if row is not None else None


def list_holds(
    engine: Engine, *, tenant: str | None = None, include_released: bool = False
) -> list[Hold]:
    conds: list[str] = []
    params: dict[str, Any] = {}
    if tenant is not None:
        conds.append("tenant = :tenant")
        params["tenant"] = tenant
    if not include_released:
        conds.append("released_at IS NULL")
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT {_HOLD_COLS} FROM legal_holds{where} ORDER BY created_at, id"), params
        )
        return [_hold(r) for r in rows]


def release_hold(
    engine: Engine, hold_id: uuid.UUID, *, released_by: str, reason: str
) -> Hold | None:
    """Release an active hold; returns the hold as it is now (unchanged if already released),
    None if there is no such hold."""
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "UPDATE legal_holds SET released_at = now(), released_by = :by, "
                "release_reason = :reason WHERE id = :id AND released_at IS NULL "
                f"RETURNING {_HOLD_COLS}"
            ),
            {"id": hold_id, "by": released_by, "reason": reason},
        ).first()
        if row is None:
            row = conn.execute(
                text(f"SELECT {_HOLD_COLS} FROM legal_holds WHERE id = :id"), {"id": hold_id}
            ).first()
    return _hold(row) if row is not None else None


# An unreleased hold covers session ``s`` when it names the session, its participant's blind
# index, or its whole tenant.
_HELD = """EXISTS (
  SELECT 1 FROM legal_holds h
  WHERE h.released_at IS NULL AND h.tenant = s.tenant AND (
    h.scope = 'tenant'
    OR (h.scope = 'session' AND h.session_id = s.id)
    OR (h.scope = 'participant' AND s.participant_index IS NOT NULL
        AND h.participant_index = s.participant_index)))"""


def holds_blocking_participant(
    engine: Engine, *, tenant: str, participant_index: bytes
) -> list[Hold]:
    """Unreleased holds that cover any session of the participant, or the participant itself
    (even with no session yet), or the tenant."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {_HOLD_COLS} FROM legal_holds h WHERE h.released_at IS NULL "
                "AND h.tenant = :tenant AND (h.scope = 'tenant' "
                "OR (h.scope = 'participant' AND h.participant_index = :pi) "
                "OR (h.scope = 'session' AND h.session_id IN ("
                "  SELECT id FROM sessions WHERE tenant = :tenant AND participant_index = :pi))) "
                "ORDER BY h.created_at, h.id"
            ),
            {"tenant": tenant, "pi": participant_index},
        )
        return [_hold(r) for r in rows]


# --- runs -------------------------------------------------------------------------------------


def start_run(
    engine: Engine,
    *,
    dry_run: bool,
    tenant: str | None,
    trigger: str,
    requested_by: str | None,
    reason: str | None,
    started_at: datetime,
) -> uuid.UUID:
    run_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO retention_runs (id, started_at, dry_run, tenant, trigger, status, "
                "requested_by, reason) VALUES (:id, :started_at, :dry_run, :tenant, :trigger, "
                "'running', :requested_by, :reason)"
            ),
            {
                "id": run_id,
                "started_at": started_at,
                "dry_run": dry_run,
                "tenant": tenant,
                "trigger": trigger,
                "requested_by": requested_by,
                "reason": reason,
            },
        )
    return run_id


def finish_run(
    engine: Engine,
    run_id: uuid.UUID,
    *,
    status: str,
    sessions_deleted: int,
    events_deleted: int,
    sessions_skipped_held: int,
    errors: int,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE retention_runs SET finished_at = now(), status = :status, "
                "sessions_deleted = :sd, events_deleted = :ed, sessions_skipped_held = :sh, "
                "errors = :errors WHERE id = :id"
            ),
            {
                "id": run_id,
                "status": status,
                "sd": sessions_deleted,
                "ed": events_deleted,
                "sh": sessions_skipped_held,
                "errors": errors,
            },
        )


def get_run(engine: Engine, run_id: uuid.UUID) -> Any | None:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT * FROM retention_runs WHERE id = :id"), {"id": run_id}
        ).first()


# --- candidates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A session the run will delete (or finish deleting, when already ``shredded``)."""

    session_id: uuid.UUID
    tenant: str
    status: str
    ended_at: datetime | None
    event_count: int
    policy: str


# The policy that applies to session ``s``: its tenant's policy for its agent label, else its
# tenant-wide policy, else the default. The label is ``labels->>'agent'``, else agent_name.
_KEEP = """COALESCE(
  (SELECT p.keep_days FROM retention_policies p WHERE p.tenant = s.tenant
     AND p.agent = COALESCE(s.labels->>'agent', s.agent_name)),
  (SELECT p.keep_days FROM retention_policies p WHERE p.tenant = s.tenant AND p.agent IS NULL),
  :default_days)"""

_POLICY_NAME = """CASE
  WHEN EXISTS (SELECT 1 FROM retention_policies p WHERE p.tenant = s.tenant
     AND p.agent = COALESCE(s.labels->>'agent', s.agent_name))
    THEN 'tenant=' || s.tenant || ' agent=' || COALESCE(s.labels->>'agent', s.agent_name)
  WHEN EXISTS (SELECT 1 FROM retention_policies p WHERE p.tenant = s.tenant AND p.agent IS NULL)
    THEN 'tenant=' || s.tenant
  ELSE 'default' END"""


def _expired_where(tenant: str | None) -> str:
    where = (
        "((s.status = 'closed' AND s.ended_at IS NOT NULL "
        f"AND s.ended_at + make_interval(days => {_KEEP}) < :now) OR s.status = 'shredded')"
    )
    if tenant is not None:
        where += " AND s.tenant = :tenant"
    return where


def expired_candidates(
    engine: Engine, *, now: datetime, tenant: str | None, default_days: int
) -> tuple[list[Candidate], int]:
    """(unheld sessions to delete, oldest first; number of expired sessions skipped as held).

    Sessions left ``shredded`` by an interrupted run or erasure are always included (their
    key is gone already; only their rows remain to be removed)."""
    params = {"now": now, "tenant": tenant, "default_days": default_days}
    where = _expired_where(tenant)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.id, s.tenant, s.status, s.ended_at, s.event_count, "
                f"({_KEEP}) AS keep_days, ({_POLICY_NAME}) AS policy_name "
                f"FROM sessions s WHERE {where} AND NOT {_HELD} "
                "ORDER BY s.ended_at NULLS FIRST, s.id"
            ),
            params,
        ).all()
        held = conn.execute(
            text(f"SELECT count(*) FROM sessions s WHERE {where} AND {_HELD}"), params
        ).scalar_one()
    out = [
        Candidate(
            session_id=r.id,
            tenant=r.tenant,
            status=r.status,
            ended_at=r.ended_at,
            event_count=int(r.event_count or 0),
            policy=f"{r.policy_name} keep_days={r.keep_days}",
        )
        for r in rows
    ]
    return out, int(held)


def participant_sessions(
    engine: Engine, *, tenant: str, participant_index: bytes
) -> list[Candidate]:
    """Every session of the participant not purged yet (open ones included)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, tenant, status, ended_at, event_count FROM sessions "
                "WHERE tenant = :tenant AND participant_index = :pi AND status <> 'purged' "
                "ORDER BY started_at, id"
            ),
            {"tenant": tenant, "pi": participant_index},
        ).all()
    return [
        Candidate(
            session_id=r.id,
            tenant=r.tenant,
            status=r.status,
            ended_at=r.ended_at,
            event_count=int(r.event_count or 0),
            policy="erasure",
        )
        for r in rows
    ]


# --- shred, delete, mark ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeletionRecord:
    seq: int
    run_id: uuid.UUID | None
    session_id: uuid.UUID
    tenant: str
    policy: str
    reason: str
    event_count: int
    final_hash: bytes | None
    deleted_at: datetime
    prev_hash: bytes
    hash: bytes


_DR_COLS = (
    "seq, run_id, session_id, tenant, policy, reason, event_count, final_hash, deleted_at, "
    "prev_hash, hash"
)


def _deletion(row: Any) -> DeletionRecord:
    return DeletionRecord(
        seq=int(row.seq),
        run_id=row.run_id,
        session_id=row.session_id,
        tenant=row.tenant,
        policy=row.policy,
        reason=row.reason,
        event_count=int(row.event_count),
        final_hash=bytes(row.final_hash) if row.final_hash is not None else None,
        deleted_at=row.deleted_at,
        prev_hash=bytes(row.prev_hash),
        hash=bytes(row.hash),
    )


class SessionHeld(Exception):
    """Raised inside ``shred_session`` when a hold appeared since the candidate was chosen."""


def shred_session(
    engine: Engine,
    session_id: uuid.UUID,
    *,
    run_id: uuid.UUID | None,
    policy: str,
    reason: str,
    now: datetime,
) -> DeletionRecord | None:
    """Destroy the session's data key and append its deletion record, in one transaction.

    Returns the new record; None when the session is no longer ``open``/``closed`` (already
    shredded by an earlier run — nothing to do). Raises ``SessionHeld`` if a hold covers it.
    """
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_HOLDS})
        s = conn.execute(
            text(
                f"SELECT s.id, s.tenant, s.status, {_HELD} AS held FROM sessions s "
                "WHERE s.id = :id FOR UPDATE"
            ),
            {"id": session_id},
        ).first()
        if s is None or s.status not in ("open", "closed"):
            return None
        if s.held:
            raise SessionHeld(str(session_id))
        last = conn.execute(
            text("SELECT seq, hash FROM events WHERE session_id = :id ORDER BY seq DESC LIMIT 1"),
            {"id": session_id},
        ).first()
        count = int(
            conn.execute(
                text("SELECT count(*) FROM events WHERE session_id = :id"), {"id": session_id}
            ).scalar_one()
        )
        final_hash = bytes(last.hash) if last is not None else None
        conn.execute(
            text("UPDATE data_keys SET wrapped = NULL, shredded_at = :now WHERE session_id = :id"),
            {"id": session_id, "now": now},
        )
        conn.execute(
            text(
                "UPDATE sessions SET status = 'shredded', updated_at = :now, "
                "ended_at = COALESCE(ended_at, :now), "
                "close_reason = COALESCE(close_reason, :reason) WHERE id = :id"
            ),
            {"id": session_id, "now": now, "reason": reason},
        )
        return _append_deletion(
            conn,
            run_id=run_id,
            session_id=session_id,
            tenant=s.tenant,
            policy=policy,
            reason=reason,
            event_count=count,
            final_hash=final_hash,
            deleted_at=now.astimezone(timezone.utc),
        )


def _append_deletion(
    conn: Connection,
    *,
    run_id: uuid.UUID | None,
    session_id: uuid.UUID,
    tenant: str,
    policy: str,
    reason: str,
    event_count: int,
    final_hash: bytes | None,
    deleted_at: datetime,
) -> DeletionRecord:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_DELETION_CHAIN})
    last = conn.execute(
        text("SELECT seq, hash FROM deletion_records ORDER BY seq DESC LIMIT 1")
    ).first()
    seq = int(last.seq) + 1 if last is not None else 0
    prev = bytes(last.hash) if last is not None else GENESIS
    digest = deletion_record_hash(
        prev_hash=prev,
        seq=seq,
        run_id=run_id,
        session_id=session_id,
        tenant=tenant,
        policy=policy,
        reason=reason,
        event_count=event_count,
        final_hash=final_hash,
        deleted_at=deleted_at,
    )
    row = conn.execute(
        text(
            "INSERT INTO deletion_records (seq, run_id, session_id, tenant, policy, reason, "
            "event_count, final_hash, deleted_at, prev_hash, hash) VALUES (:seq, :run_id, "
            ":session_id, :tenant, :policy, :reason, :event_count, :final_hash, :deleted_at, "
            f":prev_hash, :hash) RETURNING {_DR_COLS}"
        ),
        {
            "seq": seq,
            "run_id": run_id,
            "session_id": session_id,
            "tenant": tenant,
            "policy": policy,
            "reason": reason,
            "event_count": event_count,
            "final_hash": final_hash,
            "deleted_at": deleted_at,
            "prev_hash": prev,
            "hash": digest,
        },
    ).one()
    return _deletion(row)


def delete_event_batch(engine: Engine, session_id: uuid.UUID, *, batch_size: int) -> int:
    """Delete up to ``batch_size`` events of a *shredded* session; returns how many.

    The only statement anywhere that lifts the append-only guard, and only for this
    transaction; it refuses to touch a session whose key has not been shredded first.
    ``synchronous_commit = off`` is safe here: a batch lost in a crash is simply deleted again
    by the next run.
    """
    with engine.begin() as conn:
        status = conn.execute(
            text("SELECT status FROM sessions WHERE id = :id FOR SHARE"), {"id": session_id}
        ).scalar()
        if status != "shredded":
            return 0
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text("SET LOCAL auditagent.allow_purge = 'on'"))
        result = conn.execute(
            text(
                "DELETE FROM events WHERE session_id = :id AND seq < ("
                "  SELECT min(seq) FROM events WHERE session_id = :id) + :n"
            ),
            {"id": session_id, "n": batch_size},
        )
        return int(result.rowcount or 0)


def mark_purged(engine: Engine, session_id: uuid.UUID, *, now: datetime) -> bool:
    """``shredded`` -> ``purged`` once no event is left; drops the participant's blind index
    (the count and head hash stay: they are what checkpoints and deletion records refer to)."""
    with engine.begin() as conn:
        result = conn.execute(
            text(
                "UPDATE sessions SET status = 'purged', participant_index = NULL, "
                "updated_at = :now WHERE id = :id AND status = 'shredded' "
                "AND NOT EXISTS (SELECT 1 FROM events WHERE session_id = :id)"
            ),
            {"id": session_id, "now": now},
        )
        return bool(result.rowcount)


# --- deletion records and heads for checkpoints -----------------------------------------------


def deletion_records_for(engine: Engine, session_id: uuid.UUID) -> list[DeletionRecord]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT {_DR_COLS} FROM deletion_records WHERE session_id = :id ORDER BY seq"),
            {"id": session_id},
        )
        return [_deletion(r) for r in rows]


def iter_deletion_records(engine: Engine) -> Iterator[DeletionRecord]:
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(
            text(f"SELECT {_DR_COLS} FROM deletion_records ORDER BY seq")
        )
        for r in result:
            yield _deletion(r)


def deletion_head(conn: Connection) -> tuple[int, bytes]:
    last = conn.execute(
        text("SELECT seq, hash FROM deletion_records ORDER BY seq DESC LIMIT 1")
    ).first()
    if last is None:
        return 0, GENESIS
    return int(last.seq) + 1, bytes(last.hash)


@dataclass(frozen=True)
class SessionHead:
    session_id: uuid.UUID
    status: str
    event_count: int
    head_hash: bytes | None


def snapshot_heads(engine: Engine) -> tuple[list[SessionHead], int, bytes]:
    """Every session's (count, head) and the deletion chain's (count, head), read in one
    repeatable-read snapshot so they are consistent with each other."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        rows = conn.execute(
            text("SELECT id, status, event_count, head_hash FROM sessions ORDER BY id")
        )
        heads = [
            SessionHead(
                session_id=r.id,
                status=r.status,
                event_count=int(r.event_count or 0),
                head_hash=bytes(r.head_hash) if r.head_hash is not None else None,
            )
            for r in rows
        ]
        count, head = deletion_head(conn)
        conn.rollback()
    return heads, count, head


def session_heads(engine: Engine, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, SessionHead]:
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, status, event_count, head_hash FROM sessions WHERE id = ANY(:ids)"),
            {"ids": list(ids)},
        )
        return {
            r.id: SessionHead(
                session_id=r.id,
                status=r.status,
                event_count=int(r.event_count or 0),
                head_hash=bytes(r.head_hash) if r.head_hash is not None else None,
            )
            for r in rows
        }


def iter_session_events(conn: Connection, session_id: uuid.UUID) -> Iterator[Any]:
    yield from conn.execution_options(yield_per=1000).execute(
        text(
            "SELECT session_id, seq, tenant, kind, at, key_id, nonce, ciphertext, prev_hash, "
            "hash FROM events WHERE session_id = :id ORDER BY seq"
        ),
        {"id": session_id},
    )


def sessions_without_deletion_record(engine: Engine) -> list[uuid.UUID]:
    """Sessions marked shredded/purged with no deletion record: removed outside this path."""
    with engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT s.id FROM sessions s WHERE s.status IN ('shredded', 'purged') "
                    "AND NOT EXISTS (SELECT 1 FROM deletion_records d WHERE d.session_id = s.id)"
                )
            )
        ]


def has_deletion_record(conn: Connection, session_id: uuid.UUID) -> bool:
    return (
        conn.execute(
            text("SELECT 1 FROM deletion_records WHERE session_id = :id LIMIT 1"),
            {"id": session_id},
        ).first()
        is not None
    )
