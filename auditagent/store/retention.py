"""Every SQL statement of retention, legal holds, erasure, the signed change log and the
deletion-record chain.

This is the only module that runs ``SET LOCAL auditagent.allow_purge = 'on'``, and it does so
only in the transaction that deletes one batch of a shredded (or purged) session's events.
Order per session, each step its own committed transaction so an interrupted run resumes
where it stopped:

1. shred: re-check legal holds (under a lock) and, for retention, that the session is still
   due (its end time agrees with its chained close record, the current policy and the floor);
   append its deletion record (hash-chained, carrying that basis, signed with the checkpoint
   key); then destroy the wrapped data key and mark the session ``shredded`` — one transaction.
   The database refuses the last two without the record (migration 0017's guards);
2. delete events in batches of ``batch_size`` rows;
3. mark the session ``purged`` once no event of it is left.

Policy and legal-hold changes are written together with an entry of ``retention_changes``, a
second chain signed the same way, so a policy or hold added, edited or removed by SQL shows.
"""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, text

from auditagent.integrity.encoding import lp as _lp

from .. import crypto
from ..chain import GENESIS, at_microseconds
from ..period import RetentionPeriod

__all__ = [
    "Candidate",
    "Change",
    "DeletionRecord",
    "Hold",
    "Policy",
    "Signer",
    "change_hash",
    "deletion_record_hash",
]

_DELETION_LABEL_V1 = b"auditagent/deletion/v1\0"
_DELETION_LABEL = b"auditagent/deletion/v2\0"
DELETION_SIGNATURE_LABEL = b"auditagent/deletion-signature/v1\0"
_CHANGE_LABEL = b"auditagent/retention-change/v1\0"
CHANGE_SIGNATURE_LABEL = b"auditagent/retention-change-signature/v1\0"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")

# Advisory lock keys (pg_advisory_xact_lock): one serialises the deletion-record chain, one
# orders hold creation against shredding so a hold placed "at the same time" wins, one
# serialises the change log. Runs hold a session-level lock (class, hashtext(run id)) for
# their lifetime, so the next run can tell a dead one (its lock is free) from a live one.
_LOCK_DELETION_CHAIN = 0x6175_6469_7464_656C  # "auditdel"
_LOCK_HOLDS = 0x6175_6469_7468_6F6C  # "audithol"
_LOCK_CHANGES = 0x6175_6469_7463_6867  # "auditchg"
_RUN_LOCK_CLASS = 0x6175_6472  # "audr"


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The bytes hashed for a JSON field: sorted keys, no spaces, ASCII. Values are strings,
    integers, booleans, null and nested objects/lists only (no floats), so a JSONB round trip
    gives the same bytes back."""
    return json.dumps(
        dict(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode()


def ts(t: datetime) -> str:
    """A time as it is written into hashed JSON: UTC, microseconds, ``Z``."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Signer:
    """The checkpoint key (Ed25519, from the keyring) as retention uses it."""

    private: bytes
    public: bytes

    @classmethod
    def from_private(cls, private: bytes) -> Signer:
        return cls(private=private, public=crypto.signing_public_key(private))

    def sign(self, message: bytes) -> bytes:
        return crypto.sign(self.private, message)


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
    basis: Mapping[str, Any] | None = None,
) -> bytes:
    """``SHA-256("auditagent/deletion/v2\\0" || prev_hash || len-prefixed(seq, run_id,
    session_id, tenant, policy, reason, event_count, final_hash, deleted_at_us,
    canonical-JSON basis))``. Records without a basis (written before migration 0017) use
    the v1 label and no basis field. An absent run id or final hash is an empty field."""
    if len(prev_hash) != 32:
        raise ValueError("prev_hash must be 32 bytes")
    h = hashlib.sha256(_DELETION_LABEL if basis is not None else _DELETION_LABEL_V1)
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
    if basis is not None:
        h.update(_lp(canonical_json(basis)))
    return h.digest()


