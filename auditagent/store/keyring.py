"""SQL for master-key maintenance: moving wrapped data keys to the newest master key version."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, text

from ..envelope import dek_context
from ..errors import AuditagentError
from ..keys import KeyProvider, WrappedKey


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
    done = 0
    # A key this keyring cannot unwrap (another keyring's, or damaged) is reported, left as it
    # is, and excluded from later batches so the run still finishes everything else.
    failed: list[uuid.UUID] = []
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                text(
                    "SELECT session_id, key_id, tenant, master_key_id, wrapped FROM data_keys"
                    " WHERE wrapped IS NOT NULL AND master_key_id <> :current"
                    " AND NOT (session_id = ANY(:failed))"
                    " ORDER BY session_id LIMIT :n FOR UPDATE SKIP LOCKED"
                ),
                {"current": current, "n": batch_size, "failed": failed},
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
                    text(
                        "UPDATE data_keys SET master_key_id = :m, wrapped = :w,"
                        " rewrapped_at = now() WHERE session_id = :sid"
                    ),
                    {"m": new.master_key_id, "w": new.blob, "sid": sid},
                )
            done += len(rows) - sum(1 for r in rows if r[0] in failed)
    with engine.connect() as conn:
        current_n = conn.execute(
            text("SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL AND master_key_id = :c"),
            {"c": current},
        ).scalar_one()
        shredded = conn.execute(
            text("SELECT count(*) FROM data_keys WHERE wrapped IS NULL")
        ).scalar_one()
    return RewrapResult(
        rewrapped=done,
        already_current=int(current_n) - done,
        shredded=int(shredded),
        failed=failed,
    )
