"""Truncated keyed beacons: what the index stores in place of a word.

A beacon is the first ``BEACON_BITS`` bits of HMAC-SHA256(tenant search key, word). The
length is chosen so that distinct words collide by design (docs/search.md has the reasoning):
a row tells a reader of the database only that a session holds one of several words, and the
same word has unrelated beacons in two tenants or under two key versions.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping

from auditagent.records import Record

from .texts import ROLE_CODES, record_texts, role_of_kind
from .tokens import encode, index_words
from .wordfilter import build_keyed, session_key

__all__ = ["BEACON_BITS", "SCOPE_BITS", "BeaconKey", "IndexEntry"]

BEACON_BITS = 14
"""2**14 = 16,384 buckets per tenant and key version; stored in a smallint."""

_SHIFT = 16 - BEACON_BITS
SCOPE_BITS = 31 - BEACON_BITS
"""A row stores each beacon as ``scope << BEACON_BITS | beacon`` in an int4 array, so that one
GIN index serves every tenant and key version without mixing their buckets: the scope is a
keyed 17-bit constant of the search key (HMAC of a NUL-prefixed label no word can spell). It
says nothing a row's tenant and key id columns do not already say, and leaves the beacon's
14 bits, and so its collisions, as they are."""
CACHE_WORDS = 50_000
"""Words whose beacon a writer remembers (a conversation repeats itself); then it starts over."""

IndexEntry = tuple[int, int]
"""``(role code, beacon)``: one index row of a session."""


class BeaconKey:
    """One tenant's search key under one master key version."""

    __slots__ = ("_cache", "_inner", "_key", "_material", "_outer", "key_id", "scope", "tenant")

    def __init__(self, *, tenant: str, key_id: str, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a search key is 32 bytes")
        self.tenant = tenant
        self.key_id = key_id
        self._key = key
        digest = hmac.digest(key, b"\0scope", "sha256")
        self.scope = int.from_bytes(digest[:4], "big") >> (32 - SCOPE_BITS)
        # word -> beacon for the words this writer has already seen: a conversation repeats
        # itself, and the HMAC is most of indexing's cost.
        self._cache: dict[bytes, int] = {}
        # word -> bytes 16..31 of the same HMAC: the word's filter material (wordfilter.py).
        self._material: dict[bytes, bytes] = {}
        # HMAC (RFC 2104) from its two SHA-256 states, keyed once and copied per word: ~0.6 µs
        # a word against ~1.0 for hmac's copy and ~1.4 for hmac.digest (bench box); the same
        # digest (a test holds them together).
        block = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(x ^ 0x36 for x in block))
        self._outer = hashlib.sha256(bytes(x ^ 0x5C for x in block))

    def beacon(self, word: str) -> int:
        raw = encode(word)
        b = self._cache.get(raw)
        if b is None:
            b = self._compute(raw)
        return b

    def digest(self, word: bytes) -> bytes:
        """HMAC-SHA256(search key, ``word``)."""
        inner = self._inner.copy()
        inner.update(word)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def _compute(self, word: bytes) -> int:
        digest = self.digest(word)
        b = int.from_bytes(digest[:2], "big") >> _SHIFT
        cache = self._cache
        if len(cache) >= CACHE_WORDS:
            cache.clear()
            self._material.clear()
        cache[word] = b
        self._material[word] = digest[16:]
        return b

    def material(self, words: Iterable[bytes]) -> bytes:
        """The filter material of ``words`` (encoded), 16 bytes each, in their order: bytes
        16..31 of each word's HMAC, which its beacon (bytes 0..1) says nothing about."""
        get = self._material.get
        out = []
        for w in words:
            m = get(w)
            if m is None:
                self._compute(w)
                m = self._material[w]
            out.append(m)
        return b"".join(out)

    def word_filter(
        self, session_id: uuid.UUID, words_by_role: Mapping[int, Iterable[bytes]]
    ) -> bytes:
        """``session_id``'s word filter holding ``words_by_role`` (role code -> encoded words):
        what the writer stores at close and what a reindex rebuilds, byte for byte."""
        material = {code: self.material(ws) for code, ws in words_by_role.items()}
        return build_keyed(self.filter_key(session_id), material)

    def filter_key(self, session_id: uuid.UUID) -> bytes:
        """The key of ``session_id``'s word filter (auditagent/search/wordfilter.py)."""
        return session_key(self._key, session_id)

    def beacons(self, words: Iterable[str]) -> set[int]:
        return {self.beacon(w) for w in words}

    def elements(self, words: Iterable[str]) -> set[int]:
        """What the index stores for ``words``: their beacons under this key's scope."""
        return {self.scope << BEACON_BITS | self.beacon(w) for w in words}

    def beacons_of(self, words: Iterable[bytes]) -> set[int]:
        """Beacons of words already encoded (the writer's path)."""
        get = self._cache.get
        return {b if (b := get(w)) is not None else self._compute(w) for w in words}

    def record_beacons(self, record: Record) -> tuple[int, set[int]] | None:
        """``(role code, beacons)`` of one record; None for records without searchable text.

        The writer's hot path: set operations in C wherever possible."""
        role = role_of_kind(record.kind)
        if role is None:
            return None
        texts = record_texts(record)
        found = index_words(texts[0]) if len(texts) == 1 else set().union(*map(index_words, texts))
        cache = self._cache
        get = cache.get
        return ROLE_CODES[role], {
            b if (b := get(w)) is not None else self._compute(w) for w in found
        }

    def entries(self, record: Record) -> set[IndexEntry]:
        """The index rows one record adds (before deduplication against its session)."""
        got = self.record_beacons(record)
        if got is None:
            return set()
        code, bs = got
        return {(code, b) for b in bs}