def change_hash(
    *,
    prev_hash: bytes,
    seq: int,
    at: datetime,
    action: str,
    tenant: str,
    subject: uuid.UUID,
    actor: str,
    body: Mapping[str, Any],
) -> bytes:
    """``SHA-256("auditagent/retention-change/v1\\0" || prev_hash || len-prefixed(seq, at_us,
    action, tenant, subject, actor, canonical-JSON body))``."""
    if len(prev_hash) != 32:
        raise ValueError("prev_hash must be 32 bytes")
    h = hashlib.sha256(_CHANGE_LABEL)
    h.update(prev_hash)
    h.update(_lp(_U64.pack(seq)))
    h.update(_lp(_I64.pack(at_microseconds(at))))
    h.update(_lp(action.encode()))
    h.update(_lp(tenant.encode()))
    h.update(_lp(subject.bytes))
    h.update(_lp(actor.encode()))
    h.update(_lp(canonical_json(body)))
    return h.digest()


def signature_valid(
    public_key: bytes, label: bytes, digest: bytes, signature: bytes | None
) -> bool:
    return signature is not None and crypto.verify_signature(public_key, label + digest, signature)


def db_clock(engine: Engine) -> datetime:
    """The database server's own clock (``clock_timestamp()``)."""
    with engine.connect() as conn:
        value: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return value


# --- the change log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    seq: int
    at: datetime
    action: str
    tenant: str
    subject: uuid.UUID
    actor: str
    body: dict[str, Any]
    prev_hash: bytes
    hash: bytes
    signature: bytes


_CHANGE_COLS = "seq, at, action, tenant, subject, actor, body, prev_hash, hash, signature"


def _change(row: Any) -> Change:
    return Change(
        seq=int(row.seq),
        at=row.at,
        action=row.action,
        tenant=row.tenant,
        subject=row.subject,
        actor=row.actor,
        body=dict(row.body),
        prev_hash=bytes(row.prev_hash),
        hash=bytes(row.hash),
        signature=bytes(row.signature),
    )


def _append_change(
    conn: Connection,
    signer: Signer,
    *,
    action: str,
    tenant: str,
    subject: uuid.UUID,
    actor: str,
    body: Mapping[str, Any],
) -> Change:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_CHANGES})
    last = conn.execute(
        text("SELECT seq, hash FROM retention_changes ORDER BY seq DESC LIMIT 1")
    ).first()
    seq = int(last.seq) + 1 if last is not None else 0
    prev = bytes(last.hash) if last is not None else GENESIS
    at: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    digest = change_hash(
        prev_hash=prev,
        seq=seq,
        at=at,
        action=action,
        tenant=tenant,
        subject=subject,
        actor=actor,
        body=body,
    )
    row = conn.execute(
        text(
            "INSERT INTO retention_changes (seq, at, action, tenant, subject, actor, body, "
            "prev_hash, hash, signature) VALUES (:seq, :at, :action, :tenant, :subject, :actor, "
            f"CAST(:body AS jsonb), :prev, :hash, :sig) RETURNING {_CHANGE_COLS}"
        ),
        {
            "seq": seq,
            "at": at,
            "action": action,
            "tenant": tenant,
            "subject": subject,
            "actor": actor,
            "body": canonical_json(body).decode(),
            "prev": prev,
            "hash": digest,
            "sig": signer.sign(CHANGE_SIGNATURE_LABEL + digest),
        },
    ).one()
    return _change(row)


def append_change(
    engine: Engine,
    signer: Signer,
    *,
    action: str,
    tenant: str,
    subject: uuid.UUID,
    actor: str,
    body: Mapping[str, Any],
) -> Change:
    """One signed change-log entry in its own transaction (adoption of pre-0017 rows)."""
    with engine.begin() as conn:
        return _append_change(
            conn, signer, action=action, tenant=tenant, subject=subject, actor=actor, body=body
        )


ADOPT_DELETIONS = "deletions.adopt"


def adopted_deletions(conn: Connection, public_key: bytes) -> tuple[int, bytes] | None:
    """(count, head) of the unsigned deletion records (written before signed retention) an
    operator vouched for with ``auditagent retention adopt``; None when none were."""
    row = conn.execute(
        text(
            f"SELECT {_CHANGE_COLS} FROM retention_changes WHERE action = :a "
            "ORDER BY seq DESC LIMIT 1"
        ),
        {"a": ADOPT_DELETIONS},
    ).first()
    if row is None:
        return None
    c = _change(row)
    if not signature_valid(public_key, CHANGE_SIGNATURE_LABEL, c.hash, c.signature):
        return None
    try:
        return int(c.body["count"]), bytes.fromhex(str(c.body["head"]))
    except (KeyError, TypeError, ValueError):
        return None


