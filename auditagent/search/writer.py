"""The recorder's side of the index: beacons of each record as the writer seals it.

Runs in the writer task, never in a LiveKit hook. A session's rows are deduplicated here (one
row per role and beacon), handed to the batch being written, and stored in its transaction
(or its spool file). Indexing never costs a record: a failure is logged by type, the session
is left unmarked, and `auditagent search reindex` indexes it from its sealed records.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from auditagent.records import Record
from auditagent.store.search_rows import IndexRows

from .beacons import BeaconKey
from .texts import ROLE_CODES, SEARCHABLE_KINDS, record_texts, role_of_kind
from .tokens import index_words
from .wordfilter import FilterBuilder

if TYPE_CHECKING:
    from auditagent.keys import KeyProvider

__all__ = ["IndexKeys", "SessionIndexer"]

log = logging.getLogger("auditagent.search")


class IndexKeys:
    """The current search key of each tenant this recorder has seen, derived once."""

    def __init__(self, key_provider: KeyProvider) -> None:
        self._kp = key_provider
        self._keys: dict[str, BeaconKey] = {}

    def for_tenant(self, tenant: str) -> BeaconKey:
        key = self._keys.get(tenant)
        if key is None:
            key_id, raw = self._kp.search_key(tenant=tenant)
            key = self._keys[tenant] = BeaconKey(tenant=tenant, key_id=key_id, key=raw)
        return key


class SessionIndexer:
    """One session's index rows: those sent, and those waiting for the next batch."""

    __slots__ = ("_broken", "_filter", "_key", "_new", "_seen", "_sent", "session_id")

    def __init__(self, key: BeaconKey, session_id: uuid.UUID) -> None:
        self._key = key
        self.session_id = session_id
        self._seen: dict[int, set[bytes]] = {}
        self._new: dict[int, set[int]] = {}
        # Beacons handed over, per role: each goes into one row of the session only (two new
        # words may share one), so a row's smallest beacon names it for idempotent replays.
        self._sent: dict[int, set[int]] = {}
        self._broken = False
        self._filter: FilterBuilder | None = None

    def add(self, record: Record) -> None:
        if record.kind not in SEARCHABLE_KINDS or self._broken:
            return
        try:
            self._add(record)
        except Exception as exc:  # an index bug must never cost the record itself
            log.error(
                "session %s: not indexed (%s); run `auditagent search reindex`",
                self.session_id,
                type(exc).__name__,
            )
            self._broken = True

    def _add(self, record: Record) -> None:
        role = role_of_kind(record.kind)
        if role is None:
            return
        code = ROLE_CODES[role]
        texts = record_texts(record)
        found = index_words(texts[0]) if len(texts) == 1 else set().union(*map(index_words, texts))
        # Words this session already has (in this role) cost a set difference, not a lookup:
        # a conversation repeats itself.
        seen = self._seen.get(code)
        if seen is None:
            seen = self._seen[code] = set()
        new = found - seen
        if not new:
            return
        if self._filter is None:
            self._filter = FilterBuilder(self._key.filter_key(self.session_id))
        self._filter.add(code, new)
        seen |= new
        sent = self._sent.get(code)
        if sent is None:
            sent = self._sent[code] = set()
        beacons = self._key.beacons_of(new) - sent
        if not beacons:
            return
        sent |= beacons
        pending = self._new.get(code)
        if pending is None:
            self._new[code] = beacons
        else:
            pending |= beacons

    def _word_filter(self) -> bytes | None:
        try:
            if self._filter is None:  # no word at all: an empty filter discards every query
                self._filter = FilterBuilder(self._key.filter_key(self.session_id))
            return self._filter.finish()
        except Exception as exc:  # without a filter the session is decrypted when nominated
            log.error("session %s: no word filter (%s)", self.session_id, type(exc).__name__)
            return None

    def take(self, *, closing: bool) -> IndexRows | None:
        """The rows for this batch; with ``closing``, the mark that the session is done."""
        complete = closing and not self._broken
        if not self._new and not complete:
            return None
        new, self._new = self._new, {}
        # The session's words are all here once it closes: its filter lets a search discard
        # it without decrypting it when a colliding word made it a candidate.
        word_filter = self._word_filter() if complete else None
        return IndexRows(
            session_id=self.session_id,
            tenant=self._key.tenant,
            key_id=self._key.key_id,
            scope=self._key.scope,
            beacons={code: sorted(bs) for code, bs in new.items()},
            complete=complete,
            word_filter=word_filter,
        )
