"""SQL for master-key maintenance: moving wrapped data keys to the newest master key version."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, any_, func, select, update

from ..errors import AuditagentError
from ..integrity.envelope import dek_context
from ..keys import KeyProvider, WrappedKey
from ._sql import uuid_array
from .models import DataKeyRow


@dataclass(frozen=True)
class RewrapResult:
    rewrapped: int
    already_current: int
    shredded: int
    failed: list[uuid.UUID]


def rewrap_all(engine: Engine, key_provider: KeyProvider, *, batch_size: int = 500) -> RewrapResult:
    """Rewrap every data key not under the current master key; no event ciphertext is touched.

    Each batch commits on its own, so an interrupted run keeps its progress and a rerun
    continues; ``SKIP LOCKED`` lets two runs share the work instead of waiting on each other.
    """
    current = key_provider.current_key_id()
    k = DataKeyRow.__table__.c
    done = 0
    # A key this keyring cannot unwrap (another keyring's, or damaged) is reported, left as it
    # is, and excluded from later batches so the run still finishes everything else.
    failed: list[uuid.UUID] = []
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(k.session_id, k.key_id, k.tenant, k.master_key_id, k.wrapped)
                .where(
                    k.wrapped.is_not(None),
                    k.master_key_id != current,
                    ~(k.session_id == any_(uuid_array(failed))),
                )
                .order_by(k.session_id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                break
            for sid, key_id, tenant, master_key_id, wrapped in rows:
                try:
                    new = key_provider.rewrap_blob(
                        WrappedKey(master_key_id=master_key_id, blob=bytes(wrapped)),
                        context=dek_context(tenant=tenant, session_id=sid, key_id=key_id),
                    )
                except AuditagentError:
                    failed.append(sid)
                    continue
                conn.execute(
                    update(DataKeyRow)
                    .where(DataKeyRow.session_id == sid)
                    .values(
                        master_key_id=new.master_key_id, wrapped=new.blob, rewrapped_at=func.now()
                    )
                )
            done += len(rows) - sum(1 for r in rows if r[0] in failed)
    with engine.connect() as conn:
        current_n = conn.execute(
            select(func.count()).where(k.wrapped.is_not(None), k.master_key_id == current)
        ).scalar_one()
        shredded = conn.execute(select(func.count()).where(k.wrapped.is_(None))).scalar_one()
    return RewrapResult(
        rewrapped=done,
        already_current=int(current_n) - done,
        shredded=int(shredded),
        failed=failed,
    )