def unsigned_deletion_prefix(engine: Engine) -> tuple[int, bytes] | None:
    """(count, head) of the deletion records before the first signed one, when every unsigned
    record comes before every signed one (what a database upgraded to 0017 has)."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE signature IS NULL) AS unsigned, "
                "min(seq) FILTER (WHERE signature IS NOT NULL) AS first_signed "
                "FROM deletion_records"
            )
        ).one()
        n = int(row.unsigned)
        if n == 0 or (row.first_signed is not None and int(row.first_signed) != n):
            return None
        head = conn.execute(
            text("SELECT hash FROM deletion_records WHERE seq = :s"), {"s": n - 1}
        ).scalar()
    return (n, bytes(head)) if head is not None else None


def iter_changes(engine: Engine) -> Iterator[Change]:
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(
            text(f"SELECT {_CHANGE_COLS} FROM retention_changes ORDER BY seq")
        )
        for r in result:
            yield _change(r)


def changes_head(conn: Connection) -> tuple[int, bytes]:
    last = conn.execute(
        text("SELECT seq, hash FROM retention_changes ORDER BY seq DESC LIMIT 1")
    ).first()
    if last is None:
        return 0, GENESIS
    return int(last.seq) + 1, bytes(last.hash)


# --- policies ---------------------------------------------------------------------------------


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
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_CHANGES})
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
    _append_change(
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
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_CHANGES})
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
    sessions_covered: int | None = None
    """How many sessions (not purged) it covered when it was placed or released."""

    @property
    def active(self) -> bool:
        return self.released_at is None

    def body(self) -> dict[str, Any]:
        """What the change log holds for this hold's creation."""
        return {
            "id": str(self.id),
            "scope": self.scope,
            "tenant": self.tenant,
            "session_id": str(self.session_id) if self.session_id else None,
            "participant_index": self.participant_index.hex() if self.participant_index else None,
            "reason": self.reason,
            "created_by": self.created_by,
            "created_at": ts(self.created_at),
        }

    def release_body(self) -> dict[str, Any]:
        assert self.released_at is not None
        return {
            "id": str(self.id),
            "released_at": ts(self.released_at),
            "released_by": self.released_by,
            "release_reason": self.release_reason,
        }


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


# Sessions a hold (or a would-be hold) covers: not purged, so there is still something to keep.
_COVERED = """SELECT count(*) FROM sessions s WHERE s.tenant = :tenant AND s.status <> 'purged'
  AND (:scope = 'tenant'
       OR (:scope = 'session' AND s.id = :session_id)
       OR (:scope = 'participant' AND s.participant_index = :pi))"""


def _covered(
    conn: Connection,
    *,
    scope: str,
    tenant: str,
    session_id: uuid.UUID | None,
    participant_index: bytes | None,
) -> int:
    return int(
        conn.execute(
            text(_COVERED),
            {"tenant": tenant, "scope": scope, "session_id": session_id, "pi": participant_index},
        ).scalar_one()
    )


def sessions_covered(
    engine: Engine,
    *,
    scope: str,
    tenant: str,
    session_id: uuid.UUID | None = None,
    participant_index: bytes | None = None,
) -> int:
    with engine.connect() as conn:
        return _covered(
            conn,
            scope=scope,
            tenant=tenant,
            session_id=session_id,
            participant_index=participant_index,
        )


