"""Truncated keyed beacons: what the index stores in place of a word.

A beacon is the first ``BEACON_BITS`` bits of HMAC-SHA256(tenant search key, word). The
length is chosen so that distinct words collide by design (docs/search.md has the reasoning):
a row tells a reader of the database only that a session holds one of several words, and the
same word has unrelated beacons in two tenants or under two key versions.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from auditagent import records

from .texts import ROLE_CODES, record_texts, role_of_kind
from .tokens import index_words

__all__ = ["BEACON_BITS", "BeaconKey", "IndexEntry"]

BEACON_BITS = 14
"""2**14 = 16,384 buckets per tenant and key version; stored in a smallint."""

_SHIFT = 16 - BEACON_BITS

IndexEntry = tuple[int, int]
"""``(role code, beacon)``: one index row of a session."""


class BeaconKey:
    """One tenant's search key under one master key version."""

    __slots__ = ("_cache", "_key", "key_id", "tenant")

    def __init__(self, *, tenant: str, key_id: str, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a search key is 32 bytes")
        self.tenant = tenant
        self.key_id = key_id
        self._key = key
        # word -> beacon for the words this writer has already seen: a conversation repeats
        # itself, and the HMAC is most of indexing's cost.
        self._cache: dict[str, int] = {}

    def beacon(self, word: str) -> int:
        b = self._cache.get(word)
        if b is None:
            digest = hmac.digest(self._key, word.encode("utf-8", "surrogatepass"), "sha256")
            b = int.from_bytes(digest[:2], "big") >> _SHIFT
            if len(self._cache) < 50_000:
                self._cache[word] = b
        return b

    def beacons(self, words: Iterable[str]) -> set[int]:
        return {self.beacon(w) for w in words}

    def entries(self, record: records.Record) -> set[IndexEntry]:
        """The index rows one record adds (before deduplication against its session)."""
        role = role_of_kind(record.kind)
        if role is None:
            return set()
        code = ROLE_CODES[role]
        beacon = self.beacon
        return {(code, beacon(w)) for text in record_texts(record) for w in index_words(text)}
