"""The signed change log (``retention_changes``): every policy and hold change, chained."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from ..integrity.chain import GENESIS
from ..integrity.encoding import CHANGE_SIGNATURE_LABEL
from ..integrity.ledgers import (
    Signer,
    change_hash,
    signature_valid,
)
from .locks import LOCK_CHANGES, clock, xact_lock
from .models import RetentionChangeRow


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

    def recomputed_hash(self) -> bytes:
        return change_hash(
            prev_hash=self.prev_hash,
            seq=self.seq,
            at=self.at,
            action=self.action,
            tenant=self.tenant,
            subject=self.subject,
            actor=self.actor,
            body=self.body,
        )

    def signed_by(self, public_key: bytes) -> bool:
        return signature_valid(public_key, CHANGE_SIGNATURE_LABEL, self.hash, self.signature)

    def adoption(self) -> tuple[int, bytes] | None:
        """(count, head) of the unsigned deletion records a ``deletions.adopt`` entry vouches
        for; None for any other entry, or a body that does not say."""
        if self.action != ADOPT_DELETIONS:
            return None
        try:
            return int(self.body["count"]), bytes.fromhex(str(self.body["head"]))
        except (KeyError, TypeError, ValueError):
            return None


ADOPT_DELETIONS = "deletions.adopt"
_CHANGES = RetentionChangeRow.__table__


_LAST = select(_CHANGES.c.seq, _CHANGES.c.hash).order_by(_CHANGES.c.seq.desc()).limit(1)


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


def append_change_on(
    conn: Connection,
    signer: Signer,
    *,
    action: str,
    tenant: str,
    subject: uuid.UUID,
    actor: str,
    body: Mapping[str, Any],
) -> Change:
    xact_lock(conn, LOCK_CHANGES)
    last = conn.execute(_LAST).first()
    seq = int(last.seq) + 1 if last is not None else 0
    prev = bytes(last.hash) if last is not None else GENESIS
    at: datetime = clock(conn)
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
        insert(RetentionChangeRow)
        .values(
            seq=seq,
            at=at,
            action=action,
            tenant=tenant,
            subject=subject,
            actor=actor,
            body=dict(body),
            prev_hash=prev,
            hash=digest,
            signature=signer.sign(CHANGE_SIGNATURE_LABEL + digest),
        )
        .returning(*_CHANGES.c)
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
        return append_change_on(
            conn, signer, action=action, tenant=tenant, subject=subject, actor=actor, body=body
        )


def adopted_deletions(conn: Connection, public_key: bytes) -> tuple[int, bytes] | None:
    """(count, head) of the unsigned deletion records (written before signed retention) an
    operator vouched for with ``auditagent retention adopt``; None when none were."""
    row = conn.execute(
        select(_CHANGES)
        .where(_CHANGES.c.action == ADOPT_DELETIONS)
        .order_by(_CHANGES.c.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    c = _change(row)
    return c.adoption() if c.signed_by(public_key) else None


def iter_changes(engine: Engine) -> Iterator[Change]:
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(
            select(_CHANGES).order_by(_CHANGES.c.seq)
        )
        for r in result:
            yield _change(r)


def changes_head(conn: Connection) -> tuple[int, bytes]:
    last = conn.execute(_LAST).first()
    if last is None:
        return 0, GENESIS
    return int(last.seq) + 1, bytes(last.hash)