def create_hold(
    engine: Engine,
    signer: Signer,
    *,
    scope: str,
    tenant: str,
    session_id: uuid.UUID | None,
    participant_index: bytes | None,
    reason: str,
    created_by: str,
) -> Hold:
    """Place a hold and its signed change-log entry in one transaction."""
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
        hold = _hold(row)
        _append_change(
            conn,
            signer,
            action="hold.create",
            tenant=tenant,
            subject=hold.id,
            actor=created_by,
            body=hold.body(),
        )
        covered = _covered(
            conn,
            scope=scope,
            tenant=tenant,
            session_id=session_id,
            participant_index=participant_index,
        )
    return replace(hold, sessions_covered=covered)


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
    engine: Engine, signer: Signer, hold_id: uuid.UUID, *, released_by: str, reason: str
) -> Hold | None:
    """Release an active hold (with its signed change-log entry); returns the hold as it is
    now (unchanged if already released), None if there is no such hold."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_HOLDS})
        row = conn.execute(
            text(
                "UPDATE legal_holds SET released_at = clock_timestamp(), released_by = :by, "
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
        hold = _hold(row)
        _append_change(
            conn,
            signer,
            action="hold.release",
            tenant=hold.tenant,
            subject=hold.id,
            actor=released_by,
            body=hold.release_body(),
        )
        covered = _covered(
            conn,
            scope=hold.scope,
            tenant=hold.tenant,
            session_id=hold.session_id,
            participant_index=hold.participant_index,
        )
    return replace(hold, sessions_covered=covered)


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


class RunLock:
    """A session-level advisory lock held, on its own connection, for as long as a run lives.
    A crashed or killed run's connection closes and frees it: that is how the next run knows
    a ``running`` row is dead."""

    def __init__(self, engine: Engine, run_id: uuid.UUID) -> None:
        self._conn = engine.connect()
        try:
            self._conn.execute(
                text("SELECT pg_advisory_lock(:c, hashtext(:id))"),
                {"c": _RUN_LOCK_CLASS, "id": str(run_id)},
            )
            self._conn.commit()
        except BaseException:
            self._conn.close()
            raise
        self.run_id = run_id

    def release(self) -> None:
        try:
            self._conn.execute(
                text("SELECT pg_advisory_unlock(:c, hashtext(:id))"),
                {"c": _RUN_LOCK_CLASS, "id": str(self.run_id)},
            )
            self._conn.commit()
        finally:
            self._conn.close()


def mark_dead_runs_interrupted(engine: Engine) -> list[uuid.UUID]:
    """Runs still ``running`` whose process is gone (killed, SIGKILL, power loss) become
    ``interrupted``; a live run's lock is taken, so it is left alone."""
    marked: list[uuid.UUID] = []
    with engine.connect() as conn:
        running = [
            r[0]
            for r in conn.execute(text("SELECT id FROM retention_runs WHERE status = 'running'"))
        ]
        conn.commit()
        for run_id in running:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:c, hashtext(:id))"),
                {"c": _RUN_LOCK_CLASS, "id": str(run_id)},
            ).scalar_one()
            if not got:
                conn.commit()
                continue
            try:
                n = conn.execute(
                    text(
                        "UPDATE retention_runs SET status = 'interrupted', "
                        "finished_at = clock_timestamp() WHERE id = :id AND status = 'running'"
                    ),
                    {"id": run_id},
                ).rowcount
                conn.commit()
                if n:
                    marked.append(run_id)
            finally:
                conn.execute(
                    text("SELECT pg_advisory_unlock(:c, hashtext(:id))"),
                    {"c": _RUN_LOCK_CLASS, "id": str(run_id)},
                )
                conn.commit()
    return marked


def start_run(
    engine: Engine,
    *,
    dry_run: bool,
    tenant: str | None,
    trigger: str,
    requested_by: str | None,
    reason: str | None,
    started_at: datetime | None = None,
    sessions_matched: int = 0,
    run_id: uuid.UUID | None = None,
) -> uuid.UUID:
    run_id = run_id or uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO retention_runs (id, started_at, dry_run, tenant, trigger, status, "
                "requested_by, reason, sessions_matched) VALUES (:id, "
                "COALESCE(:started_at, clock_timestamp()), :dry_run, :tenant, :trigger, "
                "'running', :requested_by, :reason, :matched)"
            ),
            {
                "id": run_id,
                "started_at": started_at,
                "dry_run": dry_run,
                "tenant": tenant,
                "trigger": trigger,
                "requested_by": requested_by,
                "reason": reason,
                "matched": sessions_matched,
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
                "UPDATE retention_runs SET finished_at = clock_timestamp(), status = :status, "
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


def list_runs(
    engine: Engine,
    *,
    ids: Sequence[uuid.UUID] | None = None,
    tenant: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Any]:
    """Runs (not dry runs) named by ``ids``, or scoped to ``tenant`` / started in [start, end)."""
    conds = ["NOT dry_run"]
    params: dict[str, Any] = {}
    if ids is not None:
        conds.append("id = ANY(:ids)")
        params["ids"] = list(ids)
    if tenant is not None:
        conds.append("tenant = :tenant")
        params["tenant"] = tenant
    if start is not None:
        conds.append("started_at >= :start")
        params["start"] = start
    if end is not None:
        conds.append("started_at < :end")
        params["end"] = end
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    f"SELECT * FROM retention_runs WHERE {' AND '.join(conds)} "
                    "ORDER BY started_at, id"
                ),
                params,
            ).all()
        )


