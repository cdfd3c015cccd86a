"""A search, end to end: beacons of the query, candidate sessions, decrypt, confirm, page.

Pages walk the candidates newest first with the session list's keyset cursor. A page stops
at ``limit`` confirmed sessions or after ``max_examined`` candidates, whichever comes first,
so one request costs at most that many decryptions; ``next_cursor`` then continues where it
stopped (a page may be short, or even empty, and still have a next one).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from auditagent.errors import AuditagentError
from auditagent.keys import KeyProvider
from auditagent.reading.decrypt import open_records, session_sealer
from auditagent.store import reader
from auditagent.store import search_index as store

from .beacons import BeaconKey
from .confirm import Hit, match_session
from .query import Query
from .texts import ROLE_CODES, SEARCHABLE_KINDS, Role, kinds_of_role

__all__ = ["SearchPage", "SearchResult", "beacon_keys", "query_mac", "search"]

log = logging.getLogger("auditagent.search")

CANDIDATE_BATCH = 50
MAX_EXAMINED = 200


@dataclass(frozen=True)
class SearchResult:
    session: Any
    hits: list[Hit]
    hit_count: int


@dataclass(frozen=True)
class SearchPage:
    items: list[SearchResult]
    next_cursor: str | None
    examined: int
    """Candidate sessions decrypted for this page (the false positives among them included)."""


def beacon_keys(conn: Connection, key_provider: KeyProvider, *, tenant: str) -> list[BeaconKey]:
    """The tenant's search keys for every key version it has index rows under (the current
    one first): during a reindex a session may be under either."""
    current, key = key_provider.search_key(tenant=tenant)
    keys = [BeaconKey(tenant=tenant, key_id=current, key=key)]
    older = [k for k in key_provider.key_ids() if k != current]
    for key_id in store.key_versions_in_use(conn, tenant=tenant, key_ids=older):
        _, old = key_provider.search_key(tenant=tenant, key_id=key_id)
        keys.append(BeaconKey(tenant=tenant, key_id=key_id, key=old))
    return keys


def query_mac(key_provider: KeyProvider, *, tenant: str | None, query: Query) -> str:
    """What the access log keeps of a query: a keyed MAC of its canonical form. Equal
    searches have equal MACs; without the keyring it says nothing about the words."""
    _, key = key_provider.search_key(tenant=tenant if tenant is not None else "")
    return hmac.digest(key, b"query\0" + query.canonical().encode(), "sha256").hex()


def search(
    conn: Connection,
    key_provider: KeyProvider,
    *,
    tenant: str | None,
    query: Query,
    role: Role | None = None,
    filters: reader.SessionFilter | None = None,
    cursor: str | None = None,
    limit: int = 20,
    max_examined: int = MAX_EXAMINED,
) -> SearchPage:
    """One page of confirmed matches in ``tenant`` (None: every tenant, for tenantless
    admins; the words are keyed per tenant, so each tenant gets beacons of its own), newest
    session first."""
    filters = replace(filters or reader.SessionFilter(), tenant=tenant)
    words = sorted(query.indexed_words)
    tenants = [tenant] if tenant is not None else reader.tenants(conn)
    beacons = {
        (t, k.key_id): sorted(k.beacons(words))
        for t in tenants
        for k in beacon_keys(conn, key_provider, tenant=t)
    }
    after = reader.decode_cursor(cursor) if cursor is not None else None
    code = ROLE_CODES[role] if role is not None else None
    items: list[SearchResult] = []
    examined = 0
    last = after
    while len(items) < limit and examined < max_examined:
        batch = store.candidates(
            conn,
            beacons=beacons,
            role=code,
            filters=filters,
            after=last,
            limit=min(CANDIDATE_BATCH, max_examined - examined),
        )
        if not batch:
            return SearchPage(items, None, examined)
        kinds = kinds_of_role(role) if role is not None else sorted(SEARCHABLE_KINDS)
        ids = [s.id for s in batch]
        data_keys = store.data_keys_for(conn, ids)
        events = store.events_for_sessions(conn, ids, kinds)
        for session in batch:
            examined += 1
            last = (session.started_at, session.id)
            match = _confirm(
                key_provider, session, data_keys.get(session.id), events[session.id], query, role
            )
            if match is not None:
                items.append(match)
                if len(items) >= limit:
                    break
            if examined >= max_examined:
                break
    assert last is not None
    return SearchPage(items, reader.encode_cursor(*last), examined)


def _confirm(
    key_provider: KeyProvider,
    session: Any,
    data_key: Any,
    rows: list[Any],
    query: Query,
    role: Role | None,
) -> SearchResult | None:
    try:
        sealer = session_sealer(key_provider, data_key, session)
        opened = ((o.seq, o.at, o.record) for o in open_records(sealer, rows))
        match = match_session(query, opened, role=role)
    except AuditagentError as exc:
        # Shredded meanwhile, a key this keyring lacks, a damaged record: not a match, and
        # not a reason to fail everyone else's results.
        log.warning("search skipped session %s (%s)", session.id, type(exc).__name__)
        return None
    if match is None:
        return None
    return SearchResult(session, match.hits, match.hit_count)
