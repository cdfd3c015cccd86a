"""A search, end to end: beacons of the query, candidate sessions, decrypt, confirm, page.

Pages walk the candidates newest first with the session list's keyset cursor. A candidate
whose word filter (auditagent/search/wordfilter.py) lacks a word of the query is discarded
without a decryption. A page stops at ``limit`` confirmed sessions, after ``max_examined``
candidates decrypted or ``max_screened`` looked at, whichever comes first, so one request
costs at most that many decryptions; ``next_cursor`` then continues where it
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
from .confirm import Hit, match_session, plaintext_filter
from .query import Query
from .texts import ROLE_CODES, SEARCHABLE_KINDS, Role, kinds_of_role
from .tokens import encode
from .wordfilter import WordFilter

__all__ = ["SearchPage", "SearchResult", "beacon_keys", "query_mac", "search"]

log = logging.getLogger("auditagent.search")

CANDIDATE_BATCH = 50
MAX_EXAMINED = 200
MAX_SCREENED = 2000
"""Candidates one page looks at (a word filter check each, no decryption) at most."""


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
    screened: int = 0
    """Candidate sessions looked at for this page: decrypted, or discarded by their word
    filter without a decryption."""


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
    max_screened: int = MAX_SCREENED,
) -> SearchPage:
    """One page of confirmed matches in ``tenant`` (None: every tenant, for tenantless
    admins; the words are keyed per tenant, so each tenant gets beacons of its own), newest
    session first."""
    filters = replace(filters or reader.SessionFilter(), tenant=tenant)
    words = sorted(query.indexed_words)
    tenants = [tenant] if tenant is not None else reader.tenants(conn)
    beacons = {
        (t, k.key_id): sorted(k.elements(words))
        for t in tenants
        for k in beacon_keys(conn, key_provider, tenant=t)
    }
    after = reader.decode_cursor(cursor) if cursor is not None else None
    code = ROLE_CODES[role] if role is not None else None
    items: list[SearchResult] = []
    examined = screened = 0
    last = after
    # One candidate query per page: the GIN probes read every row holding a beacon, so the
    # list is fetched once (up to ``max_screened``, narrow rows with each session's word
    # filter) and the candidates the filters keep are decrypted a batch at a time.
    cands = store.candidate_filters(
        conn, beacons=beacons, role=code, filters=filters, after=last, limit=max_screened
    )
    screen = _Screen(key_provider, [encode(w) for w in words], role=code)
    kinds = kinds_of_role(role) if role is not None else sorted(SEARCHABLE_KINDS)
    at = 0
    while len(items) < limit and examined < max_examined and at < len(cands):
        room = min(CANDIDATE_BATCH, max_examined - examined)
        end = at
        keep: set[Any] = set()
        while end < len(cands) and len(keep) < room:
            if screen.may_match(cands[end]):
                keep.add(cands[end].id)
            end += 1
        ids = [c.id for c in cands[at:end] if c.id in keep]
        sessions = store.sessions_by_id(conn, ids) if ids else {}
        data_keys = store.data_keys_for(conn, ids) if ids else {}
        events = store.events_for_sessions(conn, ids, kinds) if ids else {}
        for c in cands[at:end]:
            at += 1
            screened += 1
            last = (c.started_at, c.id)
            session = sessions.get(c.id)
            if session is None:
                continue  # discarded by its word filter (or gone since): not decrypted
            examined += 1
            match = _confirm(key_provider, session, data_keys.get(c.id), events[c.id], query, role)
            if match is not None:
                items.append(match)
            if len(items) >= limit or examined >= max_examined:
                break
    if at >= len(cands) and len(cands) < max_screened:
        return SearchPage(items, None, examined, screened)  # every candidate looked at
    assert last is not None
    return SearchPage(items, reader.encode_cursor(*last), examined, screened)


class _Screen:
    """The word filters of a page's candidates, read with each session's own key."""

    def __init__(self, key_provider: KeyProvider, words: list[bytes], *, role: int | None):
        self._kp = key_provider
        self._words = words
        self._role = role
        self._keys: dict[tuple[str, str], BeaconKey | None] = {}

    def _key(self, tenant: str, key_id: str) -> BeaconKey | None:
        if (tenant, key_id) in self._keys:
            return self._keys[(tenant, key_id)]
        got: BeaconKey | None
        try:
            _, raw = self._kp.search_key(tenant=tenant, key_id=key_id)
            got = BeaconKey(tenant=tenant, key_id=key_id, key=raw)
        except AuditagentError:
            got = None  # a key this keyring lacks: decrypt, as without a filter
        self._keys[(tenant, key_id)] = got
        return got

    def may_match(self, cand: Any) -> bool:
        """False only when the session's filter says some word of the query is not in it."""
        if cand.word_filter is None:
            return True
        key = self._key(cand.tenant, cand.filter_key_id)
        if key is None:
            return True
        wf = WordFilter.parse(
            key.filter_key(cand.id), bytes(cand.word_filter), material=key.material
        )
        return wf is None or wf.may_hold(self._words, role=self._role)


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
        keep = plaintext_filter(query)
        opened = ((o.seq, o.at, o.record) for o in open_records(sealer, rows, keep=keep))
        match = match_session(query, opened, role=role)
    except AuditagentError as exc:
        # Shredded meanwhile, a key this keyring lacks, a damaged record: not a match, and
        # not a reason to fail everyone else's results.
        log.warning("search skipped session %s (%s)", session.id, type(exc).__name__)
        return None
    if match is None:
        return None
    return SearchResult(session, match.hits, match.hit_count)