# --- candidates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A session the run will delete (or finish deleting, when already ``shredded``, or whose
    late rows it removes, when ``purged``)."""

    session_id: uuid.UUID
    tenant: str
    status: str
    ended_at: datetime | None
    event_count: int
    policy: str
    expires_at: datetime | None = None


# The policy in force for session ``s``: the newest version for its tenant and agent label,
# else for its tenant, skipping removed ones (a removed agent policy falls back to the tenant
# one). The label is ``labels->>'agent'``, else agent_name.
_POLICY_JOIN = """LEFT JOIN LATERAL (
  SELECT p.id, p.version, p.agent, p.keep_years, p.keep_months, p.keep_days FROM (
    (SELECT q.*, 0 AS rank FROM retention_policies q WHERE q.tenant = s.tenant
       AND q.agent = COALESCE(s.labels->>'agent', s.agent_name)
       ORDER BY q.version DESC LIMIT 1)
    UNION ALL
    (SELECT q.*, 1 AS rank FROM retention_policies q WHERE q.tenant = s.tenant
       AND q.agent IS NULL ORDER BY q.version DESC LIMIT 1)
  ) p WHERE NOT p.deleted ORDER BY p.rank LIMIT 1) pol ON true"""

# End time plus the policy (or the default), never less than end time plus the floor: the
# floor holds at run time, for old policies and the default too. Calendar arithmetic in UTC.
_EXPIRES = """GREATEST(
  ((s.ended_at AT TIME ZONE 'UTC') + make_interval(
     years => COALESCE(pol.keep_years, :dy), months => COALESCE(pol.keep_months, :dm),
     days => COALESCE(pol.keep_days, :dd))) AT TIME ZONE 'UTC',
  ((s.ended_at AT TIME ZONE 'UTC')
     + make_interval(years => :fy, months => :fm, days => :fd)) AT TIME ZONE 'UTC')"""


def _period_params(default: RetentionPeriod, floor: RetentionPeriod) -> dict[str, int]:
    return {
        "dy": default.years,
        "dm": default.months,
        "dd": default.days,
        "fy": floor.years,
        "fm": floor.months,
        "fd": floor.days,
    }


def _policy_name(row: Any, default: RetentionPeriod) -> str:
    if row.policy_id is None:
        return f"default {default}"
    period = RetentionPeriod(row.keep_years, row.keep_months, row.keep_days)
    who = f"tenant={row.tenant}" + (f" agent={row.policy_agent}" if row.policy_agent else "")
    return f"{who} {period}"


def _expired_where(tenant: str | None) -> str:
    where = (
        "((s.status = 'closed' AND s.ended_at IS NOT NULL "
        f"AND {_EXPIRES} < :now) OR s.status = 'shredded' "
        "OR (s.status = 'purged' AND EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id)))"
    )
    if tenant is not None:
        where += " AND s.tenant = :tenant"
    return where


def expired_candidates(
    engine: Engine,
    *,
    now: datetime,
    tenant: str | None,
    default: RetentionPeriod,
    floor: RetentionPeriod,
) -> tuple[list[Candidate], int]:
    """(unheld sessions to delete, oldest first; number of expired sessions skipped as held).

    Sessions left ``shredded`` by an interrupted run or erasure are always included (their
    key is gone already; only their rows remain), and so are ``purged`` sessions that rows
    arrived for afterwards (a recorder still writing to an erased session)."""
    params: dict[str, Any] = {"now": now, "tenant": tenant, **_period_params(default, floor)}
    where = _expired_where(tenant)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.id, s.tenant, s.status, s.ended_at, s.event_count, pol.id AS policy_id, "
                "pol.agent AS policy_agent, pol.keep_years, pol.keep_months, pol.keep_days, "
                f"CASE WHEN s.ended_at IS NULL THEN NULL ELSE {_EXPIRES} END AS expires_at "
                f"FROM sessions s {_POLICY_JOIN} WHERE {where} AND NOT {_HELD} "
                "ORDER BY s.ended_at NULLS FIRST, s.id"
            ),
            params,
        ).all()
        held = conn.execute(
            text(f"SELECT count(*) FROM sessions s {_POLICY_JOIN} WHERE {where} AND {_HELD}"),
            params,
        ).scalar_one()
    out = [
        Candidate(
            session_id=r.id,
            tenant=r.tenant,
            status=r.status,
            ended_at=r.ended_at,
            event_count=int(r.event_count or 0),
            policy=_policy_name(r, default),
            expires_at=r.expires_at,
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
    basis: dict[str, Any] | None = None
    signature: bytes | None = None

    def recomputed_hash(self) -> bytes:
        return deletion_record_hash(
            prev_hash=self.prev_hash,
            seq=self.seq,
            run_id=self.run_id,
            session_id=self.session_id,
            tenant=self.tenant,
            policy=self.policy,
            reason=self.reason,
            event_count=self.event_count,
            final_hash=self.final_hash,
            deleted_at=self.deleted_at,
            basis=self.basis,
        )

    def signed_by(self, public_key: bytes) -> bool:
        return signature_valid(public_key, DELETION_SIGNATURE_LABEL, self.hash, self.signature)


_DR_COLS = (
    "seq, run_id, session_id, tenant, policy, reason, event_count, final_hash, deleted_at, "
    "prev_hash, hash, basis, signature"
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
        basis=dict(row.basis) if row.basis is not None else None,
        signature=bytes(row.signature) if row.signature is not None else None,
    )


class SessionHeld(Exception):
    """Raised inside ``shred_session`` when a hold appeared since the candidate was chosen."""


class NotDue(Exception):
    """Raised inside ``shred_session`` when the session is no longer due (a longer policy,
    a raised floor, or a different end time than when the run was planned)."""


class BasisRefused(Exception):
    """Raised inside ``shred_session`` when what decides expiry contradicts the chain."""


class ChainTailInvalid(Exception):
    """The last deletion record does not verify: a run never signs onto a forged record."""


def shred_session(
    engine: Engine,
    session_id: uuid.UUID,
    *,
    run_id: uuid.UUID | None,
    reason: str,
    now: datetime,
    signer: Signer,
    default: RetentionPeriod,
    floor: RetentionPeriod,
    planned_ended_at: datetime | None = None,
) -> DeletionRecord | None:
    """Check the basis, append the session's signed deletion record, then destroy its data key
    — in one transaction.

    For ``reason="retention"`` the session must still be due at ``now`` under the policy in
    force and the floor (``NotDue``), its end time must be the planned one and no earlier
    than its chained close record (``BasisRefused``). Returns the new record; None when the
    session is no longer ``open``/``closed`` (already shredded by an earlier run). Raises
    ``SessionHeld`` if a hold covers it."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_HOLDS})
        s = conn.execute(
            text(
                "SELECT s.id, s.tenant, s.status, s.ended_at, "
                "COALESCE(s.labels->>'agent', s.agent_name) AS agent_label, "
                "pol.id AS policy_id, pol.version AS policy_version, pol.agent AS policy_agent, "
                "pol.keep_years, pol.keep_months, pol.keep_days, "
                f"CASE WHEN s.ended_at IS NULL THEN NULL ELSE {_EXPIRES} END AS expires_at, "
                f"{_HELD} AS held FROM sessions s {_POLICY_JOIN} WHERE s.id = :id "
                "FOR UPDATE OF s"
            ),
            {"id": session_id, **_period_params(default, floor)},
        ).first()
        if s is None or s.status not in ("open", "closed"):
            return None
        if s.held:
            raise SessionHeld(str(session_id))
        # One pass over the session's rows for both: how many, and when the chain says it closed.
        stats = conn.execute(
            text(
                "SELECT count(*) AS n, min(at) FILTER (WHERE kind = 'closed') AS closed_at "
                "FROM events WHERE session_id = :id"
            ),
            {"id": session_id},
        ).one()
        closed_at = stats.closed_at
        count = int(stats.n)
        if reason == "retention":
            if s.status != "closed" or s.ended_at is None:
                raise NotDue("not closed")
            if planned_ended_at is not None and s.ended_at != planned_ended_at:
                raise NotDue("its end time changed after the run was planned")
            if closed_at is None:
                raise BasisRefused("it has no chained close record to confirm its end time")
            if s.ended_at < closed_at:
                raise BasisRefused(
                    f"its ended_at {ts(s.ended_at)} is earlier than its chained close record "
                    f"({ts(closed_at)}): the end time was rewritten"
                )
            if not s.expires_at < now:
                raise NotDue(f"due only after {ts(s.expires_at)}")
        last = conn.execute(
            text("SELECT seq, hash FROM events WHERE session_id = :id ORDER BY seq DESC LIMIT 1"),
            {"id": session_id},
        ).first()
        final_hash = bytes(last.hash) if last is not None else None
        deleted_at: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        changes_n, changes_h = changes_head(conn)
        basis: dict[str, Any] = {
            "v": 1,
            "ended_at": ts(s.ended_at) if s.ended_at is not None else None,
            "closed_at": ts(closed_at) if closed_at is not None else None,
            "floor": floor.to_json(),
            "holds": {"checked": True, "changes": changes_n, "changes_head": changes_h.hex()},
        }
        if reason == "retention":
            policy_name = _policy_name(s, default)
            basis.update(
                {
                    "agent": s.agent_label,
                    "policy": (
                        {
                            "id": str(s.policy_id),
                            "version": int(s.policy_version),
                            "agent": s.policy_agent,
                            "keep": RetentionPeriod(
                                s.keep_years, s.keep_months, s.keep_days
                            ).to_json(),
                        }
                        if s.policy_id is not None
                        else None
                    ),
                    "default": default.to_json(),
                    "expires_at": ts(s.expires_at),
                    "run_clock": ts(now),
                }
            )
        else:
            policy_name = reason
            basis["request"] = reason
        record = _append_deletion(
            conn,
            signer,
            run_id=run_id,
            session_id=session_id,
            tenant=s.tenant,
            policy=policy_name[:256],
            reason=reason,
            event_count=count,
            final_hash=final_hash,
            deleted_at=deleted_at,
            basis=basis,
        )
        conn.execute(
            text(
                "UPDATE data_keys SET wrapped = NULL, shredded_at = :at "
                "WHERE session_id = :id AND wrapped IS NOT NULL"
            ),
            {"id": session_id, "at": deleted_at},
        )
        conn.execute(
            text(
                "UPDATE sessions SET status = 'shredded', updated_at = :at, "
                "ended_at = COALESCE(ended_at, :at), "
                "close_reason = COALESCE(close_reason, :reason) WHERE id = :id"
            ),
            {"id": session_id, "at": deleted_at, "reason": reason},
        )
        return record


