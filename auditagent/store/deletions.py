"""The deletion-record chain (``deletion_records``): one signed record per deleted session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from ..integrity.chain import GENESIS
from ..integrity.encoding import DELETION_SIGNATURE_LABEL
from ..integrity.ledgers import (
    Signer,
    deletion_record_hash,
    signature_valid,
)
from .changes import adopted_deletions
from .locks import LOCK_DELETION_CHAIN, xact_lock
from .models import DeletionRecordRow, SessionRow


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


_RECORDS = DeletionRecordRow.__table__
_SESSIONS = SessionRow.__table__
# Built once (each deleted session appends one record): a prebuilt statement memoizes its
# cache key; the insert takes its values as parameters.
_LAST_RECORD = select(_RECORDS).order_by(_RECORDS.c.seq.desc()).limit(1)
# sort_by_parameter_order: the returned rows in the order of the items (one INSERT, many rows)
_INSERT_RECORDS = insert(DeletionRecordRow).returning(*_RECORDS.c, sort_by_parameter_order=True)


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


class ChainTailInvalid(Exception):
    """The last deletion record does not verify: a run never signs onto a forged record."""


@dataclass(frozen=True)
class NewDeletion:
    """What a deletion record says, before the chain gives it a place."""

    session_id: uuid.UUID
    tenant: str
    policy: str
    reason: str
    event_count: int
    final_hash: bytes | None
    basis: dict[str, Any]


def append_deletion_on(
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
    new = NewDeletion(session_id, tenant, policy, reason, event_count, final_hash, basis)
    (record,) = append_deletions_on(conn, signer, [new], run_id=run_id, deleted_at=deleted_at)
    return record


def append_deletions_on(
    conn: Connection,
    signer: Signer,
    items: list[NewDeletion],
    *,
    run_id: uuid.UUID | None,
    deleted_at: datetime,
) -> list[DeletionRecord]:
    """Append ``items`` to the deletion chain, in order, each hashed onto the one before and
    signed, in one INSERT (a month's sessions at once); the chain's tail is checked first."""
    xact_lock(conn, LOCK_DELETION_CHAIN)
    last_row = conn.execute(_LAST_RECORD).first()
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
    rows = []
    for it in items:
        digest = deletion_record_hash(
            prev_hash=prev,
            seq=seq,
            run_id=run_id,
            session_id=it.session_id,
            tenant=it.tenant,
            policy=it.policy,
            reason=it.reason,
            event_count=it.event_count,
            final_hash=it.final_hash,
            deleted_at=deleted_at,
            basis=it.basis,
        )
        rows.append(
            {
                "seq": seq,
                "run_id": run_id,
                "session_id": it.session_id,
                "tenant": it.tenant,
                "policy": it.policy,
                "reason": it.reason,
                "event_count": it.event_count,
                "final_hash": it.final_hash,
                "deleted_at": deleted_at,
                "prev_hash": prev,
                "hash": digest,
                "basis": dict(it.basis),
                "signature": signer.sign(DELETION_SIGNATURE_LABEL + digest),
            }
        )
        seq, prev = seq + 1, digest
    if not rows:
        return []
    out = conn.execute(_INSERT_RECORDS, rows).all()
    return [_deletion(r) for r in out]


def unsigned_deletion_prefix(engine: Engine) -> tuple[int, bytes] | None:
    """(count, head) of the deletion records before the first signed one, when every unsigned
    record comes before every signed one (what a database upgraded to 0017 has)."""
    d = _RECORDS.c
    with engine.connect() as conn:
        row = conn.execute(
            select(
                func.count().filter(d.signature.is_(None)).label("unsigned"),
                func.min(d.seq).filter(d.signature.is_not(None)).label("first_signed"),
            )
        ).one()
        n = int(row.unsigned)
        if n == 0 or (row.first_signed is not None and int(row.first_signed) != n):
            return None
        head = conn.execute(select(d.hash).where(d.seq == n - 1)).scalar()
    return (n, bytes(head)) if head is not None else None


def deletion_records_for(engine: Engine, session_id: uuid.UUID) -> list[DeletionRecord]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(_RECORDS).where(_RECORDS.c.session_id == session_id).order_by(_RECORDS.c.seq)
        )
        return [_deletion(r) for r in rows]


def iter_deletion_records(engine: Engine) -> Iterator[DeletionRecord]:
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(
            select(_RECORDS).order_by(_RECORDS.c.seq)
        )
        for r in result:
            yield _deletion(r)


def deletion_head(conn: Connection) -> tuple[int, bytes]:
    last = conn.execute(
        select(_RECORDS.c.seq, _RECORDS.c.hash).order_by(_RECORDS.c.seq.desc()).limit(1)
    ).first()
    if last is None:
        return 0, GENESIS
    return int(last.seq) + 1, bytes(last.hash)


def sessions_without_deletion_record(engine: Engine) -> list[uuid.UUID]:
    """Sessions marked shredded/purged with no deletion record: removed outside this path."""
    with engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                select(_SESSIONS.c.id).where(
                    _SESSIONS.c.status.in_(("shredded", "purged")),
                    ~select(_RECORDS.c.seq).where(_RECORDS.c.session_id == _SESSIONS.c.id).exists(),
                )
            )
        ]


def has_deletion_record(conn: Connection, session_id: uuid.UUID) -> bool:
    return (
        conn.execute(
            select(_RECORDS.c.seq).where(_RECORDS.c.session_id == session_id).limit(1)
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
    d = _RECORDS.c
    stmt = select(_RECORDS)
    if tenant is not None:
        stmt = stmt.where(d.tenant == tenant)
    if start is not None:
        stmt = stmt.where(d.deleted_at >= start)
    if end is not None:
        stmt = stmt.where(d.deleted_at < end)
    if after_seq is not None:
        stmt = stmt.where(d.seq > after_seq)
    stmt = stmt.order_by(d.seq)
    if limit is not None:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        return [_deletion(r) for r in conn.execute(stmt)]


def deletion_records_on(conn: Connection, session_id: uuid.UUID) -> list[DeletionRecord]:
    rows = conn.execute(
        select(_RECORDS).where(_RECORDS.c.session_id == session_id).order_by(_RECORDS.c.seq)
    )
    return [_deletion(r) for r in rows]
