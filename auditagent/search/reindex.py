"""Rebuilding the index from the sealed records: after a key rotation, for sessions recorded
before search existed, or to repair it. The index is derived data; the records decide.

Resumable by construction: each session is rebuilt and marked (``search_index_sessions``) in
one transaction, and a run only takes sessions not yet marked with the current key version,
so an interrupted run loses at most the batch it was on and a rerun continues from there.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from auditagent.errors import AuditagentError
from auditagent.keys import KeyProvider
from auditagent.reading.decrypt import open_records, session_sealer
from auditagent.store import reader
from auditagent.store import search_index as store

from .beacons import BeaconKey, IndexEntry
from .texts import SEARCHABLE_KINDS

__all__ = ["ReindexResult", "reindex", "session_entries"]

log = logging.getLogger("auditagent.search")

Progress = Callable[[int, int], None]
"""``(sessions done, sessions to do)``, called after every batch."""


@dataclass
class ReindexResult:
    key_id: str
    indexed: int = 0
    failed: list[uuid.UUID] = field(default_factory=list)
    """Sessions whose records this keyring cannot open (another keyring's, or damaged)."""
    total: int = 0


def session_entries(
    conn: Connection, key_provider: KeyProvider, key: BeaconKey, session_id: uuid.UUID
) -> set[IndexEntry]:
    """Every index entry of one session, from its decrypted records."""
    session = reader.get_session(conn, session_id)
    sealer = session_sealer(key_provider, reader.get_data_key(conn, session_id), session)
    entries: set[IndexEntry] = set()
    rows = store.events_of_kinds(conn, session_id, sorted(SEARCHABLE_KINDS))
    for o in open_records(sealer, rows):
        entries |= key.entries(o.record)
    return entries


def reindex(
    engine: Engine,
    key_provider: KeyProvider,
    *,
    tenant: str | None = None,
    batch_size: int = 50,
    progress: Progress | None = None,
) -> ReindexResult:
    """Index every readable session (of ``tenant``) under the current key version."""
    key_id = key_provider.current_key_id()
    with engine.connect() as conn:
        total = store.count_to_reindex(conn, key_id=key_id, tenant=tenant)
    result = ReindexResult(key_id=key_id, total=total)
    keys: dict[str, BeaconKey] = {}
    if progress is not None:
        progress(0, total)
    while True:
        with engine.begin() as conn:
            rows = store.sessions_to_reindex(
                conn, key_id=key_id, tenant=tenant, limit=batch_size, skip=result.failed
            )
            if not rows:
                break
            for row in rows:
                key = keys.get(row.tenant)
                if key is None:
                    kid, raw = key_provider.search_key(tenant=row.tenant, key_id=key_id)
                    key = keys[row.tenant] = BeaconKey(tenant=row.tenant, key_id=kid, key=raw)
                try:
                    entries = session_entries(conn, key_provider, key, row.id)
                except AuditagentError as exc:
                    log.warning("cannot reindex session %s (%s)", row.id, type(exc).__name__)
                    result.failed.append(row.id)
                    continue
                store.replace_session(
                    conn, session_id=row.id, tenant=row.tenant, key_id=key_id, entries=entries
                )
                result.indexed += 1
        if progress is not None:
            progress(result.indexed + len(result.failed), total)
    return result