def _append_deletion(
    conn: Connection,
    signer: Signer,
    *,
    run_id: uuid.UUID | None,
    session_id: uuid.UUID,
    tenant: str,
    policy: str,
    reason: str,
    event_count: int,
    final_hash: bytes | None,
    deleted_at: datetime,
    basis: dict[str, Any],
) -> DeletionRecord:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_DELETION_CHAIN})
    last_row = conn.execute(
        text(f"SELECT {_DR_COLS} FROM deletion_records ORDER BY seq DESC LIMIT 1")
    ).first()
    last = _deletion(last_row) if last_row is not None else None
    adopted = (
        adopted_deletions(conn, signer.public)
        if last is not None and last.signature is None
        else None
    )
    vouched = (
        adopted is not None
        and last is not None
        and last.seq == adopted[0] - 1
        and last.hash == adopted[1]
    )
    if last is not None and (
        last.recomputed_hash() != last.hash or not (last.signed_by(signer.public) or vouched)
    ):
        raise ChainTailInvalid(
            f"deletion record {last.seq} does not verify (altered, or not signed by this "
            "keyring's checkpoint key)"
        )
    seq = last.seq + 1 if last is not None else 0
    prev = last.hash if last is not None else GENESIS
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
        basis=basis,
    )
    row = conn.execute(
        text(
            "INSERT INTO deletion_records (seq, run_id, session_id, tenant, policy, reason, "
            "event_count, final_hash, deleted_at, prev_hash, hash, basis, signature) VALUES "
            "(:seq, :run_id, :session_id, :tenant, :policy, :reason, :event_count, :final_hash, "
            f":deleted_at, :prev_hash, :hash, CAST(:basis AS jsonb), :sig) RETURNING {_DR_COLS}"
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
            "basis": canonical_json(basis).decode(),
            "sig": signer.sign(DELETION_SIGNATURE_LABEL + digest),
        },
    ).one()
    return _deletion(row)


