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
from .texts import ROLE_CODES, SEARCHABLE_KINDS, record_texts, role_of_kind
from .tokens import index_words

__all__ = ["ReindexResult", "reindex", "session_entries", "session_index"]

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
    return session_index(conn, key_provider, key, session_id)[0]


def session_index(
    conn: Connection, key_provider: KeyProvider, key: BeaconKey, session_id: uuid.UUID
) -> tuple[set[IndexEntry], bytes]:
    """Every index entry of one session and its word filter, from its decrypted records."""
    session = reader.get_session(conn, session_id)
    sealer = session_sealer(key_provider, reader.get_data_key(conn, session_id), session)
    words: dict[int, set[bytes]] = {}
    rows = store.events_of_kinds(conn, session_id, sorted(SEARCHABLE_KINDS))
    for o in open_records(sealer, rows):
        role = role_of_kind(o.record.kind)
        if role is not None:
            found = words.setdefault(ROLE_CODES[role], set())
            for text in record_texts(o.record):
                found |= index_words(text)
    entries = {(code, b) for code, ws in words.items() for b in key.beacons_of(ws)}
    return entries, key.word_filter(session_id, words)


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
                    entries, word_filter = session_index(conn, key_provider, key, row.id)
                except AuditagentError as exc:
                    log.warning("cannot reindex session %s (%s)", row.id, type(exc).__name__)
                    result.failed.append(row.id)
                    continue
                store.replace_session(
                    conn,
                    session_id=row.id,
                    tenant=row.tenant,
                    key_id=key_id,
                    scope=key.scope,
                    entries=entries,
                    # An open session may still add words: it gets its filter when it closes
                    # (from the writer, if this marker was not there first) or never; without
                    # one it is decrypted when nominated.
                    word_filter=word_filter if row.status == "closed" else None,
                )
                result.indexed += 1
        if progress is not None:
            progress(result.indexed + len(result.failed), total)
    return result
