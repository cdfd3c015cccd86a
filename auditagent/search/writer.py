"""The recorder's side of the index: the words of each record the writer seals.

Runs in the writer task, never in a LiveKit hook. A session's new texts wait here, per role;
when it closes, or once they have waited ``HANDOVER_AFTER_S``, they are cut into words and
their new words' beacons are handed to the batch being written (deduplicated: one row per
role and beacon) and stored in its transaction (or its spool file). Indexing never costs a
record: a failure is logged by type, the session is left unmarked, and
`auditagent search reindex` indexes it from its sealed records.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING

from auditagent.records import Record
from auditagent.store.search_rows import IndexRows

from .beacons import BeaconKey
from .texts import ROLE_CODES, SEARCHABLE_KINDS, record_texts, role_of_kind
from .tokens import index_words_of

if TYPE_CHECKING:
    from auditagent.keys import KeyProvider

__all__ = ["HANDOVER_AFTER_S", "IndexKeys", "SessionIndexer"]

log = logging.getLogger("auditagent.search")

HANDOVER_AFTER_S = 30.0
"""How long a session's new words may wait before their rows are handed to a write batch
(they go at once when it closes): an open call is searchable at most this far behind (plus the
write itself). A crash loses what was waiting, as it loses the session's mark: the session is
left unmarked and ``auditagent search reindex`` indexes it from its sealed records."""


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
    """One session's index rows: those handed over, and the words waiting for the next."""

    __slots__ = ("_broken", "_key", "_seen", "_sent", "_since", "_texts", "session_id")

    def __init__(self, key: BeaconKey, session_id: uuid.UUID) -> None:
        self._key = key
        self.session_id = session_id
        # Texts not handed over yet, per role: cut into words when they are (all of a role's
        # texts in one pass: tokens.index_words_of), so a record costs a list append here.
        self._texts: dict[int, list[str]] = {}
        # The session's words handed over, per role: its filter's words at close.
        self._seen: dict[int, set[bytes]] = {}
        # Beacons handed over, per role: each goes into one row of the session only (two new
        # words may share one), so a row's smallest beacon names it for idempotent replays.
        self._sent: dict[int, set[int]] = {}
        self._since: float | None = None
        """When a batch first found texts waiting (``time.monotonic``)."""
        self._broken = False

    def add(self, record: Record) -> None:
        if record.kind not in SEARCHABLE_KINDS or self._broken:
            return
        try:
            self._add(record)
        except Exception as exc:  # an index bug must never cost the record itself
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
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
        texts = self._texts.get(code)
        if texts is None:
            self._texts[code] = record_texts(record)
        else:
            texts += record_texts(record)

    def _word_filter(self) -> bytes | None:
        try:
            # The words the index rows hold, cut by the same function, made into a filter as a
            # reindex makes it (`BeaconKey.word_filter`): the two give the same bytes. No word
            # at all gives an empty filter, which discards every query.
            return self._key.word_filter(self.session_id, self._seen)
        except Exception as exc:  # without a filter the session is decrypted when nominated
            log.error("session %s: no word filter (%s)", self.session_id, type(exc).__name__)
            return None

    def take(self, *, closing: bool, now: float | None = None) -> IndexRows | None:
        """The rows to hand over with this batch, if any; with ``closing``, the mark that the
        session is done.

        Rows are handed over when the session closes, or once words have been waiting
        ``HANDOVER_AFTER_S`` (``now``: ``time.monotonic()``): a session has a few rows and its
        writes a few statements instead of one per batch, and a long call is searchable while
        it goes on, at most that much behind."""
        complete = closing and not self._broken
        if not self._texts and not complete:
            return None
        if not closing:
            t = time.monotonic() if now is None else now
            if self._since is None:
                self._since = t
            if t - self._since < HANDOVER_AFTER_S:
                return None
        self._since = None
        texts, self._texts = self._texts, {}
        try:
            beacons = self._beacons(texts)
        except Exception as exc:
            self._fail(exc)
            beacons, complete = {}, False
        if not beacons and not complete:
            return None
        # The session's words are all here once it closes: its filter lets a search discard
        # it without decrypting it when a colliding word made it a candidate.
        word_filter = self._word_filter() if complete else None
        return IndexRows(
            session_id=self.session_id,
            tenant=self._key.tenant,
            key_id=self._key.key_id,
            scope=self._key.scope,
            beacons=beacons,
            complete=complete,
            word_filter=word_filter,
        )

    def _beacons(self, texts: dict[int, list[str]]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for code, role_texts in texts.items():
            # Words this session already has (in this role) cost a set difference, not a
            # lookup: a conversation repeats itself.
            seen = self._seen.get(code)
            if seen is None:
                seen = self._seen[code] = set()
            words = index_words_of(role_texts) - seen
            seen |= words
            sent = self._sent.get(code)
            if sent is None:
                sent = self._sent[code] = set()
            bs = self._key.beacons_of(words) - sent
            if bs:
                sent |= bs
                out[code] = sorted(bs)
        return out