def delete_event_batch(engine: Engine, session_id: uuid.UUID, *, batch_size: int) -> int:
    """Delete up to ``batch_size`` events of a *shredded* (or purged) session; returns how many.

    The only statement anywhere that lifts the append-only guard, and only for this
    transaction; it refuses to touch a session whose key has not been shredded first.
    ``synchronous_commit = off`` is safe here: a batch lost in a crash is simply deleted again
    by the next run.
    """
    with engine.begin() as conn:
        status = conn.execute(
            text("SELECT status FROM sessions WHERE id = :id FOR SHARE"), {"id": session_id}
        ).scalar()
        if status not in ("shredded", "purged"):
            return 0
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text("SET LOCAL auditagent.allow_purge = 'on'"))
        # The call audio goes with the first batch (a few rows a minute of call); late chunks
        # written while it was erased, with the sweep's.
        conn.execute(text("DELETE FROM audio_chunks WHERE session_id = :id"), {"id": session_id})
        result = conn.execute(
            text(
                "DELETE FROM events WHERE session_id = :id AND seq < ("
                "  SELECT min(seq) FROM events WHERE session_id = :id) + :n"
            ),
            {"id": session_id, "n": batch_size},
        )
        return int(result.rowcount or 0)


def events_left(engine: Engine, session_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM events WHERE session_id = :id) "
                    "+ (SELECT count(*) FROM audio_chunks WHERE session_id = :id)"
                ),
                {"id": session_id},
            ).scalar_one()
        )


def mark_purged(engine: Engine, session_id: uuid.UUID, *, now: datetime | None = None) -> bool:
    """``shredded`` -> ``purged`` once no event is left; drops the participant's blind index
    (the count and head hash stay: they are what checkpoints and deletion records refer to)."""
    with engine.begin() as conn:
        result = conn.execute(
            text(
                "UPDATE sessions SET status = 'purged', participant_index = NULL, "
                "updated_at = clock_timestamp() WHERE id = :id AND status = 'shredded' "
                "AND NOT EXISTS (SELECT 1 FROM events WHERE session_id = :id) "
                "AND NOT EXISTS (SELECT 1 FROM audio_chunks WHERE session_id = :id)"
            ),
            {"id": session_id},
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


def deletion_records_between(
    engine: Engine,
    *,
    tenant: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    after_seq: int | None = None,
    limit: int | None = None,
) -> list[DeletionRecord]:
    conds: list[str] = []
    params: dict[str, Any] = {}
    if tenant is not None:
        conds.append("tenant = :tenant")
        params["tenant"] = tenant
    if start is not None:
        conds.append("deleted_at >= :start")
        params["start"] = start
    if end is not None:
        conds.append("deleted_at < :end")
        params["end"] = end
    if after_seq is not None:
        conds.append("seq > :after")
        params["after"] = after_seq
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    sql = f"SELECT {_DR_COLS} FROM deletion_records{where} ORDER BY seq"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    with engine.connect() as conn:
        return [_deletion(r) for r in conn.execute(text(sql), params)]


# --- what the verifier reads --------------------------------------------------------------------


def all_policy_rows(engine: Engine) -> list[Policy]:
    with engine.connect() as conn:
        return [
            _policy(r) for r in conn.execute(text(f"SELECT {_POLICY_COLS} FROM retention_policies"))
        ]


def all_hold_rows(engine: Engine) -> list[Hold]:
    with engine.connect() as conn:
        return [_hold(r) for r in conn.execute(text(f"SELECT {_HOLD_COLS} FROM legal_holds"))]


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
                    "SELECT e.session_id, count(*) FROM (SELECT session_id FROM events "
                    "UNION ALL SELECT session_id FROM audio_chunks) e JOIN sessions s "
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


def deletion_records_on(conn: Connection, session_id: uuid.UUID) -> list[DeletionRecord]:
    rows = conn.execute(
        text(f"SELECT {_DR_COLS} FROM deletion_records WHERE session_id = :id ORDER BY seq"),
        {"id": session_id},
    )
    return [_deletion(r) for r in rows]
